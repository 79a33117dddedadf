package vcan

import (
	"context"
	"errors"
	"fmt"

	"go.einride.tech/can"
)

// MaxFDLength is the most data a CAN FD frame carries.
const MaxFDLength = 64

// Frame is a frame as the bus carries it: classic CAN (up to 8 data bytes, possibly remote) or
// CAN FD (FD set; 0–8, 12, 16, 20, 24, 32, 48 or 64 data bytes). It is the CAN FD counterpart of
// can.Frame, which only holds classic frames.
type Frame struct {
	ID       uint32
	Extended bool // 29-bit ID
	Remote   bool // classic remote frame (CAN FD has none)
	FD       bool // CAN FD format (the FDF bit)
	BRS      bool // CAN FD bit rate switch: the data phase at the data bit rate
	ESI      bool // CAN FD error state indicator: the sender is error passive
	Length   uint8
	Data     [MaxFDLength]byte
}

// FDLengths are the data lengths a CAN FD frame can have, by DLC (ISO 11898-1:2015, table 5:
// DLC 0–8 code their own length, 9–15 code 12, 16, 20, 24, 32, 48, 64).
var FDLengths = [16]uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64}

// ValidFDLength reports whether n is the data length of some CAN FD frame.
func ValidFDLength(n int) bool {
	_, ok := FDLengthToDLC(n)
	return ok
}

// FDLengthToDLC returns the DLC of a CAN FD frame of n data bytes, and whether there is one.
func FDLengthToDLC(n int) (uint8, bool) {
	for dlc, l := range FDLengths {
		if int(l) == n {
			return uint8(dlc), true
		}
	}
	return 0, false
}

// PadFDLength returns the shortest CAN FD data length that holds n bytes (n itself up to 8, then
// the next of 12, 16, 20, 24, 32, 48, 64), or 0 when n exceeds 64.
func PadFDLength(n int) int {
	for _, l := range FDLengths {
		if int(l) >= n {
			return int(l)
		}
	}
	return 0
}

// FromClassic returns the Frame of a classic CAN frame.
func FromClassic(c can.Frame) Frame {
	f := Frame{ID: c.ID, Extended: c.IsExtended, Remote: c.IsRemote, Length: c.Length}
	copy(f.Data[:], c.Data[:])
	return f
}

// Classic returns f as a classic CAN frame, and false for a CAN FD frame or one longer than 8
// bytes.
func (f Frame) Classic() (can.Frame, bool) {
	if f.FD || f.Length > 8 {
		return can.Frame{}, false
	}
	c := can.Frame{ID: f.ID, IsExtended: f.Extended, IsRemote: f.Remote, Length: f.Length}
	copy(c.Data[:], f.Data[:8])
	return c, true
}

// Payload returns the frame's data bytes (a slice of f.Data).
func (f *Frame) Payload() []byte { return f.Data[:f.Length] }

// Errors of Frame.Validate.
var (
	ErrFrameID     = errors.New("vcan: CAN ID out of range")
	ErrFrameLength = errors.New("vcan: invalid data length")
)

// Validate reports whether f is a frame the bus can carry: an ID within 11 or 29 bits; a classic
// frame of at most 8 bytes without BRS or ESI; a CAN FD frame of a length a DLC codes, not
// remote.
func (f Frame) Validate() error {
	switch {
	case !f.Extended && f.ID > can.MaxID, f.Extended && f.ID > can.MaxExtendedID:
		return fmt.Errorf("%w: %#x", ErrFrameID, f.ID)
	case f.FD && f.Remote:
		return fmt.Errorf("%w: a CAN FD frame cannot be remote", ErrFrameLength)
	case f.FD && !ValidFDLength(int(f.Length)):
		return fmt.Errorf("%w: %d bytes in a CAN FD frame (0-8, 12, 16, 20, 24, 32, 48, 64)", ErrFrameLength, f.Length)
	case !f.FD && f.Length > 8:
		return fmt.Errorf("%w: %d bytes in a classic CAN frame", ErrFrameLength, f.Length)
	case !f.FD && (f.BRS || f.ESI):
		return fmt.Errorf("%w: BRS and ESI belong to CAN FD frames", ErrFrameLength)
	}
	return nil
}

// FrameConn is a Conn that also carries CAN FD frames. Receive (of Conn) skips CAN FD frames, as
// a SocketCAN socket without CAN_RAW_FD_FRAMES does; ReceiveFrame returns both kinds.
type FrameConn interface {
	Conn
	SendFrame(ctx context.Context, f Frame) error
	ReceiveFrame(ctx context.Context) (Frame, error)
}

// MatchFrame reports whether filter f selects frame.
func (f Filter) MatchFrame(frame Frame) bool {
	return frame.Extended == f.Extended && frame.ID&f.Mask == f.ID&f.Mask
}
