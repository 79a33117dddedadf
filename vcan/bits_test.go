package vcan

import (
	"testing"
	"time"
	"unsafe"

	"go.einride.tech/can"
)

// TestFrameIsClassicCAN records the choice of classic CAN: a frame is a 16-byte value with at
// most 8 data bytes. CAN FD would need another frame type.
func TestFrameIsClassicCAN(t *testing.T) {
	if size := unsafe.Sizeof(can.Frame{}); size != 16 {
		t.Fatalf("can.Frame is %d bytes, want 16", size)
	}
	if n := len(can.Data{}); n != 8 {
		t.Fatalf("can.Data holds %d bytes, want 8", n)
	}
}

// TestCRC15CheckValue: the CRC catalogue's check value of CRC-15/CAN over the ASCII digits
// "123456789" is 0x059E.
func TestCRC15CheckValue(t *testing.T) {
	var bits []byte
	for _, c := range []byte("123456789") {
		for i := 7; i >= 0; i-- {
			bits = append(bits, c>>i&1)
		}
	}
	if got := crc15(bits); got != 0x059E {
		t.Fatalf("crc15(\"123456789\") = %#04x, want 0x059e", got)
	}
}

// TestWorstCaseFrameBits: the classic figures for worst-case stuffed frames (Davis, Burns, Bril,
// Lukkien, "Controller Area Network (CAN) schedulability analysis", 2007): 8-byte frames take 135
// bit times with 11-bit IDs and 160 with 29-bit IDs; in general 55 + 10n and 80 + 10n for n = 8.
func TestWorstCaseFrameBits(t *testing.T) {
	for n := uint8(0); n <= 8; n++ {
		std := can.Frame{ID: 0x7E0, Length: n}
		ext := can.Frame{ID: 0x18DA00F1, Length: n, IsExtended: true}
		wantStd := 47 + 8*int(n) + (34+8*int(n)-1)/4
		wantExt := 67 + 8*int(n) + (54+8*int(n)-1)/4
		if got := FrameBits(std, WorstCaseStuffing); got != wantStd {
			t.Errorf("11-bit, %d bytes: %d bits, want %d", n, got, wantStd)
		}
		if got := FrameBits(ext, WorstCaseStuffing); got != wantExt {
			t.Errorf("29-bit, %d bytes: %d bits, want %d", n, got, wantExt)
		}
	}
	if got := FrameBits(can.Frame{ID: 1, Length: 8}, WorstCaseStuffing); got != 135 {
		t.Errorf("8-byte 11-bit frame: %d bits, want 135", got)
	}
	if got := FrameBits(can.Frame{ID: 1, Length: 8, IsExtended: true}, WorstCaseStuffing); got != 160 {
		t.Errorf("8-byte 29-bit frame: %d bits, want 160", got)
	}
	// 500 kbit/s: 135 bits take 270 µs.
	if d := FrameTime(can.Frame{ID: 1, Length: 8}, WorstCaseStuffing, 500000); d != 270*time.Microsecond {
		t.Errorf("frame time %v, want 270µs", d)
	}
}

// TestStuffBits: after five equal bits the transmitter inserts one of the opposite value, which
// counts towards the next run (ISO 11898-1 bit stuffing).
func TestStuffBits(t *testing.T) {
	for _, tc := range []struct {
		bits string
		want int
	}{
		{"0101010101", 0},
		{"0000", 0},
		{"00000", 1},
		{"000001", 1},     // the stuff bit (1) and the next 1 form a run of two
		{"0000011111", 2}, // stuff 1 after the zeros; the stuff bit plus four 1s make five: stuff again
		{"0000000000", 2},
		{"1111100000", 2},
	} {
		bits := make([]byte, len(tc.bits))
		for i, c := range tc.bits {
			bits[i] = byte(c - '0')
		}
		if got := stuffBits(bits); got != tc.want {
			t.Errorf("%s: %d stuff bits, want %d", tc.bits, got, tc.want)
		}
	}
}

// TestComputedStuffingWithinBounds: a real frame never needs more stuff bits than the worst case.
func TestComputedStuffingWithinBounds(t *testing.T) {
	for id := uint32(0); id < 0x800; id += 0x55 {
		for n := uint8(0); n <= 8; n++ {
			f := can.Frame{ID: id, Length: n}
			for i := range f.Data {
				f.Data[i] = byte(id) * byte(i+1)
			}
			c, w := FrameBits(f, ComputedStuffing), FrameBits(f, WorstCaseStuffing)
			if min := 47 + 8*int(n); c < min || c > w {
				t.Fatalf("frame %v: %d bits computed, outside [%d, %d]", f, c, min, w)
			}
		}
	}
}
