package entity

import (
	"errors"
	"slices"
	"sync"

	"github.com/shekit/shekit/vcan/doip"
)

// route carries one socket's diagnostic messages to one target, in their order: each is
// forwarded, then acknowledged (or refused), and the target's answers to it follow its
// acknowledgement. Routes to different targets run side by side, so that a target slow to take a
// request (an ECU behind a gateway that is slow with its flow control) holds up only its own
// requests. A route's goroutine runs while it has requests.
type route struct {
	c      *conn
	target uint16

	mu      sync.Mutex
	queue   []forwardJob
	t       Target
	running bool
	holding bool           // a request is being forwarded: answers wait for its acknowledgement
	held    []doip.Message // the answers that wait
}

// forwardJob is one diagnostic message waiting for its route.
type forwardJob struct {
	data    []byte
	tester  uint16
	version byte
}

// push queues a request for t.
func (r *route) push(t Target, j forwardJob) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.t = t
	r.queue = append(r.queue, j)
	if !r.running {
		r.running = true
		go r.run()
	}
}

// run forwards the queued requests and ends when the queue is empty.
func (r *route) run() {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		j, t := r.queue[0], r.t
		r.queue = r.queue[1:]
		r.holding = true
		r.mu.Unlock()
		r.forward(t, j)
	}
}

// forward delivers one request and acknowledges it: the ACK once the target took it, else the
// NACK of its refusal (0x06 unless a *ForwardError names another code); then the held answers.
func (r *route) forward(t Target, j forwardJob) {
	c := r.c
	var p doip.Payload = doip.DiagnosticACK{SourceAddress: r.target, TargetAddress: j.tester, Code: doip.DiagnosticACKCode}
	err := t.Forward(c.ctx, j.data, r.answerer(j.tester, j.version))
	c.e.release(uint32(len(j.data))) // before the acknowledgement: the tester may send more on it
	if err != nil {
		code := doip.DiagnosticTargetUnreachable
		var fe *ForwardError
		if errors.As(err, &fe) {
			code = fe.Code
		}
		c.e.cfg.Logger.Info("doip entity: diagnostic message not forwarded", "target", r.target, "code", code, "err", err)
		p = doip.DiagnosticNACK{SourceAddress: r.target, TargetAddress: j.tester, Code: code}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c.write(doip.Message{Version: j.version, Payload: p})
	for _, m := range r.held {
		c.write(m)
	}
	r.held, r.holding = nil, false
}

// answerer returns the function the target answers through: each answer becomes one diagnostic
// message from the target to the tester, in the request's protocol version.
func (r *route) answerer(tester uint16, version byte) func([]byte) {
	return func(resp []byte) {
		if len(resp) == 0 {
			return
		}
		m := doip.Message{Version: version, Payload: doip.DiagnosticMessage{SourceAddress: r.target,
			TargetAddress: tester, Data: slices.Clone(resp)}}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.holding {
			r.held = append(r.held, m)
			return
		}
		r.c.write(m)
	}
}
