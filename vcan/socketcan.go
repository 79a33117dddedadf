package vcan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"go.einride.tech/can"
	"go.einride.tech/can/pkg/socketcan"
)

// SocketConn is a node on a SocketCAN interface, through go.einride.tech/can's raw CAN socket.
// It implements Conn.
//
// go.einride.tech/can is used rather than github.com/brutella/can, whose last change dates from
// 2019, whose Subscribe races with publishing under the race detector, whose Close does not
// unblock a blocked read, and which ignores socket errors.
type SocketConn struct {
	conn    net.Conn
	tx      *socketcan.Transmitter
	filters []Filter
	frames  chan can.Frame
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	err     error // why the reader stopped
}

var _ Conn = (*SocketConn)(nil)

// DialSocketCAN opens a raw CAN socket on iface (vcan0, can0) that receives the frames matching
// any of filters (all frames when there are none). It needs Linux with CAN support; elsewhere it
// fails.
func DialSocketCAN(ctx context.Context, iface string, filters ...Filter) (*SocketConn, error) {
	return dialSocket(ctx, "can", iface, filters)
}

// dialSocket dials a network go.einride.tech/can knows: "can" for SocketCAN, "udp" for its
// multicast emulator (used by the tests on machines without CAN).
func dialSocket(ctx context.Context, network, address string, filters []Filter) (*SocketConn, error) {
	conn, err := socketcan.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("vcan: dial %s %s: %w", network, address, err)
	}
	s := &SocketConn{conn: conn, tx: socketcan.NewTransmitter(conn), filters: filters,
		frames: make(chan can.Frame, 1024), done: make(chan struct{})}
	go s.read()
	return s, nil
}

// read moves received frames into s.frames until the socket closes.
func (s *SocketConn) read() {
	defer close(s.frames)
	r := socketcan.NewReceiver(s.conn)
	for r.Receive() {
		if r.HasErrorFrame() {
			continue
		}
		f := r.Frame()
		if !matchAny(s.filters, FromClassic(f)) {
			continue
		}
		select {
		case s.frames <- f:
		case <-s.done:
			return
		}
	}
	s.mu.Lock()
	s.err = r.Err()
	s.mu.Unlock()
}

// Send transmits f; the context's deadline bounds the write.
func (s *SocketConn) Send(ctx context.Context, f can.Frame) error {
	if err := f.Validate(); err != nil {
		return err
	}
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	if err := s.tx.TransmitFrame(ctx, f); err != nil {
		return fmt.Errorf("vcan: transmit frame: %w", err)
	}
	return nil
}

// Receive returns the next frame that matches the filters.
func (s *SocketConn) Receive(ctx context.Context) (can.Frame, error) {
	select {
	case f, ok := <-s.frames:
		if ok {
			return f, nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil && !errors.Is(s.err, net.ErrClosed) {
			return can.Frame{}, fmt.Errorf("vcan: receive: %w", s.err)
		}
		return can.Frame{}, ErrClosed
	case <-ctx.Done():
		return can.Frame{}, ctx.Err()
	case <-s.done:
		return can.Frame{}, ErrClosed
	}
}

// Close closes the socket; pending and later Receives return ErrClosed.
func (s *SocketConn) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.conn.Close()
	})
	return err
}
