package isotp

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan"
)

// hexBytes decodes space-separated hex, as frames are written in these tests.
func hexBytes(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

const (
	// 00..3D: the first 62 bytes of the 64-byte test message (00..3F).
	hex00to3D = "00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D 1E 1F " +
		"20 21 22 23 24 25 26 27 28 29 2A 2B 2C 2D 2E 2F 30 31 32 33 34 35 36 37 38 39 3A 3B 3C 3D"
	// A0..C0: the 33-byte test answer.
	hexA0toC0 = "A0 A1 A2 A3 A4 A5 A6 A7 A8 A9 AA AB AC AD AE AF B0 B1 B2 B3 B4 B5 B6 B7 B8 B9 BA BB BC BD BE BF C0"
	hexCC13   = "CC CC CC CC CC CC CC CC CC CC CC CC CC"
)

func count(n int, from byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

// TestParsePDUFD reads CAN FD frames written by hand after ISO 15765-2:2016's N_PCI layouts.
func TestParsePDUFD(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame string
		ae    int
		want  PDU
		n     int
	}{
		{"SF escape, 10 bytes in 12", "00 0A 01 02 03 04 05 06 07 08 09 0A", 0,
			PDU{Type: SingleFrame, Escape: true, Length: 10, Data: count(10, 1)}, 12},
		{"SF escape, 11 bytes padded to 16", "00 0B 01 02 03 04 05 06 07 08 09 0A 0B CC CC CC", 0,
			PDU{Type: SingleFrame, Escape: true, Length: 11, Data: count(11, 1)}, 13},
		{"SF escape, 33 bytes padded to 48", "00 21 " + hexA0toC0 + " " + hexCC13, 0,
			PDU{Type: SingleFrame, Escape: true, Length: 33, Data: count(33, 0xA0)}, 35},
		{"SF escape, 62 bytes in 64", "00 3E " + hex00to3D, 0,
			PDU{Type: SingleFrame, Escape: true, Length: 62, Data: count(62, 0)}, 64},
		{"SF escape after an address byte, 61 bytes in 64", "F1 00 3D " + hex00to3D[:len(hex00to3D)-3], 1,
			PDU{Type: SingleFrame, Escape: true, Length: 61, Data: count(61, 0)}, 64},
		{"SF with 4-bit length in an 8-byte CAN FD frame", "05 01 02 03 04 05 CC CC", 0,
			PDU{Type: SingleFrame, Length: 5, Data: count(5, 1)}, 6},
		{"FF of 64 in 64", "10 40 " + hex00to3D, 0,
			PDU{Type: FirstFrame, Length: 64, Data: count(62, 0)}, 64},
		{"FF of 63 (FF_DLmin for RX_DL 64)", "10 3F " + hex00to3D, 0,
			PDU{Type: FirstFrame, Length: 63, Data: count(62, 0)}, 64},
		{"FF of 11 in 12 (FF_DLmin for RX_DL 12)", "10 0B 01 02 03 04 05 06 07 08 09 0A", 0,
			PDU{Type: FirstFrame, Length: 11, Data: count(10, 1)}, 12},
		{"FF with the 32-bit escape, 4096 in 64", "10 00 00 00 10 00 " + hex00to3D[:len(hex00to3D)-12], 0,
			PDU{Type: FirstFrame, Length: 4096, Data: count(58, 0)}, 64},
		{"CF of 63 in 64", "21 " + hex00to3D + " 3E", 0,
			PDU{Type: ConsecutiveFrame, SN: 1, Data: count(63, 0)}, 64},
		{"FC after an address byte", "F1 30 08 14 CC CC CC CC", 1,
			PDU{Type: FlowControl, BlockSize: 8, STmin: 0x14}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := hexBytes(t, tc.frame)
			got, n, err := ParsePDUAt(frame, tc.ae)
			if err != nil || n != tc.n || got.Type != tc.want.Type || got.Escape != tc.want.Escape || got.Length != tc.want.Length ||
				!bytes.Equal(got.Data, tc.want.Data) || got.SN != tc.want.SN || got.BlockSize != tc.want.BlockSize || got.STmin != tc.want.STmin {
				t.Fatalf("got %+v, %d, %v; want %+v, %d", got, n, err, tc.want, tc.n)
			}
			if enc := AppendPDU(nil, got); len(enc) != got.Len() || !bytes.Equal(enc, frame[tc.ae:n]) {
				t.Fatalf("AppendPDU = % X, want % X", enc, frame[tc.ae:n])
			}
		})
	}
	for _, tc := range []struct {
		name, frame string
		ae          int
	}{
		{"SF of 12 bytes without the escape", "03 01 02 03 CC CC CC CC CC CC CC CC", 0},
		{"SF escape of 11 in 12 (at most 10)", "00 0B 01 02 03 04 05 06 07 08 09 0A", 0},
		{"SF escape of 0", "00 00 CC CC CC CC CC CC CC CC CC CC", 0},
		{"SF escape in 8 bytes", "00 05 01 02 03 04 05 CC", 0},
		{"SF of 7 after an address byte", "F1 07 01 02 03 04 05 06", 1},
		{"SF escape of 62 after an address byte (at most 61)", "F1 00 3E " + hex00to3D[:len(hex00to3D)-3], 1},
		{"FF of 10 in 12 (under FF_DLmin 11)", "10 0A 01 02 03 04 05 06 07 08 09 0A", 0},
		{"FF of 62 in 64 (under FF_DLmin 63)", "10 3E " + hex00to3D, 0},
		{"FF of 61 in 64 after an address byte (under FF_DLmin 62)", "F1 10 3D " + hex00to3D[:len(hex00to3D)-3], 1},
		{"FF of 13 bytes, not a CAN FD length", "10 40 01 02 03 04 05 06 07 08 09 0A 0B", 0},
		{"FF with the escape for a 12-bit length", "10 00 00 00 0F FF " + hex00to3D[:len(hex00to3D)-12], 0},
	} {
		if p, _, err := ParsePDUAt(hexBytes(t, tc.frame), tc.ae); !errors.Is(err, ErrInvalidPDU) {
			t.Errorf("%s: %+v, %v; want ErrInvalidPDU", tc.name, p, err)
		}
	}
	if _, _, err := ParsePDUAt([]byte{0xF1}, 1); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("address byte alone: %v", err)
	}
}

