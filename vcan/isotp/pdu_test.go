package isotp

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

func TestParsePDU(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
		want  PDU
		n     int
	}{
		{"single frame, padded", []byte{0x03, 0x22, 0xFD, 0x00, 0xCC, 0xCC, 0xCC, 0xCC}, PDU{Type: SingleFrame, Length: 3, Data: []byte{0x22, 0xFD, 0x00}}, 4},
		{"single frame of 7", []byte{0x07, 1, 2, 3, 4, 5, 6, 7}, PDU{Type: SingleFrame, Length: 7, Data: []byte{1, 2, 3, 4, 5, 6, 7}}, 8},
		{"first frame, 12-bit length 68", []byte{0x10, 0x44, 0x31, 0x01, 0xFD, 0x10, 0xAA, 0xBB}, PDU{Type: FirstFrame, Length: 68, Data: []byte{0x31, 0x01, 0xFD, 0x10, 0xAA, 0xBB}}, 8},
		{"first frame, 4095", []byte{0x1F, 0xFF, 1, 2, 3, 4, 5, 6}, PDU{Type: FirstFrame, Length: 4095, Data: []byte{1, 2, 3, 4, 5, 6}}, 8},
		{"first frame, 32-bit escape 4096", []byte{0x10, 0x00, 0x00, 0x00, 0x10, 0x00, 0xAA, 0xBB}, PDU{Type: FirstFrame, Length: 4096, Data: []byte{0xAA, 0xBB}}, 8},
		{"consecutive frame 1", []byte{0x21, 1, 2, 3, 4, 5, 6, 7}, PDU{Type: ConsecutiveFrame, SN: 1, Data: []byte{1, 2, 3, 4, 5, 6, 7}}, 8},
		{"consecutive frame 0, short", []byte{0x20, 9}, PDU{Type: ConsecutiveFrame, SN: 0, Data: []byte{9}}, 2},
		{"flow control CTS", []byte{0x30, 0x00, 0x00, 0xCC, 0xCC}, PDU{Type: FlowControl, Status: ContinueToSend}, 3},
		{"flow control WAIT", []byte{0x31, 0x08, 0x14}, PDU{Type: FlowControl, Status: Wait, BlockSize: 8, STmin: 0x14}, 3},
		{"flow control OVERFLOW", []byte{0x32, 0, 0xF5}, PDU{Type: FlowControl, Status: Overflow, STmin: 0xF5}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, n, err := ParsePDU(tc.frame)
			if err != nil || n != tc.n || got.Type != tc.want.Type || got.Length != tc.want.Length ||
				!bytes.Equal(got.Data, tc.want.Data) || got.SN != tc.want.SN || got.Status != tc.want.Status ||
				got.BlockSize != tc.want.BlockSize || got.STmin != tc.want.STmin {
				t.Fatalf("got %+v, %d, %v; want %+v, %d", got, n, err, tc.want, tc.n)
			}
			enc := AppendPDU(nil, got)
			if len(enc) != got.Len() || !bytes.Equal(enc, tc.frame[:n]) {
				t.Fatalf("AppendPDU = % x (Len %d), want % x", enc, got.Len(), tc.frame[:n])
			}
			// Every truncated prefix of the header or announced data is io.ErrUnexpectedEOF.
			if got.Type != ConsecutiveFrame {
				for cut := 0; cut < n; cut++ {
					if _, _, err := ParsePDU(tc.frame[:cut]); !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Errorf("prefix of %d bytes: %v, want io.ErrUnexpectedEOF", cut, err)
					}
				}
			}
		})
	}
}

func TestParsePDURejectsInvalid(t *testing.T) {
	for _, frame := range [][]byte{
		{0x00, 1, 2},                               // single frame of length 0
		{0x08, 1, 2, 3, 4, 5, 6, 7},                // single frame of length 8 on classic CAN
		{0x10, 0x07, 1, 2, 3, 4, 5, 6},             // first frame of a length a single frame carries
		{0x10, 0x00, 0x00, 0x00, 0x0F, 0xFF, 1, 2}, // escape for a 12-bit length
		{0x33, 0, 0},                               // flow status 3
		{0x40, 1, 2},                               // PDU type 4
		{0xF0},
	} {
		if p, _, err := ParsePDU(frame); !errors.Is(err, ErrInvalidPDU) {
			t.Errorf("% x: %+v, %v; want ErrInvalidPDU", frame, p, err)
		}
	}
}

func TestSTmin(t *testing.T) {
	for _, tc := range []struct {
		code uint8
		d    time.Duration
	}{
		{0x00, 0}, {0x01, time.Millisecond}, {0x7F, 127 * time.Millisecond},
		{0xF1, 100 * time.Microsecond}, {0xF9, 900 * time.Microsecond},
		// Reserved codes: the sender uses the longest time, 127 ms.
		{0x80, 127 * time.Millisecond}, {0xF0, 127 * time.Millisecond}, {0xFA, 127 * time.Millisecond}, {0xFF, 127 * time.Millisecond},
	} {
		if got := STminDuration(tc.code); got != tc.d {
			t.Errorf("STminDuration(%#02x) = %v, want %v", tc.code, got, tc.d)
		}
	}
	for _, tc := range []struct {
		d    time.Duration
		code uint8
	}{
		{0, 0}, {50 * time.Microsecond, 0xF1}, {500 * time.Microsecond, 0xF5}, {900 * time.Microsecond, 0xF9},
		{time.Millisecond, 1}, {1500 * time.Microsecond, 2}, {time.Second, 0x7F},
	} {
		if got := EncodeSTmin(tc.d); got != tc.code {
			t.Errorf("EncodeSTmin(%v) = %#02x, want %#02x", tc.d, got, tc.code)
		}
	}
}

func TestSegment(t *testing.T) {
	for _, n := range []int{1, 7, 8, 13, 14, 68, 4095, 4096, 5000} {
		msg := make([]byte, n)
		for i := range msg {
			msg[i] = byte(i)
		}
		pdus := Segment(msg)
		// ISO 15765-2: a first frame carries 6 bytes (2 with the escape), each CF 7.
		first := 6
		if n > 4095 {
			first = 2
		}
		wantFrames := 1
		if n > 7 {
			wantFrames = 1 + (n-first+6)/7
		}
		if len(pdus) != wantFrames {
			t.Errorf("%d bytes: %d PDUs, want %d", n, len(pdus), wantFrames)
		}
		var joined []byte
		for i, p := range pdus {
			if p.Type == ConsecutiveFrame && p.SN != uint8(i)&0xF {
				t.Fatalf("%d bytes: CF %d has SN %d", n, i, p.SN)
			}
			if enc := AppendPDU(nil, p); len(enc) > 8 {
				t.Fatalf("%d bytes: PDU %d is %d bytes", n, i, len(enc))
			}
			joined = append(joined, p.Data...)
		}
		if !bytes.Equal(joined, msg) {
			t.Errorf("%d bytes: segments do not join to the message", n)
		}
	}
}
