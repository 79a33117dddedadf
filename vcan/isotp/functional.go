package isotp

import (
	"context"
	"errors"
	"sync"

	"github.com/shekit/shekit/vcan"
)

// SingleFrameReceiver receives the single frames sent to one CAN ID and nothing else: ISO
// 15765-2's functional addressing, where a request must fit one single frame. First,
// consecutive and flow control frames are ignored (never answered), as are frames with another
// address byte (WithAddressExtension's rx). It sends nothing.
type SingleFrameReceiver struct {
	bus     vcan.Conn
	cfg     config
	receive func(context.Context) (vcan.Frame, error)
	once    sync.Once
	err     error
}

// NewSingleFrameReceiver receives the single frames with rxID on bus, which it owns. Of opts,
// WithExtendedIDs, WithAddressExtension (its rx byte) and WithCANFD (CAN FD frames received too)
// apply; the others concern sending and are ignored.
func NewSingleFrameReceiver(bus vcan.Conn, rxID uint32, opts ...Option) *SingleFrameReceiver {
	r := &SingleFrameReceiver{bus: bus, cfg: config{rxID: rxID}}
	for _, o := range opts {
		o(&r.cfg)
	}
	c := Conn{bus: bus, cfg: r.cfg}
	r.receive = c.receiver()
	return r
}

// Receive returns the data of the next single frame sent to the receiver's ID; it ends with the
// context's error, or vcan.ErrClosed once the bus closed.
func (r *SingleFrameReceiver) Receive(ctx context.Context) ([]byte, error) {
	ae := r.cfg.addressBytes()
	for {
		f, err := r.receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(err, vcan.ErrClosed) {
				return nil, err
			}
			continue
		}
		if f.ID != r.cfg.rxID || f.Extended != r.cfg.extended || f.Remote {
			continue
		}
		data := f.Payload()
		if len(data) <= ae || ae == 1 && data[0] != r.cfg.rxAE || PDUType(data[ae]>>4) != SingleFrame {
			continue
		}
		if p, _, err := ParsePDUAt(data, ae); err == nil {
			return append([]byte(nil), p.Data...), nil
		}
	}
}

// Close closes the CAN connection.
func (r *SingleFrameReceiver) Close() error {
	r.once.Do(func() { r.err = r.bus.Close() })
	return r.err
}