// TestSegmentFD: the PDUs of messages in frames of TX_DL 64, 12 and 8, as ISO 15765-2:2016 lays
// them out, encoded and padded as a sender does, byte for byte.
func TestSegmentFD(t *testing.T) {
	for _, tc := range []struct {
		name   string
		msg    []byte
		txDL   int
		ae     int
		frames []string
	}{
		{"7 bytes, TX_DL 64: 4-bit SF_DL", count(7, 1), 64, 0, []string{"07 01 02 03 04 05 06 07"}},
		{"8 bytes, TX_DL 64: SF_DL escape, CAN_DL 12", count(8, 1), 64, 0, []string{"00 08 01 02 03 04 05 06 07 08 CC CC"}},
		{"33 bytes, TX_DL 64: SF escape padded to 48", count(33, 0xA0), 64, 0, []string{"00 21 " + hexA0toC0 + " " + hexCC13}},
		{"62 bytes, TX_DL 64: the longest SF", count(62, 0), 64, 0, []string{"00 3E " + hex00to3D}},
		{"64 bytes, TX_DL 64: FF and one CF", count(64, 0), 64, 0, []string{"10 40 " + hex00to3D, "21 3E 3F CC CC CC CC CC"}},
		{"6 bytes after an address byte, TX_DL 64: 4-bit SF_DL", count(6, 1), 64, 1, []string{"06 01 02 03 04 05 06"}},
		{"7 bytes after an address byte, TX_DL 64: escape", count(7, 1), 64, 1, []string{"00 07 01 02 03 04 05 06 07 CC CC"}},
		{"11 bytes, TX_DL 12: FF of 10 and CF", count(11, 1), 12, 0, []string{"10 0B 01 02 03 04 05 06 07 08 09 0A", "21 0B CC CC CC CC CC CC"}},
		{"10 bytes, TX_DL 12: SF escape", count(10, 1), 12, 0, []string{"00 0A 01 02 03 04 05 06 07 08 09 0A"}},
		{"8 bytes, TX_DL 8: FF and CF as on classic CAN", count(8, 1), 8, 0, []string{"10 08 01 02 03 04 05 06", "21 07 08 CC CC CC CC CC"}},
		{"TX_DL 40 counts as 32: 30 bytes in an SF", count(30, 1), 40, 0,
			[]string{"00 1E 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D 1E"}},
		{"TX_DL 40 counts as 32: 31 bytes in an FF of 30 and a CF", count(31, 1), 40, 0,
			[]string{"10 1F 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D 1E", "21 1F CC CC CC CC CC CC"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pdus := SegmentFD(tc.msg, tc.txDL, tc.ae)
			if len(pdus) != len(tc.frames) {
				t.Fatalf("%d PDUs, want %d", len(pdus), len(tc.frames))
			}
			for i, p := range pdus {
				want := hexBytes(t, tc.frames[i])
				if got := padFrame(AppendPDU(make([]byte, tc.ae, 64), p)); !bytes.Equal(got[tc.ae:], want) {
					t.Errorf("frame %d: % X\nwant      % X", i, got[tc.ae:], want)
				}
			}
		})
	}
}

