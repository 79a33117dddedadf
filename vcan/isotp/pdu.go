// Package isotp is ISO 15765-2 (ISO-TP) on classic CAN and, as ISO 15765-2:2016 adds, on CAN FD:
// the protocol data units, a receiver state machine, a user-space transport over any vcan.Conn
// (vcan.FrameConn for CAN FD), and the Linux kernel's CAN_ISOTP socket behind the same Transport
// interface.
package isotp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shekit/shekit/vcan"
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
	Escape    bool   // SF: SF_DL escape (first byte 0x00, the length in the second), as in CAN FD frames of more than 8 bytes
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

// ParsePDU reads the PDU at the start of a frame's data (all CAN_DL bytes of the frame, padding
// included) and returns it with the number of bytes it covers (the rest is padding). A frame too
// short for its header gives io.ErrUnexpectedEOF. See ParsePDUAt for the rules.
func ParsePDU(b []byte) (PDU, int, error) { return ParsePDUAt(b, 0) }

// ParsePDUAt reads the PDU of a frame's data b, all CAN_DL bytes of it, whose first ae bytes (0,
// or 1 with extended and mixed addressing) are an address; the count returned includes them. It
// accepts what ISO 15765-2:2016 lets a receiver accept, classic CAN and CAN FD alike:
//   - SF with CAN_DL ≤ 8: SF_DL in the low nibble, 1 to 7-ae (0 is the escape, invalid here);
//   - SF with CAN_DL > 8: the escape (low nibble 0) and SF_DL in the next byte, 1 to CAN_DL-2-ae
//     (no lower bound, as Linux's CAN_ISOTP does);
//   - FF: CAN_DL 8 or a CAN FD length above it (that CAN_DL is the sender's TX_DL, the receiver's
//     RX_DL), FF_DL at least FF_DLmin (8-ae with RX_DL 8, RX_DL-1-ae above: less would have fit
//     a single frame), the 32-bit escape only beyond 4095; the first frame fills its frame;
//   - CF: everything after the sequence number (the reassembler checks it against RX_DL).
func ParsePDUAt(b []byte, ae int) (PDU, int, error) {
	if len(b) <= ae {
		return PDU{}, 0, io.ErrUnexpectedEOF
	}
	canDL, b := len(b), b[ae:]
	p := PDU{Type: PDUType(b[0] >> 4)}
	switch p.Type {
	case SingleFrame:
		return parseSF(p, b, canDL, ae)
	case FirstFrame:
		return parseFF(p, b, canDL, ae)
	case ConsecutiveFrame:
		p.SN = b[0] & 0xF
		p.Data = b[1:]
		return p, ae + 1 + len(p.Data), nil
	case FlowControl:
		if len(b) < 3 {
			return PDU{}, 0, io.ErrUnexpectedEOF
		}
		p.Status = FlowStatus(b[0] & 0xF)
		if p.Status > Overflow {
			return PDU{}, 0, fmt.Errorf("%w: flow status %d", ErrInvalidPDU, p.Status)
		}
		p.BlockSize, p.STmin = b[1], b[2]
		return p, ae + 3, nil
	}
	return PDU{}, 0, fmt.Errorf("%w: type %d", ErrInvalidPDU, p.Type)
}

// parseSF reads a single frame's N_PCI and data from b (after the address bytes).
func parseSF(p PDU, b []byte, canDL, ae int) (PDU, int, error) {
	head := 1
	p.Length = uint32(b[0] & 0xF)
	if canDL > 8 {
		if p.Length != 0 {
			return PDU{}, 0, fmt.Errorf("%w: single frame of %d bytes without the length escape", ErrInvalidPDU, canDL)
		}
		p.Escape, p.Length, head = true, uint32(b[1]), 2
		if p.Length == 0 || int(p.Length) > canDL-2-ae {
			return PDU{}, 0, fmt.Errorf("%w: single frame of length %d in %d bytes", ErrInvalidPDU, p.Length, canDL)
		}
	} else if p.Length == 0 || int(p.Length) > 7-ae {
		return PDU{}, 0, fmt.Errorf("%w: single frame of length %d", ErrInvalidPDU, p.Length)
	}
	if len(b) < head+int(p.Length) {
		return PDU{}, 0, io.ErrUnexpectedEOF
	}
	p.Data = b[head : head+int(p.Length)]
	return p, ae + head + int(p.Length), nil
}

