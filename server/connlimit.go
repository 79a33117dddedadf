package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// connLimits bound what a connection may hold of the server.
type connLimits struct {
	readHeader, read, write, idle, request time.Duration
	maxConns                               int
}

// server returns the HTTP server with the limits' timeouts, and the listener that bounds its
// connections (stderr hears when the file limit lowers the bound).
func (c connLimits) server(h http.Handler, ln net.Listener, stderr io.Writer) (*http.Server, net.Listener) {
	max := c.maxConns
	if fit := openFileLimit() - reservedFiles; max > fit {
		fmt.Fprintf(stderr, "server: -max-conns %d lowered to %d to fit the open-file limit\n", max, fit)
		max = fit
	}
	lim := newConnLimiter(ln, max)
	return &http.Server{Handler: h, ReadHeaderTimeout: c.readHeader, ReadTimeout: c.read, WriteTimeout: c.write,
		IdleTimeout: c.idle, ConnState: lim.track}, lim
}

// reservedFiles are the open files kept for everything but connections: the store, logs, the
// database pool.
const reservedFiles = 128

// openFileLimit returns the process's limit of open files (Go raises the soft limit to the hard
// one at start).
func openFileLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 1 << 30
	}
	return int(r.Cur)
}

// check refuses limits that cannot work.
func (c connLimits) check() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"-read-header-timeout", c.readHeader}, {"-read-timeout", c.read}, {"-write-timeout", c.write}, {"-idle-timeout", c.idle}, {"-request-timeout", c.request}} {
		if d.v <= 0 {
			return fmt.Errorf("%s %v: want a positive duration", d.name, d.v)
		}
	}
	if c.request >= c.write {
		return fmt.Errorf("-request-timeout %v must be shorter than -write-timeout %v, or late answers cannot be sent", c.request, c.write)
	}
	if c.maxConns < 1 {
		return fmt.Errorf("-max-conns %d: want at least 1", c.maxConns)
	}
	if fit := openFileLimit() - reservedFiles; fit < 1 {
		return fmt.Errorf("the open-file limit (%d) leaves no room for connections", openFileLimit())
	}
	return nil
}

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
