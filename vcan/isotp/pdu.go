// Package isotp is ISO 15765-2 (ISO-TP) on classic CAN: the protocol data units, a receiver
// state machine, a user-space transport over any vcan.Conn, and the Linux kernel's CAN_ISOTP
// socket behind the same Transport interface.
package isotp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Transport carries whole messages between two nodes.
type Transport interface {
	Send(ctx context.Context, msg []byte) error
	Receive(ctx context.Context) ([]byte, error)
	Close() error
}

// PDUType is the N_PCI type of a frame, its first nibble.
type PDUType uint8

// The PDU types.
const (
	SingleFrame      PDUType = 0
	FirstFrame       PDUType = 1
	ConsecutiveFrame PDUType = 2
	FlowControl      PDUType = 3
)

// FlowStatus is the status of a flow control frame.
type FlowStatus uint8

// The flow statuses.
const (
	ContinueToSend FlowStatus = 0
	Wait           FlowStatus = 1
	Overflow       FlowStatus = 2
)

// MaxLength12 is the largest message a first frame announces in 12 bits; longer ones use the
// 32-bit escape.
const MaxLength12 = 4095

// PDU is one ISO-TP protocol data unit.
type PDU struct {
	Type      PDUType
	Length    uint32 // SF: data length; FF: message length
	Data      []byte // SF, FF, CF: payload carried by this frame (for CF, up to the frame's end)
	SN        uint8  // CF: sequence number 0..15
	Status    FlowStatus
	BlockSize uint8
	STmin     uint8 // encoded: 0x00-0x7F ms, 0xF1-0xF9 100-900 µs
}

// Errors of ParsePDU.
var (
	ErrInvalidPDU = errors.New("isotp: invalid PDU")
)

// ParsePDU reads the PDU at the start of a frame's data and returns it with the number of bytes
// it covers (the rest is padding). A frame too short for its header gives io.ErrUnexpectedEOF.
func ParsePDU(b []byte) (PDU, int, error) {
	if len(b) == 0 {
		return PDU{}, 0, io.ErrUnexpectedEOF
	}
	p := PDU{Type: PDUType(b[0] >> 4)}
	switch p.Type {
	case SingleFrame:
		p.Length = uint32(b[0] & 0xF)
		if p.Length == 0 || p.Length > 7 {
			return PDU{}, 0, fmt.Errorf("%w: single frame of length %d", ErrInvalidPDU, p.Length)
		}
		if len(b) < 1+int(p.Length) {
			return PDU{}, 0, io.ErrUnexpectedEOF
		}
		p.Data = b[1 : 1+p.Length]
		return p, 1 + int(p.Length), nil
	case FirstFrame:
		if len(b) < 2 {
			return PDU{}, 0, io.ErrUnexpectedEOF
		}
		p.Length = uint32(b[0]&0xF)<<8 | uint32(b[1])
		head := 2
		if p.Length == 0 {
			if len(b) < 6 {
				return PDU{}, 0, io.ErrUnexpectedEOF
			}
			p.Length = uint32(b[2])<<24 | uint32(b[3])<<16 | uint32(b[4])<<8 | uint32(b[5])
			head = 6
			if p.Length <= MaxLength12 {
				return PDU{}, 0, fmt.Errorf("%w: escaped first frame of length %d", ErrInvalidPDU, p.Length)
			}
		}
		if p.Length <= 7 {
			return PDU{}, 0, fmt.Errorf("%w: first frame of length %d fits a single frame", ErrInvalidPDU, p.Length)
		}
		if len(b) < 8 {
			return PDU{}, 0, io.ErrUnexpectedEOF // a first frame fills the CAN frame
		}
		p.Data = b[head:8]
		return p, 8, nil
	case ConsecutiveFrame:
		p.SN = b[0] & 0xF
		p.Data = b[1:min(len(b), 8)]
		return p, 1 + len(p.Data), nil
	case FlowControl:
		if len(b) < 3 {
			return PDU{}, 0, io.ErrUnexpectedEOF
		}
		p.Status = FlowStatus(b[0] & 0xF)
		if p.Status > Overflow {
			return PDU{}, 0, fmt.Errorf("%w: flow status %d", ErrInvalidPDU, p.Status)
		}
		p.BlockSize, p.STmin = b[1], b[2]
		return p, 3, nil
	}
	return PDU{}, 0, fmt.Errorf("%w: type %d", ErrInvalidPDU, p.Type)
}

