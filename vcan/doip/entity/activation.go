package entity

import (
	"crypto/tls"
	"fmt"

	"github.com/shekit/shekit/vcan/doip"
)

// activate answers a routing activation request; after a denial that closes the socket it
// returns errClose.
func (c *conn) activate(req doip.RoutingActivationRequest, version byte) error {
	e := c.e
	e.actMu.Lock()
	defer e.actMu.Unlock()
	code := c.decide(req)
	if code.Activated() {
		c.register(req.SourceAddress)
	}
	e.cfg.Logger.Info("doip entity: routing activation", "remote", c.nc.RemoteAddr(), "source", req.SourceAddress,
		"type", req.ActivationType, "code", code)
	c.write(doip.Message{Version: version, Payload: doip.RoutingActivationResponse{TesterAddress: req.SourceAddress,
		EntityAddress: e.cfg.LogicalAddress, Code: code}})
	if code.ClosesSocket() {
		return fmt.Errorf("%w: routing activation %v", errClose, code)
	}
	return nil
}

// decide makes the checks of ISO 13400-2's routing activation handler, in its order.
func (c *conn) decide(req doip.RoutingActivationRequest) doip.ActivationCode {
	e := c.e
	src := req.SourceAddress
	if !e.cfg.Testers(src) {
		return doip.ActivationUnknownSource
	}
	switch {
	case req.ActivationType == doip.ActivationDefault, req.ActivationType == doip.ActivationWWHOBD:
	case req.ActivationType == doip.ActivationCentralSecurity && e.cfg.CentralSecurity != nil:
	default:
		return doip.ActivationUnsupportedType
	}
	if _, isTLS := c.nc.(*tls.Conn); e.cfg.RequireTLS && !isTLS {
		return doip.ActivationTLSRequired
	}
	if active, ok := c.source(); ok && active != src {
		return doip.ActivationSourceMismatch
	}
	if other := e.activeOn(src); other != nil && other != c {
		if other.aliveCheck() {
			return doip.ActivationSourceActiveElsewhere
		}
		e.forget(other) // it did not answer: closed, and its address is free
	}
	if _, ok := c.source(); !ok && !e.freeSocket() {
		return doip.ActivationNoFreeSocket
	}
	if req.ActivationType == doip.ActivationCentralSecurity {
		return e.cfg.CentralSecurity(src, req.OEM)
	}
	return doip.ActivationSuccess
}

// activeOn returns the socket src is active on, if any.
func (e *Entity) activeOn(src uint16) *conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.active[src]
}

// freeSocket reports whether another routing may become active: fewer than MaxTesters are, or
// the alive check finds a tester gone (every active socket is checked at once, and those that do
// not answer are closed).
func (e *Entity) freeSocket() bool {
	e.mu.Lock()
	actives := make([]*conn, 0, len(e.active))
	for _, o := range e.active {
		actives = append(actives, o)
	}
	e.mu.Unlock()
	if len(actives) < e.cfg.MaxTesters {
		return true
	}
	gone := make(chan bool, len(actives))
	for _, o := range actives {
		go func() {
			ok := o.aliveCheck()
			if !ok {
				e.forget(o)
			}
			gone <- !ok
		}()
	}
	free := false
	for range actives {
		free = <-gone || free
	}
	return free
}

// register makes src active on c and switches from the initial to the general inactivity timer.
func (c *conn) register(src uint16) {
	c.mu.Lock()
	c.activated, c.src = true, src
	c.mu.Unlock()
	c.e.mu.Lock()
	c.e.active[src] = c
	c.e.mu.Unlock()
	c.restartTimer(c.e.cfg.GeneralInactivity, "general")
}
