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

// FrameTime is how long f occupies a bus of bitRate bits per second.
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
