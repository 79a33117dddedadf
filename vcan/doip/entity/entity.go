package entity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shekit/shekit/vcan/doip"
	"github.com/shekit/shekit/vcan/isotp"
)

// The timing parameters of ISO 13400-2 this package uses as defaults.
const (
	DefaultInitialInactivity = 2 * time.Second        // T_TCP_Initial_Inactivity
	DefaultGeneralInactivity = 5 * time.Minute        // T_TCP_General_Inactivity
	DefaultAliveCheckTimeout = 500 * time.Millisecond // A_DoIP_Ctrl is 2 s; an answer takes a round trip
	DefaultAnnounceInterval  = 500 * time.Millisecond // A_DoIP_Announce_Interval
	DefaultAnnounceCount     = 3                      // A_DoIP_Announce_Num
	DefaultMaxTesters        = 4
	DefaultMaxDataSize       = 4096 + 4 // a 4095-byte UDS message, its addresses, and room
	DefaultWriteTimeout      = 5 * time.Second
)

// Config describes an entity.
type Config struct {
	LogicalAddress uint16 // the entity's own address, in routing activation responses and announcements
	VIN            [17]byte
	EID, GID       [6]byte
	NodeType       doip.NodeType
	FurtherAction  doip.FurtherAction
	// Version is the protocol version of messages the tester did not choose: announcements, and
	// answers to requests in version 0xFF (default 0x02).
	Version byte
	// Testers reports whether a tester may activate routing from a source address (default: the
	// external test equipment range 0x0E00-0x0FFF).
	Testers func(source uint16) bool
	// CentralSecurity decides an activation of type 0xE0 with the request's OEM field; without
	// it, type 0xE0 is unsupported (0x06). It answers ActivationSuccess or a denial such as
	// ActivationMissingAuthentication (the socket then stays open for another try).
	CentralSecurity func(source uint16, oem []byte) doip.ActivationCode
	// RequireTLS denies (0x07) routing activations on sockets that are not TLS connections.
	RequireTLS bool
	// PowerMode reports the diagnostic power mode (default: ready).
	PowerMode func() doip.PowerMode

	MaxTesters   int    // sockets with an active routing at once (default 4); one more may be open to be denied
	MaxDataSize  uint32 // the largest payload accepted (default 4100): larger gets generic NACK 0x02
	MemoryBudget int64  // payload bytes held at once over every socket (default 8 × MaxDataSize): beyond, NACK 0x03

	InitialInactivity time.Duration // from connect until routing activation (default 2 s)
	GeneralInactivity time.Duration // between messages once routing is active (default 5 min)
	AliveCheckTimeout time.Duration // how long an alive check waits for the answer (default 500 ms)
	WriteTimeout      time.Duration // a write to a socket (default 5 s, wall clock); then it is closed

	// Announce is where vehicle announcements go when ServeUDP starts (none when nil), Count of
	// them, Interval apart.
	Announce         net.Addr
	AnnounceCount    int
	AnnounceInterval time.Duration

	Clock  isotp.Clock  // the timers' clock (default: the system clock)
	Logger *slog.Logger // connections, refusals and closings, at level Info (default: none)
}

