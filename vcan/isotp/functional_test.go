package isotp

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/shekit/shekit/vcan"
)

// TestSingleFrameReceiver: of the frames sent to its ID, the receiver returns the data of the
// valid single frames alone (classic, and CAN FD with the length escape), in order; first,
// consecutive and flow control frames, invalid single frames, other IDs and other address bytes
// are skipped; once closed it returns vcan.ErrClosed.
func TestSingleFrameReceiver(t *testing.T) {
	const id = 0x18DB33F1
	fd := func(data ...byte) vcan.Frame {
		f := vcan.Frame{ID: id, Extended: true, FD: true, Length: uint8(vcan.PadFDLength(len(data)))}
		copy(f.Data[:], data)
		return f
	}
	classic := func(id uint32, ext bool, data ...byte) vcan.Frame {
		f := vcan.Frame{ID: id, Extended: ext, Length: uint8(len(data))}
		copy(f.Data[:], data)
		return f
	}
	for _, tc := range []struct {
		name   string
		opts   []Option
		frames []vcan.Frame
		want   [][]byte
	}{
		{"normal-fixed CAN FD", []Option{WithExtendedIDs(), WithCANFD(64, true)}, []vcan.Frame{
			fd(0x10, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10), // first frame
			classic(id, true, 0x21, 1, 2, 3),              // consecutive frame
			classic(id, true, 0x30, 0x00, 0x00),           // flow control
			classic(id, true, 0x00, 0x3E),                 // single frame of length 0
			classic(id+1, true, 0x02, 0x3E, 0x00),         // another ID
			fd(0x00, 0x05, 0x22, 0xF1, 0x90, 0xFD, 0x00, 0xAA, 0xAA, 0xAA, 0xAA),
			classic(id, true, 0x02, 0x3E, 0x80, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC),
		}, [][]byte{{0x22, 0xF1, 0x90, 0xFD, 0x00}, {0x3E, 0x80}}},
		{"extended addressing", []Option{WithAddressExtension(0x00, 0xDF)}, []vcan.Frame{
			classic(0x6F1, false, 0x40, 0x02, 0x3E, 0x00), // the physical address byte
			classic(0x6F1, true, 0xDF, 0x02, 0x3E, 0x01),  // a 29-bit ID
			classic(0x6F1, false, 0xDF, 0x10, 0x08, 0x3E, 0x00, 0x00, 0x00, 0x00),
			classic(0x6F1, false, 0xDF, 0x07, 1, 2, 3, 4, 5, 6), // 7 bytes do not fit after the address
			classic(0x6F1, false, 0xDF, 0x02, 0x3E, 0x00),
		}, [][]byte{{0x3E, 0x00}}},
	} {
		h := vcan.NewHub()
		rxID := uint32(id)
		if tc.name == "extended addressing" {
			rxID = 0x6F1
		}
		r := NewSingleFrameReceiver(h.Connect(), rxID, tc.opts...)
		sender := h.Connect()
		for _, f := range tc.frames {
			if err := sender.SendFrame(context.Background(), f); err != nil {
				t.Fatalf("%s: send: %v", tc.name, err)
			}
		}
		for _, want := range tc.want {
			got, err := r.Receive(context.Background())
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: received % X, %v; want % X", tc.name, got, err, want)
			}
		}
		r.Close()
		if got, err := r.Receive(context.Background()); !errors.Is(err, vcan.ErrClosed) {
			t.Fatalf("%s: after the last message and Close: % X, %v; want vcan.ErrClosed", tc.name, got, err)
		}
		h.Close()
	}
}
