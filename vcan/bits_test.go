package vcan

import (
	"testing"
	"time"
	"unsafe"

	"go.einride.tech/can"
)

// TestFrameIsClassicCAN records that can.Frame is classic CAN: a 16-byte value with at most 8
// data bytes. CAN FD frames travel as vcan.Frame.
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

// TestFDWorstCaseFrameBits: CAN FD frame lengths with worst-case stuffing, counted by hand from
// the fields of ISO 11898-1:2015 as Linux's include/linux/can/length.h lists them: a header of 22
// bits (base format: SOF, ID 11, RRS, IDE, FDF, res, BRS, ESI, DLC 4) or 41 (extended: SOF, ID-A
// 11, SRR, IDE, ID-B 18, RRS, FDF, res, BRS, ESI, DLC 4) plus the data, stuffed at worst as
// L + (L-1)/4; then a CRC field of 28 bits up to 16 data bytes (stuff count 4, CRC-17, delimiter,
// 6 fixed stuff bits) or 33 beyond (CRC-21, 7 fixed stuff bits); ACK 2, EOF 7, intermission 3.
// With BRS, the nominal phase is SOF through BRS (17 bits, or 36 extended), the stuff bits among
// them (after bits 5, 9, 13, and 17, 21, 25, 29, 33 extended: 3, or 8), the CRC delimiter and the
// 12 bits after it.
func TestFDWorstCaseFrameBits(t *testing.T) {
	for _, tc := range []struct {
		ext     bool
		n       uint8
		total   int
		nominal int // with BRS
	}{
		// 22 bits, stuffed 22+21/4 = 27; +28 +9 +3.
		{false, 0, 67, 33},
		// 22+64 = 86, stuffed 86+85/4 = 107; +28+12.
		{false, 8, 147, 33},
		// 22+96 = 118, stuffed 118+117/4 = 147; +28+12.
		{false, 12, 187, 33},
		// 22+128 = 150, stuffed 150+149/4 = 187; +28+12.
		{false, 16, 227, 33},
		// 22+160 = 182, stuffed 182+181/4 = 227; CRC-21: +33+12.
		{false, 20, 272, 33},
		// 22+512 = 534, stuffed 534+533/4 = 667; +33+12.
		{false, 64, 712, 33},
		// 41, stuffed 41+40/4 = 51; +28+12.
		{true, 0, 91, 57},
		// 41+64 = 105, stuffed 105+104/4 = 131; +28+12.
		{true, 8, 171, 57},
		// 41+512 = 553, stuffed 553+552/4 = 691; +33+12.
		{true, 64, 736, 57},
	} {
		f := Frame{ID: 0x7E0, Extended: tc.ext, FD: true, Length: tc.n}
		if tc.ext {
			f.ID = 0x18DA00F1
		}
		if got := FDFrameBits(f, WorstCaseStuffing); got != (PhaseBits{Nominal: tc.total}) {
			t.Errorf("ext=%v %d bytes without BRS: %+v, want %d nominal", tc.ext, tc.n, got, tc.total)
		}
		f.BRS = true
		want := PhaseBits{Nominal: tc.nominal, Data: tc.total - tc.nominal}
		if got := FDFrameBits(f, WorstCaseStuffing); got != want {
			t.Errorf("ext=%v %d bytes with BRS: %+v, want %+v", tc.ext, tc.n, got, want)
		}
	}
	// 64 bytes with BRS at 500 kbit/s and 2 Mbit/s: 33 bits × 2 µs + 679 bits × 0.5 µs = 405.5 µs.
	f := Frame{ID: 0x7E0, FD: true, BRS: true, Length: 64}
	if d := FDFrameTime(f, WorstCaseStuffing, 500000, 2000000); d != 405500*time.Nanosecond {
		t.Errorf("64-byte FD frame: %v, want 405.5µs", d)
	}
	// Without a data rate, the data phase runs at the nominal rate: 712 bits × 2 µs.
	if d := FDFrameTime(f, WorstCaseStuffing, 500000, 0); d != 1424*time.Microsecond {
		t.Errorf("64-byte FD frame at one rate: %v, want 1.424ms", d)
	}
	// A classic frame is all nominal: 135 bits for 8 bytes.
	if got := FDFrameBits(FromClassic(can.Frame{ID: 1, Length: 8}), WorstCaseStuffing); got != (PhaseBits{Nominal: 135}) {
		t.Errorf("classic 8-byte frame: %+v", got)
	}
}

