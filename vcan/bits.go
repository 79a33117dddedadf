package vcan

import (
	"time"

	"go.einride.tech/can"
)

// Stuffing says how FrameBits counts stuff bits.
type Stuffing uint8

const (
	// WorstCaseStuffing counts the most stuff bits any frame of that length can carry:
	// floor((L-1)/4) over the L bits from SOF to the end of the CRC.
	WorstCaseStuffing Stuffing = iota
	// ComputedStuffing builds the frame's bit stream, CRC included, and counts the stuff bits it
	// actually needs.
	ComputedStuffing
)

// FrameBits is the number of bit times a classic CAN data or remote frame occupies the bus,
// from its start-of-frame bit through the intermission (3 bits), with stuff bits counted as s
// says.
func FrameBits(f can.Frame, s Stuffing) int {
	stream := frameStream(f)
	stuff := (len(stream) - 1) / 4
	if s == ComputedStuffing {
		stuff = stuffBits(stream)
	}
	// CRC delimiter 1, ACK slot 1, ACK delimiter 1, end of frame 7, intermission 3.
	return len(stream) + stuff + 13
}

// FrameTime is how long the classic frame f occupies a bus of bitRate bits per second.
func FrameTime(f can.Frame, s Stuffing, bitRate int) time.Duration {
	return time.Duration(FrameBits(f, s)) * time.Second / time.Duration(bitRate)
}

// frameStream returns the bits subject to stuffing, SOF through CRC, one bit per byte.
func frameStream(f can.Frame) []byte {
	bits := make([]byte, 0, 54+64+15)
	put := func(v uint32, n int) {
		for i := n - 1; i >= 0; i-- {
			bits = append(bits, byte(v>>i)&1)
		}
	}
	rtr := uint32(0)
	if f.IsRemote {
		rtr = 1
	}
	put(0, 1) // SOF
	if f.IsExtended {
		put(f.ID>>18, 11)
		put(1, 1) // SRR
		put(1, 1) // IDE
		put(f.ID, 18)
		put(rtr, 1)
		put(0, 2) // r1, r0
	} else {
		put(f.ID, 11)
		put(rtr, 1)
		put(0, 2) // IDE, r0
	}
	put(uint32(f.Length), 4)
	if !f.IsRemote {
		for i := 0; i < int(f.Length); i++ {
			put(uint32(f.Data[i]), 8)
		}
	}
	put(uint32(crc15(bits)), 15)
	return bits
}

// crc15 is the CAN CRC (polynomial 0x4599) over bits.
func crc15(bits []byte) uint16 {
	var crc uint16
	for _, b := range bits {
		next := uint16(b) ^ (crc >> 14 & 1)
		crc = crc << 1 & 0x7FFF
		if next == 1 {
			crc ^= 0x4599
		}
	}
	return crc
}

// stuffBits counts the bits a transmitter inserts: after five equal bits, one of the opposite
// value, which itself starts the next run.
func stuffBits(bits []byte) int {
	n, run := 0, 0
	var last byte = 2
	for _, b := range bits {
		if b == last {
			run++
		} else {
			last, run = b, 1
		}
		if run == 5 {
			n++
			last, run = 1-b, 1
		}
	}
	return n
}

// PhaseBits is the number of bit times a frame spends in each phase of a CAN FD bus: the nominal
// (arbitration) bit rate, and the data bit rate when the frame switches to it.
type PhaseBits struct {
	Nominal int
	Data    int
}

// Total is the number of bit times of both phases.
func (b PhaseBits) Total() int { return b.Nominal + b.Data }

// Lengths of CAN FD frame fields in ISO 11898-1:2015 (the CAN FD base format FBFF and extended
// format FEFF; the same fields as Linux's include/linux/can/length.h counts).
const (
	// SOF, 11-bit ID, RRS, IDE, FDF, res, BRS: the arbitration phase of a base-format frame; the
	// bit rate switches at the sample point of BRS.
	fdArbitrationBitsSFF = 1 + 11 + 1 + 1 + 1 + 1 + 1
	// SOF, ID-A (11), SRR, IDE, ID-B (18), RRS, FDF, res, BRS.
	fdArbitrationBitsEFF = 1 + 11 + 1 + 1 + 18 + 1 + 1 + 1 + 1
	// ESI and DLC: the control field after the switch.
	fdControlDataBits = 1 + 4
	// The CRC field: a 4-bit stuff count (3-bit Gray code and parity), then the CRC sequence, with
	// fixed stuff bits instead of dynamic ones: one before the stuff count and one after every 4
	// bits (6 with CRC-17, 7 with CRC-21).
	fdStuffCountBits = 4
	// CRC delimiter (where the bit rate switches back), ACK slot, ACK delimiter, EOF (7),
	// intermission (3): all at the nominal rate.
	fdTrailerBits = 1 + 1 + 1 + 7 + 3
)

