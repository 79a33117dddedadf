package entity_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan/doip"
	"github.com/shekit/shekit/vcan/doip/entity"
)

// patience bounds every wait for a socket: generous, for a loaded machine. No test relies on it
// passing: the protocol timers run on a fakeClock.
const patience = 20 * time.Second

// fakeClock is a clock that moves only when Advance is called.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]struct{}
}

type fakeTimer struct {
	at time.Time
	f  func()
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), timers: map[*fakeTimer]struct{}{}}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers[t] = struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, pending := c.timers[t]
		delete(c.timers, t)
		return pending
	}
}

// Advance moves the clock on by d and runs the timers that are due, each in its own goroutine.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.at.After(c.now) {
			delete(c.timers, t)
			go t.f()
		}
	}
}

// AdvanceWhenPending waits until a timer is pending (a goroutine may be about to start one),
// then advances the clock by d.
func (c *fakeClock) AdvanceWhenPending(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		c.mu.Lock()
		n := len(c.timers)
		c.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no timer started")
		}
		yield()
	}
	c.Advance(d)
}

// rig is an entity serving TCP and UDP on loopback.
type rig struct {
	e       *entity.Entity
	tcp     string
	udp     string
	clock   *fakeClock
	cfg     entity.Config
	udpConn net.PacketConn
}

var testVIN = [17]byte([]byte("SHEKIT0DOIP000001"))

// newRig starts an entity with cfg (a fake clock and test identity filled in) and targets.
func newRig(t *testing.T, cfg entity.Config, targets map[uint16]entity.Target) *rig {
	t.Helper()
	clk := newFakeClock()
	if cfg.Clock == nil {
		cfg.Clock = clk
	}
	if cfg.LogicalAddress == 0 {
		cfg.LogicalAddress = 0x1000
	}
	if cfg.VIN == [17]byte{} {
		cfg.VIN = testVIN
		cfg.EID = [6]byte{0x02, 0, 0, 0, 0x10, 0}
		cfg.GID = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	}
	e := entity.New(cfg)
	for addr, tg := range targets {
		e.Register(addr, tg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.Serve(ctx, ln) }()
	go func() { defer wg.Done(); e.ServeUDP(ctx, pc) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return &rig{e: e, tcp: ln.Addr().String(), udp: pc.LocalAddr().String(), clock: clk, cfg: e.Config(), udpConn: pc}
}

// raw is a tester socket driven byte by byte.
type raw struct {
	t  *testing.T
	nc net.Conn
}

func (r *rig) dialRaw(t *testing.T) *raw {
	t.Helper()
	nc, err := net.DialTimeout("tcp", r.tcp, patience)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &raw{t: t, nc: nc}
}

func (w *raw) sendBytes(b []byte) {
	w.t.Helper()
	if _, err := w.nc.Write(b); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

func (w *raw) send(p doip.Payload) {
	w.t.Helper()
	w.sendBytes(doip.Append(nil, doip.Message{Version: 2, Payload: p}))
}

// read returns the next message from the entity.
func (w *raw) read() doip.Message {
	w.t.Helper()
	w.nc.SetReadDeadline(time.Now().Add(patience))
	m, err := doip.ReadMessage(w.nc, 1<<20)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	return m
}

// expect reads the next message and checks it is want (version 0x02).
func (w *raw) expect(want doip.Payload) {
	w.t.Helper()
	w.expectVersion(2, want)
}

func (w *raw) expectVersion(version byte, want doip.Payload) {
	w.t.Helper()
	m := w.read()
	if m.Version != version || !equalPayload(m.Payload, want) {
		w.t.Fatalf("got %#v (version %#02x), want %#v (version %#02x)", m.Payload, m.Version, want, version)
	}
}

// equalPayload compares payloads, taking nil and empty byte slices as equal.
func equalPayload(got, want doip.Payload) bool {
	return bytes.Equal(doip.Append(nil, doip.Message{Version: 2, Payload: got}), doip.Append(nil, doip.Message{Version: 2, Payload: want})) &&
		reflect.TypeOf(got) == reflect.TypeOf(want)
}

// expectClosed checks that the entity closes the socket: the next read ends with EOF (or a reset).
func (w *raw) expectClosed() {
	w.t.Helper()
	w.nc.SetReadDeadline(time.Now().Add(patience))
	m, err := doip.ReadMessage(w.nc, 1<<20)
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		w.t.Fatalf("socket still open: read %#v, %v", m.Payload, err)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !isReset(err) {
		w.t.Fatalf("read after close: %v", err)
	}
}

func isReset(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}

// activate activates routing for source and checks the entity's success answer.
func (w *raw) activate(source uint16, entityAddr uint16) {
	w.t.Helper()
	w.send(doip.RoutingActivationRequest{SourceAddress: source})
	w.expect(doip.RoutingActivationResponse{TesterAddress: source, EntityAddress: entityAddr, Code: doip.ActivationSuccess})
}

// alive checks the socket is open and served: an entity status request is answered.
func (w *raw) alive() {
	w.t.Helper()
	w.send(doip.EntityStatusRequest{})
	if m := w.read(); m.Payload.PayloadType() != doip.TypeEntityStatusResponse {
		w.t.Fatalf("answer to the entity status request: %#v", m.Payload)
	}
}

// yield lets other goroutines run for a moment while a test polls a state it cannot wait on.
func yield() { time.Sleep(time.Millisecond) }

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