// AppendPDU appends the encoding of p to b. For SF and CF, p.Data is the payload; for FF,
// p.Length is the message length and p.Data the first bytes (6, or 2 with the escape).
func AppendPDU(b []byte, p PDU) []byte {
	switch p.Type {
	case SingleFrame:
		b = append(b, byte(len(p.Data)))
		return append(b, p.Data...)
	case FirstFrame:
		if p.Length > MaxLength12 {
			b = append(b, 0x10, 0, byte(p.Length>>24), byte(p.Length>>16), byte(p.Length>>8), byte(p.Length))
		} else {
			b = append(b, 0x10|byte(p.Length>>8), byte(p.Length))
		}
		return append(b, p.Data...)
	case ConsecutiveFrame:
		b = append(b, 0x20|p.SN&0xF)
		return append(b, p.Data...)
	case FlowControl:
		return append(b, 0x30|byte(p.Status), p.BlockSize, p.STmin)
	}
	panic(fmt.Sprintf("isotp: AppendPDU of type %d", p.Type))
}

// Len is the number of bytes AppendPDU writes for p.
func (p PDU) Len() int {
	switch p.Type {
	case SingleFrame, ConsecutiveFrame:
		return 1 + len(p.Data)
	case FirstFrame:
		if p.Length > MaxLength12 {
			return 6 + len(p.Data)
		}
		return 2 + len(p.Data)
	}
	return 3
}

// Segment splits msg into the PDUs that carry it on classic CAN: one single frame, or a first
// frame and consecutive frames numbered from 1. Their Data alias msg.
func Segment(msg []byte) []PDU {
	if len(msg) <= 7 {
		return []PDU{{Type: SingleFrame, Length: uint32(len(msg)), Data: msg}}
	}
	first := 6
	if len(msg) > MaxLength12 {
		first = 2
	}
	pdus := make([]PDU, 0, 1+(len(msg)-first+6)/7)
	pdus = append(pdus, PDU{Type: FirstFrame, Length: uint32(len(msg)), Data: msg[:first]})
	sn := uint8(1)
	for rest := msg[first:]; len(rest) > 0; sn = (sn + 1) & 0xF {
		n := min(7, len(rest))
		pdus = append(pdus, PDU{Type: ConsecutiveFrame, SN: sn, Data: rest[:n]})
		rest = rest[n:]
	}
	return pdus
}

// STminDuration decodes a separation time. Reserved values count as the longest, 127 ms, as ISO
// 15765-2 tells the sender to do.
func STminDuration(v uint8) time.Duration {
	switch {
	case v <= 0x7F:
		return time.Duration(v) * time.Millisecond
	case v >= 0xF1 && v <= 0xF9:
		return time.Duration(v-0xF0) * 100 * time.Microsecond
	}
	return 127 * time.Millisecond
}

// EncodeSTmin returns the separation time code for d: whole milliseconds up to 127 ms, or
// 100-900 µs, rounded up.
func EncodeSTmin(d time.Duration) uint8 {
	switch {
	case d <= 0:
		return 0
	case d < time.Millisecond:
		return 0xF0 + uint8((d+99*time.Microsecond)/(100*time.Microsecond))
	case d >= 127*time.Millisecond:
		return 0x7F
	}
	return uint8((d + time.Millisecond - 1) / time.Millisecond)
}