// fdCRCBits returns the CRC length and fixed stuff bits of a CAN FD frame of n data bytes:
// CRC-17 up to 16 bytes, CRC-21 beyond (ISO 11898-1:2015).
func fdCRCBits(n int) (crc, fixedStuff int) {
	if n <= 16 {
		return 17, 6
	}
	return 21, 7
}

// FDFrameBits is the number of bit times frame f occupies the bus in each phase, from its SOF
// through the intermission, with dynamic stuff bits counted as s says. A classic frame is all
// nominal (FrameBits). For a CAN FD frame, dynamic stuffing covers SOF through the data field
// (ISO 11898-1:2015 bit stuffing: five equal bits get a stuff bit of the opposite value); the CRC field
// has its fixed stuff bits instead; a stuff bit that follows BRS is already sent at the data rate.
// Without BRS every bit is nominal. BRS and the CRC delimiter, where the rate switches at the
// sample point, count whole at the nominal rate: a slight overestimate.
func FDFrameBits(f Frame, s Stuffing) PhaseBits {
	if !f.FD {
		c, _ := f.Classic()
		return PhaseBits{Nominal: FrameBits(c, s)}
	}
	stream, arb := fdFrameStream(f)
	var arbStuff, dataStuff int
	if s == ComputedStuffing {
		arbStuff, dataStuff = stuffBitsSplit(stream, arb)
	} else {
		// The worst case inserts a stuff bit after bits 5, 9, 13, …: floor((L-1)/4) in all, of
		// which those after one of the first arb-1 bits are in the arbitration phase.
		arbStuff = (arb - 2) / 4
		dataStuff = (len(stream)-1)/4 - arbStuff
	}
	crc, fixed := fdCRCBits(int(f.Length))
	b := PhaseBits{Nominal: arb + arbStuff + fdTrailerBits, Data: len(stream) - arb + dataStuff + fdStuffCountBits + crc + fixed}
	if !f.BRS {
		return PhaseBits{Nominal: b.Total()}
	}
	return b
}

// FDFrameTime is how long f occupies a bus whose nominal bit rate is nominalRate and whose data
// phase (for CAN FD frames with BRS) runs at dataRate bits per second.
func FDFrameTime(f Frame, s Stuffing, nominalRate, dataRate int) time.Duration {
	b := FDFrameBits(f, s)
	if dataRate <= 0 {
		dataRate = nominalRate
	}
	return time.Duration(b.Nominal)*time.Second/time.Duration(nominalRate) +
		time.Duration(b.Data)*time.Second/time.Duration(dataRate)
}

// fdFrameStream returns the bits of a CAN FD frame subject to dynamic stuffing, SOF through the
// data field, one bit per byte, and how many of them belong to the arbitration phase.
func fdFrameStream(f Frame) ([]byte, int) {
	bits := make([]byte, 0, fdArbitrationBitsEFF+fdControlDataBits+8*int(f.Length))
	put := func(v uint32, n int) {
		for i := n - 1; i >= 0; i-- {
			bits = append(bits, byte(v>>i)&1)
		}
	}
	put(0, 1) // SOF
	if f.Extended {
		put(f.ID>>18, 11)
		put(1, 1) // SRR
		put(1, 1) // IDE
		put(f.ID, 18)
	} else {
		put(f.ID, 11)
	}
	put(0, 1) // RRS
	if !f.Extended {
		put(0, 1) // IDE
	}
	put(1, 1) // FDF
	put(0, 1) // res
	put(b2u(f.BRS), 1)
	arb := len(bits)
	put(b2u(f.ESI), 1)
	dlc, _ := FDLengthToDLC(int(f.Length))
	put(uint32(dlc), 4)
	for i := 0; i < int(f.Length); i++ {
		put(uint32(f.Data[i]), 8)
	}
	return bits, arb
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// stuffBitsSplit counts the stuff bits a transmitter inserts into bits (as stuffBits), split into
// those inserted after one of the first split-1 bits and the rest.
func stuffBitsSplit(bits []byte, split int) (before, after int) {
	run := 0
	var last byte = 2
	for i, b := range bits {
		if b == last {
			run++
		} else {
			last, run = b, 1
		}
		if run == 5 {
			if i < split-1 {
				before++
			} else {
				after++
			}
			last, run = 1-b, 1
		}
	}
	return before, after
}
