package main

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// connLimiter is a listener that holds at most max connections open. At the limit, a new
// connection closes the one idle longest: waiting for its first request (accepted, no request
// read yet) or for the next one on keep-alive. So a flood of idle connections costs the server
// max descriptors at most and never locks out a client that sends requests. When no connection
// is idle, Accept waits until one closes. Its track method must be the server's ConnState.
type connLimiter struct {
	net.Listener
	max int

	mu   sync.Mutex
	free *sync.Cond
	open int
	idle map[*limitedConn]time.Time // idle connections, by when they became idle
}

func newConnLimiter(ln net.Listener, max int) *connLimiter {
	l := &connLimiter{Listener: ln, max: max, idle: map[*limitedConn]time.Time{}}
	l.free = sync.NewCond(&l.mu)
	return l
}

// limitedConn is a connection the limiter counts.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	once sync.Once
}

// Close closes the connection and frees its place.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.idle, c)
		c.l.open--
		c.l.mu.Unlock()
		c.l.free.Signal()
	})
	return err
}

// Accept waits for a place (closing the connection idle longest when there is none), then for a
// connection.
func (l *connLimiter) Accept() (net.Conn, error) {
	l.mu.Lock()
	for l.open >= l.max {
		victim := l.oldestIdle()
		if victim == nil {
			l.free.Wait()
			continue
		}
		delete(l.idle, victim)
		l.mu.Unlock()
		victim.Close()
		l.mu.Lock()
	}
	l.open++
	l.mu.Unlock()
	c, err := l.Listener.Accept()
	if err != nil {
		l.mu.Lock()
		l.open--
		l.mu.Unlock()
		l.free.Signal()
		return nil, err
	}
	lc := &limitedConn{Conn: c, l: l}
	l.mu.Lock()
	l.idle[lc] = time.Now() // idle until it has read a request
	l.mu.Unlock()
	return lc, nil
}

// oldestIdle returns the connection idle longest, or nil; l.mu is held.
func (l *connLimiter) oldestIdle() *limitedConn {
	var victim *limitedConn
	var since time.Time
	for c, t := range l.idle {
		if victim == nil || t.Before(since) {
			victim, since = c, t
		}
	}
	return victim
}

// track is the http.Server's ConnState: it keeps the set of idle connections.
func (l *connLimiter) track(c net.Conn, state http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch state {
	case http.StateIdle:
		l.idle[lc] = time.Now()
	case http.StateActive, http.StateHijacked, http.StateClosed:
		delete(l.idle, lc)
	}
}
