package isotp

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.einride.tech/can"

	"github.com/shekit/shekit/vcan"
)

const (
	testerID = 0x7E0
	ecuID    = 0x7E8
)

// pair returns two transports on hub: a tester (sends 0x7E0) and an ECU (sends 0x7E8), each
// connected with a filter on what it receives, and a tap that sees every frame.
func pair(t *testing.T, h *vcan.Hub, testerOpts, ecuOpts []Option) (tester, ecu *Conn, tap *vcan.Node) {
	t.Helper()
	tap = h.Connect()
	tester = New(h.Connect(vcan.ExactID(ecuID, false)), testerID, ecuID, testerOpts...)
	ecu = New(h.Connect(vcan.ExactID(testerID, false)), ecuID, testerID, ecuOpts...)
	t.Cleanup(func() { tester.Close(); ecu.Close(); h.Close() })
	return tester, ecu, tap
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func exchange(t *testing.T, from, to *Conn, msg []byte) {
	t.Helper()
	ctx := ctxFor(t, 5*time.Second)
	errc := make(chan error, 1)
	go func() { errc <- from.Send(ctx, msg) }()
	got, err := to.Receive(ctx)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("received %d bytes, %v; want %d bytes", len(got), err, len(msg))
	}
	if err := <-errc; err != nil {
		t.Fatalf("send: %v", err)
	}
}

func TestTransportMessageSizes(t *testing.T) {
	tester, ecu, _ := pair(t, vcan.NewHub(), nil, []Option{WithMaxLength(1 << 20)})
	for _, n := range []int{1, 7, 8, 62, 68, 4095} {
		exchange(t, tester, ecu, seq(n))
		exchange(t, ecu, tester, seq(n))
	}
	exchange(t, tester, ecu, seq(5000)) // 32-bit first frame length
	if err := tester.Send(context.Background(), nil); !errors.Is(err, ErrMessageSize) {
		t.Fatalf("empty message: %v", err)
	}
}

func TestTransportPadding(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
		pad  int // -1: none
	}{
		{"default 0xCC", nil, 0xCC},
		{"0xAA", []Option{WithPadding(0xAA)}, 0xAA},
		{"off", []Option{WithoutPadding()}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tester, ecu, tap := pair(t, vcan.NewHub(), tc.opts, nil)
			exchange(t, tester, ecu, seq(3))  // SF of 4 bytes
			exchange(t, tester, ecu, seq(10)) // FF, FC (from the ECU, padded 0xCC), CF of 5 bytes
			frames := tap.ReceiveFor(50 * time.Millisecond)
			var mine []can.Frame
			for _, tf := range frames {
				if tf.Frame.ID == testerID {
					mine = append(mine, tf.Frame)
				}
			}
			if len(mine) != 3 {
				t.Fatalf("tester sent %d frames", len(mine))
			}
			wantLen := []int{4, 8, 5}
			for i, f := range mine {
				switch {
				case tc.pad < 0 && int(f.Length) != wantLen[i]:
					t.Errorf("frame %d: %d bytes, want %d", i, f.Length, wantLen[i])
				case tc.pad >= 0 && f.Length != 8:
					t.Errorf("frame %d: %d bytes, want 8", i, f.Length)
				case tc.pad >= 0:
					for _, b := range f.Data[wantLen[i]:] {
						if int(b) != tc.pad {
							t.Errorf("frame %d padded with %#x", i, b)
						}
					}
				}
			}
		})
	}
}

