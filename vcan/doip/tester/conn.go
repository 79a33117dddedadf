// Package tester is the client side of DoIP (ISO 13400-2): vehicle identification over UDP, a TCP
// connection with its routing activation, and a transport per target address behind the same
// interface as ISO-TP (isotp.Transport), so that a UDS client runs over DoIP unchanged.
package tester

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/shekit/shekit/vcan/doip"
	"github.com/shekit/shekit/vcan/isotp"
)

// Errors of a connection.
var (
	ErrClosed           = errors.New("doip tester: connection closed")
	ErrNoACK            = errors.New("doip tester: no diagnostic message acknowledge in time")
	ErrActivationDenied = errors.New("doip tester: routing activation denied")
)

// Config describes how a tester connects.
type Config struct {
	SourceAddress  uint16              // the tester's logical address (default 0x0E00)
	ActivationType doip.ActivationType // default 0x00
	OEM            []byte              // the routing activation's optional OEM field (4 bytes)
	Version        byte                // the protocol version the tester speaks (default 0x02)
	// ACKTimeout bounds the wait for the acknowledge of a diagnostic message, and for the routing
	// activation response (default 2 s).
	ACKTimeout  time.Duration
	MaxDataSize uint32      // the largest payload read (default 1 MiB); larger ones are skipped
	TLS         *tls.Config // connect with TLS (port 3496) when set
	Clock       isotp.Clock // the timers' clock (default: the system clock)
	Dialer      *net.Dialer // default: a zero Dialer
}

func (c *Config) defaults() {
	if c.SourceAddress == 0 {
		c.SourceAddress = 0x0E00
	}
	if c.Version == 0 {
		c.Version = doip.Version2012
	}
	if c.ACKTimeout <= 0 {
		c.ACKTimeout = 2 * time.Second
	}
	if c.MaxDataSize == 0 {
		c.MaxDataSize = 1 << 20
	}
	if c.Clock == nil {
		c.Clock = isotp.SystemClock
	}
	if c.Dialer == nil {
		c.Dialer = &net.Dialer{}
	}
}

// ActivationError is a routing activation the entity denied.
type ActivationError struct{ Code doip.ActivationCode }

// Error names the denial.
func (e *ActivationError) Error() string { return fmt.Sprintf("%v: %v", ErrActivationDenied, e.Code) }

// Unwrap makes errors.Is(err, ErrActivationDenied) hold.
func (e *ActivationError) Unwrap() error { return ErrActivationDenied }

// NACKError is a diagnostic message the entity refused (0x8003), or a generic NACK in answer to
// it (Generic set).
type NACKError struct {
	Code    doip.DiagnosticCode
	Generic bool
	NACK    doip.NACKCode
}

// Error names the refusal.
func (e *NACKError) Error() string {
	if e.Generic {
		return fmt.Sprintf("doip tester: generic NACK: %v", e.NACK)
	}
	return fmt.Sprintf("doip tester: diagnostic message NACK: %v", e.Code)
}

// Conn is a tester's TCP connection to an entity, with routing active.
type Conn struct {
	cfg    Config
	nc     net.Conn
	entity uint16

	wmu sync.Mutex // one write at a time

	mu      sync.Mutex
	inboxes map[uint16]*Transport
	done    chan struct{}
	err     error // why the connection ended
	once    sync.Once
}

