package tester

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/shekit/shekit/vcan/doip"
	"github.com/shekit/shekit/vcan/isotp"
)

// Transport carries UDS messages between the tester and one target address over a Conn.
type Transport struct {
	c      *Conn
	target uint16
	inbox  chan []byte
	acks   chan doip.Payload // the acknowledges of its diagnostic messages
	sendMu sync.Mutex        // one message awaiting its acknowledge at a time
	closed chan struct{}
}

var _ isotp.Transport = (*Transport)(nil)

// Transport returns the transport to the node at the logical address target (replacing an
// earlier one to the same address: messages then go to the new one).
func (c *Conn) Transport(target uint16) *Transport {
	t := &Transport{c: c, target: target, inbox: make(chan []byte, 64), acks: make(chan doip.Payload, 1), closed: make(chan struct{})}
	c.mu.Lock()
	c.inboxes[target] = t
	c.mu.Unlock()
	return t
}

// Send sends msg as one diagnostic message and returns once the entity has acknowledged it (so
// that a UDS client's P2 starts after the acknowledge). A refusal is a *NACKError; no
// acknowledge within the ACK timeout is ErrNoACK. Transports to different targets send side by
// side; an acknowledge carries the target's address, so each waits for its own (a generic NACK,
// which carries none, fails every Send waiting).
func (t *Transport) Send(ctx context.Context, msg []byte) error {
	if len(msg) == 0 {
		return errors.New("doip tester: empty diagnostic message")
	}
	c := t.c
	t.sendMu.Lock()
	defer t.sendMu.Unlock()
	for len(t.acks) > 0 {
		<-t.acks
	}
	m := doip.Message{Version: c.cfg.Version, Payload: doip.DiagnosticMessage{SourceAddress: c.cfg.SourceAddress,
		TargetAddress: t.target, Data: msg}}
	if err := c.write(m); err != nil {
		return err
	}
	timeout := make(chan struct{})
	stop := c.cfg.Clock.AfterFunc(c.cfg.ACKTimeout, func() { close(timeout) })
	defer stop()
	for {
		select {
		case p := <-t.acks:
			switch p := p.(type) {
			case doip.DiagnosticACK:
				return nil
			case doip.DiagnosticNACK:
				return &NACKError{Code: p.Code}
			case doip.GenericNACK:
				return &NACKError{Generic: true, NACK: p.Code}
			}
		case <-timeout:
			return fmt.Errorf("%w: target %#04x after %v", ErrNoACK, t.target, c.cfg.ACKTimeout)
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return c.Err()
		case <-t.closed:
			return ErrClosed
		}
	}
}

// Receive returns the next diagnostic message from the target.
func (t *Transport) Receive(ctx context.Context) ([]byte, error) {
	select {
	case msg := <-t.inbox:
		return msg, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.c.done:
		return nil, t.c.Err()
	case <-t.closed:
		return nil, ErrClosed
	}
}

// Close detaches the transport from its connection (which stays open: Conn.Close ends it).
func (t *Transport) Close() error {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.c.inboxes[t.target] == t {
		delete(t.c.inboxes, t.target)
	}
	select {
	case <-t.closed:
	default:
		close(t.closed)
	}
	return nil
}
