package ecu

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// Dialer connects one node to a CAN bus with receive filters: a Hub's Connect, or SocketCAN.
type Dialer func(filters ...vcan.Filter) (vcan.Conn, error)

// HubDialer dials nodes of an in-memory hub.
func HubDialer(h *vcan.Hub) Dialer {
	return func(filters ...vcan.Filter) (vcan.Conn, error) { return h.Connect(filters...), nil }
}

// SocketCANDialer dials raw sockets on iface for the link of a diagnostic profile: with CAN FD
// frames enabled when the link is CAN FD (such a socket takes classic frames too), classic ones
// otherwise.
func SocketCANDialer(ctx context.Context, iface string, p *profile.Profile) Dialer {
	if p.Link.FD {
		return func(filters ...vcan.Filter) (vcan.Conn, error) { return vcan.DialSocketCANFD(ctx, iface, filters...) }
	}
	return func(filters ...vcan.Filter) (vcan.Conn, error) { return vcan.DialSocketCAN(ctx, iface, filters...) }
}

// Extended reports whether a pair of CAN IDs needs 29-bit frames: either is above 0x7FF.
func Extended(tx, rx uint32) bool { return tx > 0x7FF || rx > 0x7FF }

// withIDs adds the 29-bit option to opts where tx and rx need it.
func withIDs(tx, rx uint32, opts []isotp.Option) []isotp.Option {
	if Extended(tx, rx) {
		return append(append([]isotp.Option{}, opts...), isotp.WithExtendedIDs())
	}
	return opts
}

// Transport opens a user-space ISO-TP transport on the bus of dial that sends with tx and
// receives what is sent to rx; IDs above 0x7FF are 29-bit.
func Transport(dial Dialer, tx, rx uint32, opts ...isotp.Option) (isotp.Transport, error) {
	conn, err := dial(vcan.ExactID(rx, Extended(tx, rx)))
	if err != nil {
		return nil, err
	}
	return isotp.New(conn, tx, rx, withIDs(tx, rx, opts)...), nil
}

// KernelTransport opens the Linux kernel's ISO-TP socket on iface, sending with tx and receiving
// rx; IDs above 0x7FF are 29-bit.
func KernelTransport(iface string, tx, rx uint32, opts ...isotp.Option) (*isotp.KernelConn, error) {
	return isotp.DialKernel(iface, tx, rx, withIDs(tx, rx, opts)...)
}

// Fleet is a set of ECUs serving on one bus.
type Fleet struct {
	ECUs   []*ECU
	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   []error
	mu     sync.Mutex
}

// StartFleet starts n ECUs on the bus of dial: ECU i has FleetUID(base.UID, i), the CAN IDs of
// DiagFleetIDs(base.DiagProfile, i, n) (FleetIDs(i, n) with the default profile), and otherwise base's configuration (each keeps its own key store file in
// base.StoreDir). opts and then base.TransportOptions (its padding) apply to every ECU's ISO-TP
// transport. When the diagnostic profile declares a functional request ID, every ECU also
// answers the functional requests on it (FunctionalTransport).
func StartFleet(ctx context.Context, dial Dialer, base Config, n int, opts ...isotp.Option) (*Fleet, error) {
	opts = append(append([]isotp.Option{}, opts...), base.TransportOptions()...)
	open := func(tx, rx uint32) (isotp.Transport, error) { return Transport(dial, tx, rx, opts...) }
	return StartFleetAddressed(ctx, FunctionalOpener(dial, open, opts...), base, n)
}

// FunctionalOpener returns an opener for StartFleetAddressed: the transport open returns (it
// sends with tx and receives rx), with a FunctionalListener on the bus of dial when the IDs have
// a functional ID. opts are the listener's options (the ECU's transport options).
func FunctionalOpener(dial Dialer, open func(tx, rx uint32) (isotp.Transport, error), opts ...isotp.Option) func(ids profile.CANIDs) (isotp.Transport, error) {
	return func(ids profile.CANIDs) (isotp.Transport, error) {
		t, err := open(ids.Response, ids.Request)
		if err != nil {
			return nil, err
		}
		f, err := FunctionalListener(dial, ids, opts...)
		if err != nil {
			t.Close()
			return nil, err
		}
		if f == nil {
			return t, nil
		}
		return WithFunctional(t, f), nil
	}
}

// StartFleetOn is StartFleet with the transports that open returns (for instance
// KernelTransport's): ECU i answers with its response ID and listens to its request ID. open
// applies base.TransportOptions itself, if it wants the configured padding.
func StartFleetOn(ctx context.Context, open func(tx, rx uint32) (isotp.Transport, error), base Config, n int) (*Fleet, error) {
	return StartFleetAddressed(ctx, func(ids profile.CANIDs) (isotp.Transport, error) { return open(ids.Response, ids.Request) }, base, n)
}

// StartFleetAddressed is StartFleetOn with an opener given each ECU's CAN IDs, functional ID
// included: it may return a FunctionalTransport (FunctionalOpener's; a KernelTransport with a
// FunctionalListener on a raw SocketCAN dialer, for instance).
func StartFleetAddressed(ctx context.Context, open func(ids profile.CANIDs) (isotp.Transport, error), base Config, n int) (*Fleet, error) {
	ctx, cancel := context.WithCancel(ctx)
	f := &Fleet{cancel: cancel}
	for i := range n {
		cfg := base
		cfg.UID = FleetUID(base.UID, i)
		cfg.Serial, cfg.Image = "", nil
		ids, err := DiagFleetIDs(base.DiagProfile, i, n)
		if err != nil {
			f.Stop()
			return nil, err
		}
		t, err := open(ids)
		if err != nil {
			f.Stop()
			return nil, fmt.Errorf("ecu %d: %w", i, err)
		}
		e, err := New(cfg, t)
		if err != nil {
			t.Close()
			f.Stop()
			return nil, fmt.Errorf("ecu %d: %w", i, err)
		}
		f.ECUs = append(f.ECUs, e)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer t.Close()
			if err := e.Serve(ctx); err != nil {
				f.mu.Lock()
				f.errs = append(f.errs, fmt.Errorf("ecu %d: %w", i, err))
				f.mu.Unlock()
			}
		}()
	}
	return f, nil
}

// Stop stops every ECU and returns the errors they stopped with.
func (f *Fleet) Stop() error {
	f.cancel()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return errors.Join(f.errs...)
}
