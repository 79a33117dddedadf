package entity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/shekit/shekit/vcan/doip"
)

// tcpTypes are the payload types the entity accepts on a TCP socket; any other gets generic NACK
// 0x01. Entity status and power mode requests belong to UDP in ISO 13400-2 and are answered on
// TCP too.
var tcpTypes = map[doip.PayloadType]bool{
	doip.TypeGenericNACK: true, doip.TypeRoutingActivationRequest: true, doip.TypeAliveCheckResponse: true,
	doip.TypeDiagnosticMessage: true, doip.TypeEntityStatusRequest: true, doip.TypePowerModeRequest: true,
}

// errClose ends a socket after the answer that says why has been sent.
var errClose = errors.New("doip entity: socket closed by the entity")

// conn is one tester's TCP socket.
type conn struct {
	e      *Entity
	nc     net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	alive  chan uint16 // alive check responses

	wmu sync.Mutex // one write at a time

	mu        sync.Mutex // guards what follows
	activated bool
	src       uint16
	version   byte        // the version of the tester's last message, for unsolicited messages
	stopTimer func() bool // the running inactivity timer

	routesMu sync.Mutex
	routes   map[uint16]*route // by target address
}

func newConn(ctx context.Context, e *Entity, nc net.Conn) *conn {
	c := &conn{e: e, nc: nc, alive: make(chan uint16, 1), version: e.cfg.Version, routes: map[uint16]*route{}}
	c.ctx, c.cancel = context.WithCancel(ctx)
	context.AfterFunc(c.ctx, func() { nc.Close() })
	return c
}

// source returns the activated source address.
func (c *conn) source() (uint16, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.src, c.activated
}

// close ends the socket (from any goroutine).
func (c *conn) close(why string) {
	if c.ctx.Err() == nil {
		c.e.cfg.Logger.Info("doip entity: closing a socket", "remote", c.nc.RemoteAddr(), "why", why)
	}
	c.cancel()
}

// restartTimer runs the inactivity timer d from now: when it fires, the socket is closed.
func (c *conn) restartTimer(d time.Duration, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopTimer != nil {
		c.stopTimer()
	}
	c.stopTimer = c.e.cfg.Clock.AfterFunc(d, func() { c.close(name + " inactivity timer") })
}

// serve reads and answers the tester's messages until the socket closes.
func (c *conn) serve() {
	defer c.e.forget(c)
	defer c.cancel()
	c.e.cfg.Logger.Info("doip entity: socket open", "remote", c.nc.RemoteAddr())
	c.restartTimer(c.e.cfg.InitialInactivity, "initial")
	defer func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.stopTimer()
	}()
	for c.ctx.Err() == nil {
		err := c.next()
		if err == nil {
			continue
		}
		if code, ok := doip.NACKCodeOf(err); ok {
			c.e.cfg.Logger.Info("doip entity: generic NACK", "remote", c.nc.RemoteAddr(), "code", code, "err", err)
			c.write(doip.Message{Version: c.currentVersion(), Payload: doip.GenericNACK{Code: code}})
			if !code.ClosesSocket() {
				continue
			}
		}
		c.close(err.Error())
		return
	}
}

func (c *conn) currentVersion() byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// next reads one message and handles it. A header error comes back for its generic NACK.
func (c *conn) next() error {
	h, payload, err := readChecked(c.nc, c.e, tcpTypes)
	if err != nil {
		return err
	}
	p, err := doip.ParsePayload(h, payload)
	c.e.release(h.Length) // what is kept longer (a diagnostic message's data) reserves its own
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.version = h.Version
	if c.activated {
		c.mu.Unlock()
		c.restartTimer(c.e.cfg.GeneralInactivity, "general")
	} else {
		c.mu.Unlock()
	}
	switch p := p.(type) {
	case doip.RoutingActivationRequest:
		return c.activate(p, h.Version)
	case doip.AliveCheckResponse:
		select {
		case c.alive <- p.SourceAddress:
		default:
		}
	case doip.DiagnosticMessage:
		return c.diagnostic(p, h.Version)
	case doip.EntityStatusRequest:
		c.write(doip.Message{Version: h.Version, Payload: c.e.status()})
	case doip.PowerModeRequest:
		c.write(doip.Message{Version: h.Version, Payload: doip.PowerModeResponse{Mode: c.e.cfg.PowerMode()}})
	case doip.GenericNACK:
		c.e.cfg.Logger.Info("doip entity: the tester sent a generic NACK", "code", p.Code)
	}
	return nil
}