// parseFF reads a first frame's N_PCI and data from b (after the address bytes).
func parseFF(p PDU, b []byte, canDL, ae int) (PDU, int, error) {
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
	if p.Length < uint32(ffDLMin(max(canDL, 8), ae)) {
		return PDU{}, 0, fmt.Errorf("%w: first frame of length %d fits a single frame", ErrInvalidPDU, p.Length)
	}
	switch {
	case canDL < 8:
		return PDU{}, 0, io.ErrUnexpectedEOF // a first frame fills the CAN frame
	case canDL > 8 && !vcan.ValidFDLength(canDL):
		return PDU{}, 0, fmt.Errorf("%w: first frame of %d bytes, not a CAN FD length", ErrInvalidPDU, canDL)
	}
	p.Data = b[head:]
	return p, canDL, nil
}

// ffDLMin is FF_DLmin, the shortest message a first frame may announce (ISO 15765-2:2016, table
// 14): with a data length of 8, 8 (7 with an address byte); above, txDL-1 (txDL-2): anything
// shorter fits a single frame.
func ffDLMin(txDL, ae int) int {
	if txDL <= 8 {
		return 8 - ae
	}
	return txDL - 1 - ae
}

// AppendPDU appends the encoding of p to b. For SF and CF, p.Data is the payload; for FF,
// p.Length is the message length and p.Data the first bytes (6, or 2 with the escape).
func AppendPDU(b []byte, p PDU) []byte {
	switch p.Type {
	case SingleFrame:
		if p.Escape || len(p.Data) > 7 {
			b = append(b, 0x00, byte(len(p.Data)))
		} else {
			b = append(b, byte(len(p.Data)))
		}
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
	case SingleFrame:
		if p.Escape || len(p.Data) > 7 {
			return 2 + len(p.Data)
		}
		return 1 + len(p.Data)
	case ConsecutiveFrame:
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
func Segment(msg []byte) []PDU { return SegmentFD(msg, 8, 0) }

// SegmentFD splits msg into the PDUs that carry it in frames of at most txDL bytes (TX_DL: 8, or
// 12, 16, 20, 24, 32, 48, 64 on CAN FD; other values count as the next valid one down) of which
// the first ae (0, or 1 with extended and mixed addressing) are an address, as ISO 15765-2:2016
// does: a single frame up to 7-ae bytes (the 4-bit SF_DL), and with txDL above 8 up to txDL-2-ae
// (the SF_DL escape); else a first frame of txDL-2-ae bytes (txDL-6-ae beyond 4095 with the
// 32-bit FF_DL escape) and consecutive frames of txDL-1-ae, numbered from 1. Their Data alias msg.
func SegmentFD(msg []byte, txDL, ae int) []PDU {
	txDL = ValidTxDL(txDL)
	sfMax := 7 - ae
	if txDL > 8 {
		sfMax = txDL - 2 - ae
	}
	if len(msg) <= sfMax {
		return []PDU{{Type: SingleFrame, Escape: len(msg) > 7-ae, Length: uint32(len(msg)), Data: msg}}
	}
	first, each := txDL-ae-2, txDL-ae-1
	if len(msg) > MaxLength12 {
		first -= 4
	}
	pdus := make([]PDU, 0, 1+(len(msg)-first+each-1)/each)
	pdus = append(pdus, PDU{Type: FirstFrame, Length: uint32(len(msg)), Data: msg[:first]})
	sn := uint8(1)
	for rest := msg[first:]; len(rest) > 0; sn = (sn + 1) & 0xF {
		n := min(each, len(rest))
		pdus = append(pdus, PDU{Type: ConsecutiveFrame, SN: sn, Data: rest[:n]})
		rest = rest[n:]
	}
	return pdus
}

// ValidTxDL returns txDL when it is a TX_DL ISO 15765-2:2016 allows (8, 12, 16, 20, 24, 32, 48,
// 64), else the next allowed value below it (8 at least).
func ValidTxDL(txDL int) int {
	for l := min(txDL, vcan.MaxFDLength); l > 8; l-- {
		if vcan.ValidFDLength(l) {
			return l
		}
	}
	return 8
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