// TestFDComputedStuffing counts the stuff bits of two frames by hand. ID 0 with BRS and no data:
// SOF and the ID make 12 zeros, RRS and IDE two more (14): stuff bits after the 5th and 10th
// (both in the arbitration phase); then FDF 1, res 0, BRS 1, ESI 0 and DLC 0000: five zeros after
// BRS, a stuff bit after the last, in the data phase. Nominal: 17 + 2 + 13 = 32; data: ESI and DLC
// 5 + 1 stuff + 4 + 17 + 6 = 33. Without BRS the tail is res, BRS, ESI and DLC: seven zeros, one
// stuff bit: 2 + 1 stuff bits, 22 + 3 + 27 + 13 = 65 bits.
func TestFDComputedStuffing(t *testing.T) {
	f := Frame{FD: true, BRS: true}
	if got := FDFrameBits(f, ComputedStuffing); got != (PhaseBits{Nominal: 32, Data: 33}) {
		t.Errorf("ID 0 with BRS: %+v, want {32 33}", got)
	}
	f.BRS = false
	if got := FDFrameBits(f, ComputedStuffing); got != (PhaseBits{Nominal: 65}) {
		t.Errorf("ID 0 without BRS: %+v, want {65 0}", got)
	}
	for id := uint32(0); id < 0x800; id += 0x55 {
		for _, n := range FDLengths {
			f := Frame{ID: id, FD: true, BRS: id%2 == 0, Length: n}
			for i := range f.Data {
				f.Data[i] = byte(id) * byte(i+1)
			}
			c, w := FDFrameBits(f, ComputedStuffing), FDFrameBits(f, WorstCaseStuffing)
			if c.Total() > w.Total() || c.Nominal > w.Nominal {
				t.Fatalf("frame %+v: %+v computed, over the worst case %+v", f, c, w)
			}
		}
	}
}

func TestFDLengths(t *testing.T) {
	for n, want := range map[int]int{0: 0, 7: 7, 8: 8, 9: 12, 12: 12, 13: 16, 17: 20, 21: 24, 25: 32, 33: 48, 49: 64, 64: 64, 65: 0} {
		if got := PadFDLength(n); got != want {
			t.Errorf("PadFDLength(%d) = %d, want %d", n, got, want)
		}
	}
	for n, dlc := range map[int]uint8{0: 0, 8: 8, 12: 9, 16: 10, 20: 11, 24: 12, 32: 13, 48: 14, 64: 15} {
		if got, ok := FDLengthToDLC(n); !ok || got != dlc {
			t.Errorf("FDLengthToDLC(%d) = %d, %v; want %d", n, got, ok, dlc)
		}
	}
	for _, n := range []int{9, 10, 11, 13, 63, 65, -1} {
		if ValidFDLength(n) {
			t.Errorf("%d bytes accepted as a CAN FD length", n)
		}
	}
}

func TestFrameValidate(t *testing.T) {
	for _, f := range []Frame{
		{ID: 0x7FF, Length: 8},
		{ID: 0x1FFFFFFF, Extended: true, FD: true, BRS: true, ESI: true, Length: 64},
		{ID: 0x123, FD: true, Length: 12},
		{ID: 0x123, Remote: true, Length: 3},
	} {
		if err := f.Validate(); err != nil {
			t.Errorf("%+v: %v", f, err)
		}
	}
	for _, f := range []Frame{
		{ID: 0x800},
		{ID: 0x20000000, Extended: true},
		{ID: 1, Length: 9},
		{ID: 1, Length: 12},
		{ID: 1, FD: true, Length: 13},
		{ID: 1, FD: true, Length: 65},
		{ID: 1, FD: true, Remote: true},
		{ID: 1, BRS: true},
		{ID: 1, ESI: true},
	} {
		if err := f.Validate(); err == nil {
			t.Errorf("%+v accepted", f)
		}
	}
	c := can.Frame{ID: 0x18DA00F1, IsExtended: true, Length: 3, Data: can.Data{1, 2, 3}}
	if back, ok := FromClassic(c).Classic(); !ok || back != c {
		t.Errorf("classic round trip: %v %v", back, ok)
	}
	if _, ok := (Frame{ID: 1, FD: true, Length: 8}).Classic(); ok {
		t.Error("a CAN FD frame of 8 bytes passed as classic")
	}
}