// readChecked reads one message from r with the checks of ISO 13400-2 in its order: pattern,
// payload type supported here, length within MaxDataSize, memory budget, length valid for the
// type. A message refused for its type, size or the memory is read and discarded. The payload's
// bytes are reserved in e's budget; the caller releases h.Length after handling it.
func readChecked(r io.Reader, e *Entity, supported map[doip.PayloadType]bool) (doip.Header, []byte, error) {
	var hb [doip.HeaderLength]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return doip.Header{}, nil, err
	}
	h, err := doip.ParseHeader(hb[:])
	if err != nil {
		return doip.Header{}, nil, err
	}
	var refused error
	switch {
	case !supported[h.Type]:
		refused = fmt.Errorf("%w: %v", doip.ErrUnknownPayloadType, h.Type)
	case h.Length > e.cfg.MaxDataSize:
		refused = fmt.Errorf("%w: %d bytes", doip.ErrMessageTooLarge, h.Length)
	case !e.reserve(h.Length):
		refused = fmt.Errorf("%w: %d bytes", doip.ErrOutOfMemory, h.Length)
	}
	if refused != nil {
		if _, err := io.CopyN(io.Discard, r, int64(h.Length)); err != nil {
			return doip.Header{}, nil, err
		}
		return doip.Header{}, nil, refused
	}
	if err := doip.CheckLength(h); err != nil {
		e.release(h.Length)
		return doip.Header{}, nil, err
	}
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(r, payload); err != nil {
		e.release(h.Length)
		return doip.Header{}, nil, err
	}
	return h, payload, nil
}

// write sends m within the write timeout; a failed write closes the socket.
func (c *conn) write(m doip.Message) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.ctx.Err() != nil {
		return
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.e.cfg.WriteTimeout))
	if _, err := c.nc.Write(doip.Append(nil, m)); err != nil {
		c.close(fmt.Sprintf("write %v: %v", m.Payload.PayloadType(), err))
	}
}

// diagnostic routes a diagnostic message: NACK 0x02 (and close) from a source address not active
// on this socket, NACK 0x03 to an unknown target, 0x04 over the target's size, 0x05 when the
// memory budget cannot hold it while it waits (other sockets took the memory since its header
// was checked); otherwise it goes to the target's route, which forwards and acknowledges it.
func (c *conn) diagnostic(m doip.DiagnosticMessage, version byte) error {
	nack := func(code doip.DiagnosticCode) {
		c.write(doip.Message{Version: version, Payload: doip.DiagnosticNACK{SourceAddress: m.TargetAddress,
			TargetAddress: m.SourceAddress, Code: code}})
	}
	if src, ok := c.source(); !ok || src != m.SourceAddress {
		nack(doip.DiagnosticInvalidSource)
		return fmt.Errorf("%w: diagnostic message from %#04x, not active on this socket", errClose, m.SourceAddress)
	}
	t := c.e.target(m.TargetAddress)
	if t == nil {
		nack(doip.DiagnosticUnknownTarget)
		return nil
	}
	if l, ok := t.(interface{ MaxRequestLength() int }); ok && len(m.Data) > l.MaxRequestLength() {
		nack(doip.DiagnosticMessageTooLarge)
		return nil
	}
	if !c.e.reserve(uint32(len(m.Data))) {
		nack(doip.DiagnosticOutOfMemory)
		return nil
	}
	c.route(m.TargetAddress).push(t, forwardJob{data: slices.Clone(m.Data), tester: m.SourceAddress, version: version})
	return nil
}

// route returns the socket's route to the target at addr.
func (c *conn) route(addr uint16) *route {
	c.routesMu.Lock()
	defer c.routesMu.Unlock()
	r := c.routes[addr]
	if r == nil {
		r = &route{c: c, target: addr}
		c.routes[addr] = r
	}
	return r
}

// aliveCheck asks the tester on c whether it is still there: true when it answers with its
// source address within AliveCheckTimeout. A tester that does not is closed.
func (c *conn) aliveCheck() bool {
	src, _ := c.source()
	for len(c.alive) > 0 {
		<-c.alive
	}
	timeout := make(chan struct{})
	stop := c.e.cfg.Clock.AfterFunc(c.e.cfg.AliveCheckTimeout, func() { close(timeout) })
	defer stop()
	c.write(doip.Message{Version: c.currentVersion(), Payload: doip.AliveCheckRequest{}})
	for {
		select {
		case got := <-c.alive:
			if got == src {
				return true
			}
		case <-timeout:
			c.close("no answer to the alive check")
			return false
		case <-c.ctx.Done():
			return false
		}
	}
}