// TestTransportBlockSizeAndSTmin: the receiver asks for blocks of 3 with 5 ms between consecutive
// frames; on the simulated 500 kbit/s bus, the sender keeps both.
func TestTransportBlockSizeAndSTmin(t *testing.T) {
	for _, stmin := range []time.Duration{5 * time.Millisecond, 500 * time.Microsecond} {
		h := vcan.NewHub(vcan.WithBitRate(500000, vcan.WorstCaseStuffing))
		tester, ecu, tap := pair(t, h, nil, []Option{WithFlowControl(3, stmin)})
		exchange(t, tester, ecu, seq(48)) // FF + 6 CFs: two blocks
		frames := tap.ReceiveFor(50 * time.Millisecond)
		var kinds []PDUType
		var last time.Duration
		inBlock := 0
		for _, tf := range frames {
			p, _, _ := ParsePDU(tf.Frame.Data[:tf.Frame.Length])
			kinds = append(kinds, p.Type)
			if p.Type == ConsecutiveFrame {
				if inBlock > 0 {
					// The frame starts at least STmin after the previous one ended.
					start := tf.Time - vcan.FrameTime(tf.Frame, vcan.WorstCaseStuffing, 500000)
					if start-last < stmin {
						t.Errorf("STmin %v: CF %d started %v after the previous", stmin, p.SN, start-last)
					}
				}
				inBlock++
				last = tf.Time
			} else {
				inBlock = 0
			}
		}
		want := []PDUType{FirstFrame, FlowControl, ConsecutiveFrame, ConsecutiveFrame, ConsecutiveFrame,
			FlowControl, ConsecutiveFrame, ConsecutiveFrame, ConsecutiveFrame}
		if len(kinds) != len(want) {
			t.Fatalf("frames %v, want %v", kinds, want)
		}
		for i := range want {
			if kinds[i] != want[i] {
				t.Fatalf("frames %v, want %v", kinds, want)
			}
		}
	}
}

// TestTransportFlowControlDelay: a receiver with a flow control delay sends each flow control
// frame no sooner than that after the frame it answers, on the simulated bus's clock.
func TestTransportFlowControlDelay(t *testing.T) {
	h := vcan.NewHub(vcan.WithBitRate(500000, vcan.WorstCaseStuffing))
	tester, ecu, tap := pair(t, h, nil, []Option{WithFlowControl(3, 0), WithFlowControlDelay(3 * time.Millisecond)})
	exchange(t, tester, ecu, seq(48)) // FF, FC, 3 CFs, FC, 3 CFs
	frames := tap.ReceiveFor(50 * time.Millisecond)
	fcs := 0
	for i, tf := range frames {
		p, _, _ := ParsePDU(tf.Frame.Data[:tf.Frame.Length])
		if p.Type != FlowControl || i == 0 {
			continue
		}
		fcs++
		start := tf.Time - vcan.FrameTime(tf.Frame, vcan.WorstCaseStuffing, 500000)
		if gap := start - frames[i-1].Time; gap < 3*time.Millisecond {
			t.Errorf("flow control %d started %v after the frame it answers", fcs, gap)
		}
	}
	if fcs != 2 {
		t.Fatalf("%d flow control frames, want 2", fcs)
	}
}

func TestTransportFlowControlWait(t *testing.T) {
	h := vcan.NewHub()
	tester, ecu, _ := pair(t, h, []Option{WithWaitFrameMax(3)}, []Option{WithWaitFrames(3, time.Millisecond)})
	exchange(t, tester, ecu, seq(20)) // three WAITs are within N_WFTmax

	h2 := vcan.NewHub()
	tester, ecu, _ = pair(t, h2, []Option{WithWaitFrameMax(2)}, []Option{WithWaitFrames(3, time.Millisecond)})
	ctx := ctxFor(t, 5*time.Second)
	if err := tester.Send(ctx, seq(20)); !errors.Is(err, ErrWaitLimit) {
		t.Fatalf("three WAITs against N_WFTmax 2: %v", err)
	}
	_ = ecu
}

func TestTransportOverflow(t *testing.T) {
	tester, ecu, _ := pair(t, vcan.NewHub(), nil, []Option{WithMaxLength(100)})
	ctx := ctxFor(t, 5*time.Second)
	if err := tester.Send(ctx, seq(200)); !errors.Is(err, ErrOverflow) {
		t.Fatalf("send: %v, want ErrOverflow", err)
	}
	if _, err := ecu.Receive(ctx); !errors.Is(err, ErrTooLong) {
		t.Fatalf("receive: %v, want ErrTooLong", err)
	}
	exchange(t, tester, ecu, seq(100)) // the transport goes on
}

func TestTransportTimeoutBs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := vcan.NewHub()
		defer h.Close()
		tester := New(h.Connect(vcan.ExactID(ecuID, false)), testerID, ecuID, WithTimeouts(time.Second, 50*time.Millisecond, time.Second))
		defer tester.Close()
		start := time.Now()
		if err := tester.Send(ctxFor(t, 5*time.Second), seq(20)); !errors.Is(err, ErrTimeoutBs) {
			t.Fatalf("nobody answers the first frame: %v", err)
		}
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Fatalf("gave up after %v, want N_Bs = 50ms", d)
		}
	})
}

