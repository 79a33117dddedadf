package isotp

import (
	"bytes"
	"errors"
	"testing"

	"github.com/shekit/shekit/vcan"
)

func feedAll(r *Reassembler, pdus []PDU) (msgs [][]byte, fcs []PDU, errs []error) {
	for _, p := range pdus {
		st := r.Feed(AppendPDU(nil, p))
		if st.Message != nil {
			msgs = append(msgs, st.Message)
		}
		if st.FlowControl != nil {
			fcs = append(fcs, *st.FlowControl)
		}
		if st.Err != nil {
			errs = append(errs, st.Err)
		}
	}
	return
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func TestReassemblerBlocks(t *testing.T) {
	r := Reassembler{MaxLength: 4095, BlockSize: 4, STmin: 0x05}
	msg := seq(100) // FF + 14 CFs
	msgs, fcs, errs := feedAll(&r, Segment(msg))
	if len(errs) > 0 || len(msgs) != 1 || !bytes.Equal(msgs[0], msg) {
		t.Fatalf("msgs %d errs %v", len(msgs), errs)
	}
	// One flow control after the first frame, then one after every 4 CFs but the last block:
	// 14 CFs = 3 full blocks and 2.
	if len(fcs) != 4 {
		t.Fatalf("%d flow control frames, want 4", len(fcs))
	}
	for _, fc := range fcs {
		if fc.Status != ContinueToSend || fc.BlockSize != 4 || fc.STmin != 0x05 {
			t.Fatalf("flow control %+v", fc)
		}
	}
	if r.Active() {
		t.Fatal("still active after the message")
	}
}

func TestReassemblerUnexpectedPDUs(t *testing.T) {
	msg := seq(30)
	pdus := Segment(msg) // FF, CF1..CF4

	t.Run("wrong sequence number aborts", func(t *testing.T) {
		r := Reassembler{MaxLength: 4095}
		_, _, errs := feedAll(&r, []PDU{pdus[0], pdus[1], pdus[3]})
		if len(errs) != 1 || !errors.Is(errs[0], ErrSequence) || r.Active() {
			t.Fatalf("errs %v active %v", errs, r.Active())
		}
		// The rest of the abandoned message is ignored.
		if msgs, _, errs := feedAll(&r, pdus[4:]); len(msgs)+len(errs) != 0 {
			t.Fatal("consecutive frame after an abort was used")
		}
	})
	t.Run("consecutive frame without first frame is ignored", func(t *testing.T) {
		r := Reassembler{MaxLength: 4095}
		if msgs, fcs, errs := feedAll(&r, pdus[1:]); len(msgs)+len(fcs)+len(errs) != 0 {
			t.Fatal("stray consecutive frames had an effect")
		}
	})
	t.Run("single frame interrupts", func(t *testing.T) {
		r := Reassembler{MaxLength: 4095}
		st := r.Feed(AppendPDU(nil, pdus[0]))
		st = r.Feed([]byte{0x02, 0x3E, 0x00})
		if !errors.Is(st.Err, ErrInterrupted) || !bytes.Equal(st.Message, []byte{0x3E, 0x00}) {
			t.Fatalf("step %+v", st)
		}
	})
	t.Run("first frame interrupts and restarts", func(t *testing.T) {
		r := Reassembler{MaxLength: 4095}
		msgs, _, errs := feedAll(&r, append([]PDU{pdus[0], pdus[1]}, pdus...))
		if len(errs) != 1 || !errors.Is(errs[0], ErrInterrupted) || len(msgs) != 1 || !bytes.Equal(msgs[0], msg) {
			t.Fatalf("msgs %d errs %v", len(msgs), errs)
		}
	})
	t.Run("too long gets overflow", func(t *testing.T) {
		r := Reassembler{MaxLength: 20}
		st := r.Feed(AppendPDU(nil, pdus[0]))
		if st.FlowControl == nil || st.FlowControl.Status != Overflow || !errors.Is(st.Err, ErrTooLong) || r.Active() {
			t.Fatalf("step %+v", st)
		}
	})
	t.Run("single frame too long is dropped", func(t *testing.T) {
		r := Reassembler{MaxLength: 2}
		st := r.Feed([]byte{0x03, 1, 2, 3})
		if st.Message != nil || st.FlowControl != nil || !errors.Is(st.Err, ErrTooLong) {
			t.Fatalf("step %+v", st)
		}
		if st := r.Feed([]byte{0x02, 1, 2}); !bytes.Equal(st.Message, []byte{1, 2}) {
			t.Fatalf("single frame within the limit: %+v", st)
		}
	})
	t.Run("flow control and invalid frames are ignored", func(t *testing.T) {
		r := Reassembler{MaxLength: 4095}
		for _, f := range [][]byte{{0x30, 0, 0}, {0x00}, {0x08, 1}, {}, {0x45}} {
			if st := r.Feed(f); st.Message != nil || st.FlowControl != nil || st.Err != nil {
				t.Fatalf("% x: %+v", f, st)
			}
		}
	})
	t.Run("abort reports an active message", func(t *testing.T) {
		r := Reassembler{MaxLength: 4095}
		if r.Abort() {
			t.Fatal("idle abort reported a message")
		}
		r.Feed(AppendPDU(nil, pdus[0]))
		if !r.Abort() || r.Active() {
			t.Fatal("abort of an active message")
		}
	})
	t.Run("sequence numbers wrap after 15", func(t *testing.T) {
		r := Reassembler{MaxLength: 4095}
		long := seq(200) // 28 CFs: SN 1..15, 0..12
		msgs, _, errs := feedAll(&r, Segment(long))
		if len(errs) != 0 || len(msgs) != 1 || !bytes.Equal(msgs[0], long) {
			t.Fatalf("errs %v", errs)
		}
	})
}

// FuzzISOTPReassembly feeds the reassembler a segmented message interleaved with arbitrary
// frames, on classic CAN (dl 8 or less) or CAN FD (dl above 8: frames of up to dl bytes, the
// message segmented with TX_DL dl). It must never panic; every message it completes is within
// MaxLength; a message fed intact after the noise comes out whole.
func FuzzISOTPReassembly(f *testing.F) {
	f.Add([]byte{0x10, 0x14, 1, 2, 3, 4, 5, 6, 0x21, 7, 8, 9, 10, 11, 12, 13}, uint16(40), uint8(0), uint16(300), uint8(8))
	f.Add([]byte{0x03, 0x22, 0xFD, 0x00, 0x30, 0, 0, 0x21, 1}, uint16(9), uint8(2), uint16(4095), uint8(8))
	f.Add([]byte{0x10, 0x00, 0x00, 0x00, 0x10, 0x00, 1, 2, 0x21}, uint16(4096), uint8(1), uint16(5000), uint8(8))
	f.Add([]byte{0x0B, 0x00, 0x0A, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0x0B, 0x10, 0x0B, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, uint16(64), uint8(0), uint16(4095), uint8(64))
	f.Add([]byte{0x0F, 0x10, 0x40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0x07, 0x21, 1, 2, 3, 4, 5, 6}, uint16(200), uint8(3), uint16(4095), uint8(16))
	f.Fuzz(func(t *testing.T, noise []byte, msgLen uint16, bs uint8, maxLen uint16, dl uint8) {
		txDL := ValidTxDL(int(dl))
		r := Reassembler{MaxLength: uint32(maxLen), BlockSize: bs}
		check := func(st Step) {
			if st.Message != nil && uint32(len(st.Message)) > r.MaxLength {
				t.Fatalf("message of %d bytes over MaxLength %d", len(st.Message), r.MaxLength)
			}
			if st.FlowControl != nil && st.FlowControl.Status > Overflow {
				t.Fatalf("flow control %+v", st.FlowControl)
			}
		}
		for len(noise) > 0 {
			n := min(len(noise), 1+int(noise[0])%txDL)
			check(r.Feed(noise[:n]))
			noise = noise[n:]
		}
		if msgLen == 0 {
			return
		}
		msg := seq(int(msgLen))
		var got []byte
		for _, p := range SegmentFD(msg, txDL, 0) {
			frame := AppendPDU(nil, p)
			for len(frame) > 8 && !vcan.ValidFDLength(len(frame)) { // padded as a CAN FD sender does
				frame = append(frame, 0xCC)
			}
			st := r.Feed(frame)
			check(st)
			if st.Message != nil {
				got = st.Message
			}
		}
		if uint32(msgLen) <= r.MaxLength && !bytes.Equal(got, msg) {
			t.Fatalf("message of %d bytes did not come out whole after noise", msgLen)
		}
	})
}
