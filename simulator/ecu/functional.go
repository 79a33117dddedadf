package ecu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// FunctionalTransport is an ECU's physical transport together with a listener for functional
// requests (ISO 15765-2: single frames only). Serve answers both on the physical transport, and
// suppresses the negative responses ISO 14229-1 does not send to a functional request.
type FunctionalTransport struct {
	isotp.Transport // the physical request and response IDs
	functional      *isotp.SingleFrameReceiver

	in     chan addressed
	cancel context.CancelFunc
	pumps  sync.WaitGroup
	once   sync.Once
	err    error
}

// addressed is one received request and how it was addressed.
type addressed struct {
	msg        []byte
	functional bool
	err        error
}

// WithFunctional adds the functional listener f to physical; the transport returned owns both.
func WithFunctional(physical isotp.Transport, f *isotp.SingleFrameReceiver) *FunctionalTransport {
	ctx, cancel := context.WithCancel(context.Background())
	t := &FunctionalTransport{Transport: physical, functional: f, in: make(chan addressed), cancel: cancel}
	t.pumps.Add(2)
	go t.pump(ctx, physical.Receive, false)
	go t.pump(ctx, f.Receive, true)
	return t
}

// pump passes what receive returns on until ctx ends or receive fails for good (an abandoned
// message is passed on and receiving goes on).
func (t *FunctionalTransport) pump(ctx context.Context, receive func(context.Context) ([]byte, error), functional bool) {
	defer t.pumps.Done()
	for {
		msg, err := receive(ctx)
		if ctx.Err() != nil {
			return
		}
		select {
		case t.in <- addressed{msg, functional, err}:
		case <-ctx.Done():
			return
		}
		if err != nil && !isotp.Abandoned(err) {
			return
		}
	}
}

// Receive returns the next request, physical or functional.
func (t *FunctionalTransport) Receive(ctx context.Context) ([]byte, error) {
	msg, _, err := t.ReceiveAddressed(ctx)
	return msg, err
}

// ReceiveAddressed returns the next request and whether it came functionally addressed.
func (t *FunctionalTransport) ReceiveAddressed(ctx context.Context) (msg []byte, functional bool, err error) {
	select {
	case a := <-t.in:
		return a.msg, a.functional, a.err
	case <-ctx.Done():
		return nil, false, ctx.Err()
	}
}

// Close closes both transports.
func (t *FunctionalTransport) Close() error {
	t.once.Do(func() {
		t.cancel()
		t.err = errors.Join(t.Transport.Close(), t.functional.Close())
		t.pumps.Wait()
	})
	return t.err
}

// FunctionalListener opens a receiver of the functional requests of ids (its functional CAN ID
// and, with extended or mixed addressing, its functional address byte) on the bus of dial, or
// nil when ids has no functional ID, or one that frames cannot tell from the physical request
// ID (the same CAN ID and address byte: such requests count as physical). opts are the ECU's
// transport options (29-bit IDs, CAN FD).
func FunctionalListener(dial Dialer, ids profile.CANIDs, opts ...isotp.Option) (*isotp.SingleFrameReceiver, error) {
	if !ids.HasFunctional || ids.Functional == ids.Request && bytes.Equal(ids.FunctionalPrefix, ids.RequestPrefix) {
		return nil, nil
	}
	extended := ids.Extended || ids.Functional > 0x7FF
	conn, err := dial(vcan.ExactID(ids.Functional, extended))
	if err != nil {
		return nil, fmt.Errorf("ecu: functional listener %#x: %w", ids.Functional, err)
	}
	opts = append([]isotp.Option{}, opts...)
	if extended {
		opts = append(opts, isotp.WithExtendedIDs())
	}
	if ids.FunctionalPrefix != nil {
		opts = append(opts, isotp.WithAddressExtension(0, ids.FunctionalPrefix[0]))
	}
	return isotp.NewSingleFrameReceiver(conn, ids.Functional, opts...), nil
}

// suppressedFunctionally reports whether ISO 14229-1 withholds negative response resp from a
// functionally addressed request: service or sub-function not supported (in the active
// session), and request out of range.
func suppressedFunctionally(resp []byte) bool {
	if len(resp) < 3 || resp[0] != uds.NegativeResponse {
		return false
	}
	switch uds.NRC(resp[2]) {
	case uds.ServiceNotSupported, uds.SubFunctionNotSupported, uds.RequestOutOfRange,
		uds.SubFunctionNotSupportedInActiveSession, uds.ServiceNotSupportedInActiveSession:
		return true
	}
	return false
}