// padFrame pads a frame's data with 0xCC to 8 bytes, or beyond 8 to the next CAN FD length.
func padFrame(b []byte) []byte {
	n := max(8, vcan.PadFDLength(len(b)))
	for len(b) < n {
		b = append(b, 0xCC)
	}
	return b
}

// TestReassemblerRxDL: the first frame's length sets RX_DL; a consecutive frame longer than it,
// or shorter while more remains than it carries, is ignored; the last may be shorter.
func TestReassemblerRxDL(t *testing.T) {
	r := Reassembler{MaxLength: 4095}
	ff := hexBytes(t, "10 2A 01 02 03 04 05 06 07 08 09 0A") // 42 bytes, RX_DL 12
	if st := r.Feed(ff); st.FlowControl == nil || st.FlowControl.Status != ContinueToSend {
		t.Fatalf("first frame: %+v", st)
	}
	steps := []struct {
		frame   string
		applied bool
	}{
		{"21 0B 0C 0D 0E 0F 10 11 12 13 14 15", true},              // 11 bytes: 21 of 42
		{"22 16 17 18 19 1A 1B 1C 1D 1E 1F 20 21 22 23 24", false}, // 16 > RX_DL: ignored
		{"22 16 17 18 19 1A 1B 1C", false},                         // 8 < RX_DL with 21 left: ignored
		{"22 16 17 18 19 1A 1B 1C 1D 1E 1F 20", true},              // 32 of 42
		{"23 21 22 23 24 25 26 27 28 29 2A CC", true},              // last: 10 bytes in 12
	}
	for i, s := range steps {
		st := r.Feed(hexBytes(t, s.frame))
		if st.Err != nil {
			t.Fatalf("step %d: %v", i, st.Err)
		}
		if i < len(steps)-1 && (st.Message != nil) {
			t.Fatalf("step %d: early message", i)
		}
		if got := len(r.buf); s.applied && i < len(steps)-1 && got != []int{21, 0, 0, 32}[i] {
			t.Fatalf("step %d: %d bytes received", i, got)
		}
		if i == len(steps)-1 && !bytes.Equal(st.Message, count(42, 1)) {
			t.Fatalf("message % X", st.Message)
		}
	}
	// A short last CF is accepted when it holds the rest: 42 = 10 + 11 + 11 + 10, last in 11 bytes.
	r = Reassembler{MaxLength: 4095}
	r.Feed(ff)
	r.Feed(hexBytes(t, "21 0B 0C 0D 0E 0F 10 11 12 13 14 15"))
	r.Feed(hexBytes(t, "22 16 17 18 19 1A 1B 1C 1D 1E 1F 20"))
	if st := r.Feed(hexBytes(t, "23 21 22 23 24 25 26 27 28 29 2A")); !bytes.Equal(st.Message, count(42, 1)) {
		t.Fatalf("short last CF: %+v", st)
	}
}