func (c *Config) defaults() {
	if c.Version == 0 {
		c.Version = doip.Version2012
	}
	if c.Testers == nil {
		c.Testers = func(sa uint16) bool { return sa >= 0x0E00 && sa <= 0x0FFF }
	}
	if c.PowerMode == nil {
		c.PowerMode = func() doip.PowerMode { return doip.PowerReady }
	}
	setDefault(&c.MaxTesters, DefaultMaxTesters)
	setDefault(&c.MaxDataSize, DefaultMaxDataSize)
	setDefault(&c.MemoryBudget, 8*int64(c.MaxDataSize))
	setDefault(&c.InitialInactivity, DefaultInitialInactivity)
	setDefault(&c.GeneralInactivity, DefaultGeneralInactivity)
	setDefault(&c.AliveCheckTimeout, DefaultAliveCheckTimeout)
	setDefault(&c.WriteTimeout, DefaultWriteTimeout)
	setDefault(&c.AnnounceCount, DefaultAnnounceCount)
	setDefault(&c.AnnounceInterval, DefaultAnnounceInterval)
	if c.Clock == nil {
		c.Clock = isotp.SystemClock
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

func setDefault[T int | int64 | uint32 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// Entity is a DoIP entity: it serves testers over TCP (Serve) and vehicle identification over UDP
// (ServeUDP), and routes diagnostic messages to the targets registered at logical addresses.
type Entity struct {
	cfg     Config
	memory  atomic.Int64 // payload bytes held
	actMu   sync.Mutex   // routing activations one at a time
	mu      sync.Mutex
	targets map[uint16]Target
	conns   map[*conn]struct{}
	active  map[uint16]*conn // source address → the socket it is active on
}

// New returns an entity with cfg's defaults filled in and no targets.
func New(cfg Config) *Entity {
	cfg.defaults()
	return &Entity{cfg: cfg, targets: map[uint16]Target{}, conns: map[*conn]struct{}{}, active: map[uint16]*conn{}}
}

// Config returns the entity's configuration, defaults filled in.
func (e *Entity) Config() Config { return e.cfg }

// Register routes diagnostic messages for the logical address addr to t (replacing any target
// there before).
func (e *Entity) Register(addr uint16, t Target) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.targets[addr] = t
}

func (e *Entity) target(addr uint16) Target {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.targets[addr]
}

// Serve accepts testers on ln (TCP_DATA, port 13400; a tls.Listener for port 3496) until ctx
// ends, then closes ln and every socket it accepted and returns nil; when ln fails, it closes
// those sockets too and returns the error. It may run on several listeners at once.
func (e *Entity) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx) // ends the sockets when Serve returns, before the Wait
	defer cancel()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("doip entity: accept: %w", err)
		}
		c := e.admit(ctx, nc)
		if c == nil {
			e.cfg.Logger.Info("doip entity: refused a socket: too many open", "remote", nc.RemoteAddr())
			nc.Close()
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); c.serve() }()
	}
}

// admit opens a socket for nc unless MaxTesters+1 are open already.
func (e *Entity) admit(ctx context.Context, nc net.Conn) *conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.conns) > e.cfg.MaxTesters {
		return nil
	}
	c := newConn(ctx, e, nc)
	e.conns[c] = struct{}{}
	return c
}

// forget removes a closed socket and its registration.
func (e *Entity) forget(c *conn) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.conns, c)
	if src, ok := c.source(); ok && e.active[src] == c {
		delete(e.active, src)
	}
}

// OpenSockets returns the number of TCP sockets open.
func (e *Entity) OpenSockets() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns)
}

// reserve takes n bytes of the memory budget, reporting whether they were free.
func (e *Entity) reserve(n uint32) bool {
	if e.memory.Add(int64(n)) > e.cfg.MemoryBudget {
		e.memory.Add(-int64(n))
		return false
	}
	return true
}

func (e *Entity) release(n uint32) { e.memory.Add(-int64(n)) }

// announcement is the entity's vehicle announcement (and identification response).
func (e *Entity) announcement() doip.VehicleAnnouncement {
	return doip.VehicleAnnouncement{VIN: e.cfg.VIN, LogicalAddress: e.cfg.LogicalAddress, EID: e.cfg.EID,
		GID: e.cfg.GID, FurtherAction: e.cfg.FurtherAction}
}

// status is the entity status response.
func (e *Entity) status() doip.EntityStatusResponse {
	return doip.EntityStatusResponse{NodeType: e.cfg.NodeType, MaxSockets: byte(min(e.cfg.MaxTesters, 255)),
		OpenSockets: byte(min(e.OpenSockets(), 255)), HasMaxDataSize: true, MaxDataSize: e.cfg.MaxDataSize}
}