func TestTransportTimeoutCr(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := vcan.NewHub()
		tester, ecu, _ := pair(t, h, nil, []Option{WithTimeouts(time.Second, time.Second, 50*time.Millisecond)})
		// 40 bytes: FF and CF1..CF5; the last CF is lost, so the receiver waits in vain.
		h.Inject(vcan.Fault{Match: vcan.ExactID(testerID, false), Nth: 6, Action: vcan.Drop})
		ctx := ctxFor(t, 5*time.Second)
		if err := tester.Send(ctx, seq(40)); err != nil {
			t.Fatal(err)
		}
		if _, err := ecu.Receive(ctx); !errors.Is(err, ErrTimeoutCr) {
			t.Fatalf("receive: %v, want ErrTimeoutCr", err)
		}
		exchange(t, tester, ecu, seq(40))
	})
}

func TestTransportWrongSequenceNumber(t *testing.T) {
	h := vcan.NewHub()
	defer h.Close()
	ecu := New(h.Connect(vcan.ExactID(testerID, false)), ecuID, testerID)
	defer ecu.Close()
	raw := h.Connect()
	ctx := ctxFor(t, 5*time.Second)
	for _, data := range [][]byte{
		{0x10, 0x14, 1, 2, 3, 4, 5, 6},
		{0x21, 7, 8, 9, 10, 11, 12, 13},
		{0x23, 14, 15, 16, 17, 18, 19, 20}, // SN 3 where 2 is due
	} {
		f := can.Frame{ID: testerID, Length: 8}
		copy(f.Data[:], data)
		if err := raw.Send(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ecu.Receive(ctx); !errors.Is(err, ErrSequence) {
		t.Fatalf("receive: %v, want ErrSequence", err)
	}
}

func TestTransportCloseUnblocks(t *testing.T) {
	h := vcan.NewHub()
	defer h.Close()
	c := New(h.Connect(), 1, 2)
	errc := make(chan error)
	go func() {
		_, err := c.Receive(context.Background())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	c.Close()
	if err := <-errc; err == nil {
		t.Fatal("Receive returned nothing after Close")
	}
	if err := c.Send(context.Background(), seq(3)); err == nil {
		t.Fatal("Send after Close succeeded")
	}
}

func TestTransportExtendedIDs(t *testing.T) {
	h := vcan.NewHub()
	defer h.Close()
	a := New(h.Connect(vcan.ExactID(0x18000008, true)), 0x18000000, 0x18000008, WithExtendedIDs())
	b := New(h.Connect(vcan.ExactID(0x18000000, true)), 0x18000008, 0x18000000, WithExtendedIDs())
	defer a.Close()
	defer b.Close()
	exchange(t, a, b, seq(100))
	exchange(t, b, a, seq(3))
}

// manualClock is a Clock that moves only when the test says so.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
	armed  chan struct{} // signalled when a timer is set
}

type manualTimer struct {
	at   time.Time
	f    func()
	done bool
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Unix(1000, 0), armed: make(chan struct{}, 100)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := &manualTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, tm)
	c.armed <- struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		stopped := !tm.done
		tm.done = true
		return stopped
	}
}

// Advance moves the clock by d and fires the timers that are due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, tm := range c.timers {
		if !tm.done && !tm.at.After(c.now) {
			tm.done = true
			due = append(due, tm.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		go f()
	}
}

// TestTransportUsesItsClock: N_Bs runs on the injected clock: a sender whose flow control never
// comes gives up when that clock has moved N_Bs on, and not before.
func TestTransportUsesItsClock(t *testing.T) {
	h := vcan.NewHub()
	defer h.Close()
	clk := newManualClock()
	tester := New(h.Connect(vcan.ExactID(ecuID, false)), testerID, ecuID, WithClock(clk), WithTimeouts(time.Second, 200*time.Millisecond, time.Second))
	defer tester.Close()
	errc := make(chan error, 1)
	go func() { errc <- tester.Send(context.Background(), seq(20)) }()
	<-clk.armed // N_As of the first frame
	<-clk.armed // N_Bs
	clk.Advance(199 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("gave up before N_Bs on the clock: %v", err)
	default:
	}
	clk.Advance(time.Millisecond)
	if err := <-errc; !errors.Is(err, ErrTimeoutBs) {
		t.Fatalf("send: %v, want ErrTimeoutBs", err)
	}
}