// fdPair returns two CAN FD transports on a hub with 500 kbit/s nominal and 2 Mbit/s data rates.
func fdPair(t *testing.T, testerOpts, ecuOpts []Option) (tester, ecu *Conn, tap *vcan.Node, h *vcan.Hub) {
	h = vcan.NewHub(vcan.WithBitRate(500000, vcan.WorstCaseStuffing), vcan.WithDataBitRate(2000000))
	tester, ecu, tap = pair(t, h, testerOpts, ecuOpts)
	return tester, ecu, tap, h
}

// TestTransportCANFDFrames: a 64-byte request and a 33-byte answer between two transports with
// TX_DL 64 and BRS go on the bus as these frames, written by hand: FF of 62 bytes, FC, CF of 2
// bytes padded to 8; the answer a single frame with the length escape, padded to 48 bytes.
func TestTransportCANFDFrames(t *testing.T) {
	for _, padded := range []bool{true, false} {
		opts := []Option{WithCANFD(64, true)}
		fc, cf := "30 00 00 CC CC CC CC CC", "21 3E 3F CC CC CC CC CC"
		if !padded {
			opts = append(opts, WithoutPadding())
			fc, cf = "30 00 00", "21 3E 3F"
		}
		tester, ecu, tap, _ := fdPair(t, opts, opts)
		exchange(t, tester, ecu, count(64, 0))
		exchange(t, ecu, tester, count(33, 0xA0))
		want := []struct {
			id    uint32
			frame string
		}{
			{testerID, "10 40 " + hex00to3D}, {ecuID, fc}, {testerID, cf},
			{ecuID, "00 21 " + hexA0toC0 + " " + hexCC13},
		}
		frames := tap.ReceiveFor(50 * time.Millisecond)
		if len(frames) != len(want) {
			t.Fatalf("padded=%v: %d frames, want %d", padded, len(frames), len(want))
		}
		for i, tf := range frames {
			f := tf.Wire
			if f.ID != want[i].id || !f.FD || !f.BRS || !bytes.Equal(f.Payload(), hexBytes(t, want[i].frame)) {
				t.Errorf("padded=%v frame %d: %03X FD=%v BRS=%v % X\nwant %03X % s", padded, i, f.ID, f.FD, f.BRS, f.Payload(), want[i].id, want[i].frame)
			}
		}
	}
}

// TestTransportCANFDSizes: messages of every size class cross in both directions between a
// sender of TX_DL 64 and one of TX_DL 16, each receiver learning RX_DL from the first frame; the
// frames are CAN FD frames of valid lengths, none longer than its sender's TX_DL.
func TestTransportCANFDSizes(t *testing.T) {
	tester, ecu, tap, _ := fdPair(t, []Option{WithCANFD(64, true), WithMaxLength(1 << 20)},
		[]Option{WithCANFD(16, false), WithMaxLength(1 << 20)})
	for _, n := range []int{1, 7, 8, 14, 15, 62, 63, 64, 100, 4095, 4096, 5000} {
		exchange(t, tester, ecu, seq(n))
		exchange(t, ecu, tester, seq(n))
	}
	for _, tf := range tap.ReceiveFor(50 * time.Millisecond) {
		f := tf.Wire
		limit := 64
		if f.ID == ecuID {
			limit = 16
		}
		if !f.FD || f.BRS != (f.ID == testerID) || int(f.Length) > limit || f.Validate() != nil {
			t.Fatalf("frame %03X FD=%v BRS=%v of %d bytes", f.ID, f.FD, f.BRS, f.Length)
		}
	}
}

// TestTransportCANFDNeedsFrameConn: CAN FD on a connection that carries only classic frames fails
// to send, with ErrNoCANFD.
func TestTransportCANFDNeedsFrameConn(t *testing.T) {
	h := vcan.NewHub()
	defer h.Close()
	c := New(classicConn{h.Connect()}, testerID, ecuID, WithCANFD(64, true))
	defer c.Close()
	if err := c.Send(context.Background(), []byte{1, 2, 3}); !errors.Is(err, ErrNoCANFD) {
		t.Fatalf("send: %v", err)
	}
}

// classicConn hides a node's CAN FD methods.
type classicConn struct{ vcan.Conn }
