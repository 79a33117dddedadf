// Package vcan is the kit's CAN layer: a small interface for one node on a bus ([Conn]) and its
// backends, an in-memory hub ([Hub], the embedded default, with an optional bit-rate model and
// fault hooks) and SocketCAN ([DialSocketCAN], Linux), plus what every CAN tool needs around them:
// frame bit lengths for timing ([FrameBits]) and candump's log format ([LogWriter], [ParseLogLine]).
//
// Classic frames are go.einride.tech/can's can.Frame: a 16-byte value with an 11- or 29-bit ID
// and up to 8 data bytes, which [Conn] carries. CAN FD frames (up to 64 bytes, with the bit rate
// switch) are [Frame]s, which a [FrameConn] carries too: the hub's nodes, and SocketCAN. The hub's
// bit-rate model times them with a nominal and a data bit rate ([FDFrameBits]). The layers above
// import downward only: vcan ← vcan/isotp ← vcan/uds.
package vcan

import (
	"context"
	"errors"
	"time"

	"go.einride.tech/can"
)

// Conn is one node's connection to a CAN bus. Send and Receive honour the context; Close ends
// every pending Receive with ErrClosed. A node does not receive the frames it sends.
type Conn interface {
	Send(ctx context.Context, f can.Frame) error
	Receive(ctx context.Context) (can.Frame, error)
	Close() error
}

// Waiter is implemented by connections that keep simulated time (a Hub with a bit rate): Wait
// lets d of the node's time pass without sleeping. Protocol layers wait through it when it is
// there (ISO-TP's STmin), and sleep otherwise.
type Waiter interface {
	Wait(ctx context.Context, d time.Duration) error
}

// ErrClosed is returned by a closed connection.
var ErrClosed = errors.New("vcan: connection closed")

// Filter selects received frames: a frame matches when its ID agrees with ID on every bit set in
// Mask and it has the same ID length.
type Filter struct {
	ID       uint32
	Mask     uint32
	Extended bool
}

// ExactID is the filter for one ID.
func ExactID(id uint32, extended bool) Filter {
	mask := uint32(can.MaxID)
	if extended {
		mask = can.MaxExtendedID
	}
	return Filter{ID: id, Mask: mask, Extended: extended}
}

// Match reports whether f selects frame.
func (f Filter) Match(frame can.Frame) bool {
	return frame.IsExtended == f.Extended && frame.ID&f.Mask == f.ID&f.Mask
}

// matchAny reports whether frame matches one of filters; no filters match everything.
func matchAny(filters []Filter, frame Frame) bool {
	if len(filters) == 0 {
		return true
	}
	for _, f := range filters {
		if f.MatchFrame(frame) {
			return true
		}
	}
	return false
}

// Wait lets d pass on conn: through its Waiter when it keeps simulated time, as a sleep otherwise.
func Wait(ctx context.Context, conn Conn, d time.Duration) error {
	if w, ok := conn.(Waiter); ok {
		return w.Wait(ctx, d)
	}
	return sleep(ctx, d)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
