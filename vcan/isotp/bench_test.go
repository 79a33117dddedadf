package isotp

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shekit/shekit/vcan"
)

// The LoadKey-sized exchange: a 64-byte request (RoutineControl with M1‖M2‖M3 is of that order)
// and a 33-byte answer (ERC ‖ M4 ‖ M5), each with its flow control where it takes several frames.
const (
	loadKeyRequest = 64
	loadKeyAnswer  = 33
)

// busLink is one of the two links compared.
type busLink struct {
	name string
	hub  []vcan.HubOption
	opts []Option
}

var loadKeyLinks = []busLink{
	{"classic-500k", []vcan.HubOption{vcan.WithBitRate(500000, vcan.WorstCaseStuffing)}, nil},
	{"fd-500k-2M-txdl64", []vcan.HubOption{vcan.WithBitRate(500000, vcan.WorstCaseStuffing), vcan.WithDataBitRate(2000000)},
		[]Option{WithCANFD(64, true)}},
}

// loadKeyExchange runs the exchange once between tester and ecu.
func loadKeyExchange(tb testing.TB, ctx context.Context, tester, ecu *Conn, request, answer []byte) {
	errc := make(chan error, 1)
	go func() { errc <- tester.Send(ctx, request) }()
	if _, err := ecu.Receive(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := <-errc; err != nil {
		tb.Fatal(err)
	}
	if err := ecu.Send(ctx, answer); err != nil {
		tb.Fatal(err)
	}
	if _, err := tester.Receive(ctx); err != nil {
		tb.Fatal(err)
	}
}

// loadKeyOnHub runs the exchange once on a fresh hub of link l and returns the frames the bus
// carried, each with the time it ended, and the hub's bus time at the end.
func loadKeyOnHub(tb testing.TB, l busLink) ([]vcan.TimedFrame, time.Duration) {
	h := vcan.NewHub(l.hub...)
	defer h.Close()
	tap := h.Connect()
	tester := New(h.Connect(vcan.ExactID(ecuID, false)), testerID, ecuID, l.opts...)
	defer tester.Close()
	ecu := New(h.Connect(vcan.ExactID(testerID, false)), ecuID, testerID, l.opts...)
	defer ecu.Close()
	loadKeyExchange(tb, context.Background(), tester, ecu, make([]byte, loadKeyRequest), make([]byte, loadKeyAnswer))
	var frames []vcan.TimedFrame
	for range 32 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		tf, err := tap.ReceiveTimed(ctx)
		cancel()
		if err != nil {
			break
		}
		frames = append(frames, tf)
	}
	return frames, h.BusTime()
}

// worstCaseBitTime is a frame's duration with worst-case stuffing, from the field counts of Linux's
// include/linux/can/length.h (written out here, apart from vcan's model): a classic frame is
// 19 (29-bit: 39) header bits + 8n data bits + 16 CRC field bits, stuffed as L + (L-1)/4, + 12; a
// CAN FD frame 22 (41) header bits + 8n, stuffed, + 28 (CRC-17, n ≤ 16) or 33 (CRC-21) + 12, of
// which SOF to BRS (17 bits, 3 stuff bits among them), the CRC delimiter, ACK, EOF and
// intermission (13) are at the nominal rate and the rest, with BRS, at the data rate.
func worstCaseBitTime(f vcan.Frame, nominal, data int) time.Duration {
	n := int(f.Length)
	bit := func(bits, rate int) time.Duration { return time.Duration(bits) * time.Second / time.Duration(rate) }
	if !f.FD {
		l := 19 + 8*n + 16
		return bit(l+(l-1)/4+12, nominal)
	}
	l := 22 + 8*n
	crc := 28
	if n > 16 {
		crc = 33
	}
	total := l + (l-1)/4 + crc + 12
	if !f.BRS {
		return bit(total, nominal)
	}
	return bit(17+3+13, nominal) + bit(total-(17+3+13), data)
}

// TestLoadKeyBusTimeOnCANFD: the LoadKey-sized exchange's frames and simulated time on each link,
// against figures counted by hand. Classic CAN at 500 kbit/s: 11 frames for the request (FF, FC,
// 9 CFs: 6 + 9 × 7 ≥ 64) and 6 for the answer (FF, FC, 4 CFs), each padded to 8 bytes, 135 bit
// times = 270 µs: 17 × 270 = 4590 µs. CAN FD with TX_DL 64 at 500 kbit/s + 2 Mbit/s: the request's
// FF of 64 bytes (33 nominal + 679 data bit times: 66 + 339.5 µs), the FC and the CF padded to 8
// (33 + 114: 66 + 57 µs each), the answer a single frame of 35 bytes padded to 48 (33 + 519: 66 +
// 259.5 µs): 977 µs. Each is its bus's frame floor (the bus never idles: BS 0, STmin 0), within
// the 1.05 × floor the CAN FD LoadKey must meet.
func TestLoadKeyBusTimeOnCANFD(t *testing.T) {
	want := map[string]struct {
		frames int
		total  time.Duration
	}{
		"classic-500k":      {17, 4590 * time.Microsecond},
		"fd-500k-2M-txdl64": {4, 977 * time.Microsecond},
	}
	for _, l := range loadKeyLinks {
		synctest.Test(t, func(t *testing.T) {
			frames, busTime := loadKeyOnHub(t, l)
			var floor time.Duration
			for _, tf := range frames {
				floor += worstCaseBitTime(tf.Wire, 500000, 2000000)
			}
			w := want[l.name]
			t.Logf("%s: %d frames, %v of bus time, floor %v", l.name, len(frames), busTime, floor)
			if len(frames) != w.frames || floor != w.total {
				t.Fatalf("%s: %d frames, floor %v; want %d frames, %v", l.name, len(frames), floor, w.frames, w.total)
			}
			if busTime != w.total || busTime > floor*105/100 {
				t.Fatalf("%s: bus time %v, want %v (floor %v)", l.name, busTime, w.total, floor)
			}
		})
	}
}

// BenchmarkLoadKeyExchange: the LoadKey-sized exchange on the hub's 500 kbit/s classic CAN model
// and on its CAN FD model (500 kbit/s nominal, 2 Mbit/s data, TX_DL 64, BRS), both with worst-case
// stuffing: wall time to simulate one exchange, its simulated bus time (sim-µs/op) and the ratio
// of that to the exchange's frame floor, the sum of its frames' durations (floor-ratio).
func BenchmarkLoadKeyExchange(b *testing.B) {
	for _, l := range loadKeyLinks {
		b.Run(l.name, func(b *testing.B) {
			frames, _ := loadKeyOnHub(b, l)
			var floor time.Duration
			for _, tf := range frames {
				floor += vcan.FDFrameTime(tf.Wire, vcan.WorstCaseStuffing, 500000, 2000000)
			}
			h := vcan.NewHub(l.hub...)
			defer h.Close()
			tester := New(h.Connect(vcan.ExactID(ecuID, false)), testerID, ecuID, l.opts...)
			defer tester.Close()
			ecu := New(h.Connect(vcan.ExactID(testerID, false)), ecuID, testerID, l.opts...)
			defer ecu.Close()
			request, answer := make([]byte, loadKeyRequest), make([]byte, loadKeyAnswer)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				loadKeyExchange(b, ctx, tester, ecu, request, answer)
			}
			b.StopTimer()
			sim := h.BusTime() / time.Duration(b.N)
			b.ReportMetric(float64(sim.Nanoseconds())/1000, "sim-µs/op")
			b.ReportMetric(float64(sim)/float64(floor), "floor-ratio")
			b.ReportMetric(float64(len(frames)), "frames/op")
		})
	}
}
