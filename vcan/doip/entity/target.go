package entity

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/shekit/shekit/vcan/doip"
	"github.com/shekit/shekit/vcan/isotp"
)

// Target is a node reached at one logical address: the entity's own application, or an ECU behind
// a gateway.
type Target interface {
	// Forward delivers the tester's request. It returns nil once the request is on its way (the
	// entity then acknowledges it) or an error when it cannot be delivered (the entity answers
	// NACK 0x06, or the code of a *ForwardError). The target answers through answer, from any
	// goroutine, as many times as it has answers (each response pending 7F xx 78 is one): each
	// call becomes one diagnostic message to the tester. Answers given before Forward returns are
	// sent after the acknowledgement. A target may also have a method MaxRequestLength() int:
	// longer requests are refused with NACK 0x04 without being forwarded.
	Forward(ctx context.Context, req []byte, answer func(resp []byte)) error
}

// ForwardError is a target's refusal of a request with a diagnostic NACK code.
type ForwardError struct {
	Code doip.DiagnosticCode
	Err  error
}

// Error says which code refused the request and why.
func (e *ForwardError) Error() string { return fmt.Sprintf("doip entity: %v: %v", e.Code, e.Err) }

// Unwrap returns the cause.
func (e *ForwardError) Unwrap() error { return e.Err }

// HandlerFunc answers one UDS request, as a simulated ECU's Handle does: pending sends a response
// pending (NRC 0x78) while the answer is still being worked out; the answer is returned, or nil
// when none is due (a suppressed positive response).
type HandlerFunc func(req []byte, pending func()) []byte

// Handler returns a Target that runs h on each request, one request at a time in the order they
// came, whichever tester sent them.
func Handler(h HandlerFunc) Target { return &handlerTarget{h: h} }

type handlerTarget struct {
	h       HandlerFunc
	mu      sync.Mutex
	queue   []handlerJob
	running bool
}

type handlerJob struct {
	req    []byte
	answer func([]byte)
}

// Forward queues req for the handler and returns at once.
func (t *handlerTarget) Forward(_ context.Context, req []byte, answer func([]byte)) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.queue = append(t.queue, handlerJob{req, answer})
	if !t.running {
		t.running = true
		go t.run()
	}
	return nil
}

// run handles the queued requests and ends when the queue is empty.
func (t *handlerTarget) run() {
	for {
		t.mu.Lock()
		if len(t.queue) == 0 {
			t.running = false
			t.mu.Unlock()
			return
		}
		j := t.queue[0]
		t.queue = t.queue[1:]
		t.mu.Unlock()
		sid := j.req[0]
		if resp := t.h(j.req, func() { j.answer([]byte{0x7F, sid, 0x78}) }); resp != nil {
			j.answer(resp)
		}
	}
}

// TransportTarget returns a Target that forwards each request onto t (an ISO-TP connection to an
// ECU behind a gateway) and passes every message t receives to the tester that sent the last
// request, until ctx ends. A request t cannot send is refused with NACK 0x06 (target
// unreachable); a request sent that the ECU does not answer is acknowledged all the same, and
// the tester's P2 runs out.
func TransportTarget(ctx context.Context, t isotp.Transport) Target {
	tt := &transportTarget{t: t}
	go tt.receive(ctx)
	return tt
}

type transportTarget struct {
	t      isotp.Transport
	answer atomic.Pointer[func([]byte)]
}

// Forward sends req onto the transport; its answers go to answer from now on.
func (tt *transportTarget) Forward(ctx context.Context, req []byte, answer func([]byte)) error {
	tt.answer.Store(&answer)
	if err := tt.t.Send(ctx, req); err != nil {
		return &ForwardError{Code: doip.DiagnosticTargetUnreachable, Err: err}
	}
	return nil
}

// receive passes the ECU's messages on until ctx ends or the transport closes.
func (tt *transportTarget) receive(ctx context.Context) {
	for {
		msg, err := tt.t.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || !isotp.Abandoned(err) && !errors.Is(err, context.DeadlineExceeded) {
				return
			}
			continue
		}
		if a := tt.answer.Load(); a != nil {
			(*a)(msg)
		}
	}
}