// Dial connects to the entity at addr (host:port) and activates routing; a denial is an
// *ActivationError.
func Dial(ctx context.Context, addr string, cfg Config) (*Conn, error) {
	cfg.defaults()
	var nc net.Conn
	var err error
	if cfg.TLS != nil {
		nc, err = (&tls.Dialer{NetDialer: cfg.Dialer, Config: cfg.TLS}).DialContext(ctx, "tcp", addr)
	} else {
		nc, err = cfg.Dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("doip tester: dial %s: %w", addr, err)
	}
	c := &Conn{cfg: cfg, nc: nc, inboxes: map[uint16]*Transport{}, done: make(chan struct{})}
	if err := c.activate(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	go c.readLoop()
	return c, nil
}

// activate sends the routing activation request and reads its response.
func (c *Conn) activate(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { c.nc.SetReadDeadline(time.Now()) })
	defer stop()
	timer := c.cfg.Clock.AfterFunc(c.cfg.ACKTimeout, func() { c.nc.SetReadDeadline(time.Now()) })
	defer timer()
	req := doip.RoutingActivationRequest{SourceAddress: c.cfg.SourceAddress, ActivationType: c.cfg.ActivationType, OEM: c.cfg.OEM}
	if err := c.write(doip.Message{Version: c.cfg.Version, Payload: req}); err != nil {
		return err
	}
	for {
		m, err := doip.ReadMessage(c.nc, c.cfg.MaxDataSize)
		if err != nil {
			return fmt.Errorf("doip tester: routing activation: %w", err)
		}
		switch p := m.Payload.(type) {
		case doip.RoutingActivationResponse:
			if !p.Code.Activated() {
				return &ActivationError{Code: p.Code}
			}
			c.entity = p.EntityAddress
			c.nc.SetReadDeadline(time.Time{})
			return nil
		case doip.GenericNACK:
			return fmt.Errorf("doip tester: routing activation: %w", &NACKError{Generic: true, NACK: p.Code})
		}
	}
}

// EntityAddress is the logical address the entity gave in its routing activation response.
func (c *Conn) EntityAddress() uint16 { return c.entity }

// Done is closed when the connection has ended; Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (nil while it is open).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection.
func (c *Conn) Close() error {
	c.end(ErrClosed)
	return nil
}

func (c *Conn) end(err error) {
	c.once.Do(func() {
		c.mu.Lock()
		c.err = err
		c.mu.Unlock()
		c.nc.Close()
		close(c.done)
	})
}

// write sends m.
func (c *Conn) write(m doip.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.nc.Write(doip.Append(nil, m)); err != nil {
		return fmt.Errorf("doip tester: write %v: %w", m.Payload.PayloadType(), err)
	}
	return nil
}

// readLoop reads the stream by the headers' lengths: diagnostic messages and their acknowledges
// go to their target's transport, a generic NACK to every transport, alive checks are answered.
func (c *Conn) readLoop() {
	for {
		m, err := doip.ReadMessage(c.nc, c.cfg.MaxDataSize)
		if err != nil {
			if _, ok := doip.NACKCodeOf(err); ok && !errors.Is(err, doip.ErrIncorrectPattern) && !errors.Is(err, doip.ErrInvalidPayloadLength) {
				continue // skipped, the stream is in step
			}
			c.end(fmt.Errorf("%w: %w", ErrClosed, err))
			return
		}
		switch p := m.Payload.(type) {
		case doip.DiagnosticMessage:
			if p.TargetAddress == c.cfg.SourceAddress {
				c.deliver(p.SourceAddress, p.Data)
			}
		case doip.DiagnosticACK:
			if p.TargetAddress == c.cfg.SourceAddress {
				c.acknowledge(p.SourceAddress, p)
			}
		case doip.DiagnosticNACK:
			if p.TargetAddress == c.cfg.SourceAddress {
				c.acknowledge(p.SourceAddress, p)
			}
		case doip.GenericNACK: // it names no address: every sender waiting hears it
			c.mu.Lock()
			for addr := range c.inboxes {
				c.acknowledgeLocked(addr, p)
			}
			c.mu.Unlock()
		case doip.AliveCheckRequest:
			if err := c.write(doip.Message{Version: m.Version, Payload: doip.AliveCheckResponse{SourceAddress: c.cfg.SourceAddress}}); err != nil {
				c.end(fmt.Errorf("%w: %w", ErrClosed, err))
				return
			}
		}
	}
}

// acknowledge passes an acknowledge to the transport of target, if its sender waits for one.
func (c *Conn) acknowledge(target uint16, p doip.Payload) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.acknowledgeLocked(target, p)
}

func (c *Conn) acknowledgeLocked(target uint16, p doip.Payload) {
	if t := c.inboxes[target]; t != nil {
		select {
		case t.acks <- p:
		default: // nobody waits: stale
		}
	}
}

// deliver passes a diagnostic message from source to its transport; without one it is dropped.
func (c *Conn) deliver(source uint16, data []byte) {
	c.mu.Lock()
	t := c.inboxes[source]
	c.mu.Unlock()
	if t == nil {
		return
	}
	for {
		select {
		case t.inbox <- data:
			return
		default:
		}
		select { // full: the oldest goes
		case <-t.inbox:
		default:
		}
	}
}
