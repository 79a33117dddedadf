package uds

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/shekit/shekit/vcan/isotp"
)

// ErrTimeout is returned when the server does not answer within P2 (or P2* after a response
// pending).
var ErrTimeout = errors.New("uds: no response in time")

// ErrNothingOwed is returned by AwaitLate when the last request did not time out.
var ErrNothingOwed = errors.New("uds: the last request is owed no answer")

// Client sends UDS requests over a transport, one at a time, and matches each answer to its
// request: a positive answer must echo the request's service and its sub-function, data
// identifier or routine identifier; a negative answer must name the request's service. Anything
// else is discarded. A request that timed out is owed its answer: before the next request the
// client waits for that answer (up to P2* after the timeout) and discards it, so that a late
// answer is never taken for the answer to a later request.
//
// The tester does not blame the ECU for its own starvation: a P2 (or P2*) timer that fires well
// after its deadline, because the tester's process was not scheduled, does not end the wait at
// once; the client listens again for as long as the timer was late (at most P2*), since the answer
// may be waiting in the transport already, and counts a timeout only when that grace ends on time
// with no answer. On a machine that is not starved the timers fire on time and the wait is as
// strict as P2 (+ margin).
//
// A Client is not safe for concurrent requests; Stats may be called from any goroutine.
type Client struct {
	t      isotp.Transport
	clock  Clock
	log    *slog.Logger
	p2     time.Duration
	p2Star time.Duration
	margin time.Duration

	owed     []owedAnswer // requests that timed out, oldest first
	seq      uint64       // numbers the owed answers
	owesLast bool         // the last request sent timed out (AwaitLate may claim its answer)
	takeLate bool         // Do waits for the late answer of a request that timed out

	late, discarded, timeouts atomic.Int64
}

// owedAnswer is a request that timed out and the time until which its answer is awaited.
type owedAnswer struct {
	req      []byte
	deadline time.Time
	seq      uint64
}

// Stats counts what a client saw: requests that timed out; late answers, which came after their
// request timed out (claimed by AwaitLate, or discarded as stale); and foreign messages, which
// answered no request and were discarded.
type Stats struct {
	Timeouts, Late, Discarded int64
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithTiming sets the server's P2 and P2* the client starts with (DiagnosticSessionControl
// responses update them) and the margin it adds for transport and scheduling delays (the
// ΔP2 of ISO 14229-2; default 50 ms).
func WithTiming(p2, p2Star, margin time.Duration) ClientOption {
	return func(c *Client) { c.p2, c.p2Star, c.margin = p2, p2Star, margin }
}

// WithClock makes the client measure P2 and P2* on clk (default: the system clock).
func WithClock(clk Clock) ClientOption { return func(c *Client) { c.clock = clk } }

// WithLogger logs each timeout and each late or discarded answer to l, at level Info.
func WithLogger(l *slog.Logger) ClientOption { return func(c *Client) { c.log = l } }

// SetLateAnswers sets whether Do, when a request times out, goes on to wait for its late answer
// (as AwaitLate does) and returns it; the timeout and the late answer are still counted and
// logged. Off by default: Do then returns ErrTimeout after P2.
func (c *Client) SetLateAnswers(take bool) { c.takeLate = take }

// NewClient returns a client on t.
func NewClient(t isotp.Transport, opts ...ClientOption) *Client {
	c := &Client{t: t, clock: SystemClock, p2: DefaultP2, p2Star: DefaultP2Star, margin: 50 * time.Millisecond}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Timing returns the P2 and P2* the client currently uses.
func (c *Client) Timing() (p2, p2Star time.Duration) { return c.p2, c.p2Star }

// Stats returns the client's counters.
func (c *Client) Stats() Stats {
	return Stats{Timeouts: c.timeouts.Load(), Late: c.late.Load(), Discarded: c.discarded.Load()}
}

// Do sends req and returns the positive response. It first settles the answers owed to earlier
// requests that timed out, then sends req and waits P2 for its answer and P2* after each response
// pending (NRC 0x78); P2 counts from the end of the transmission (the transport's Send returns
// then). A negative response is a *NegativeResponseError; no answer in time is ErrTimeout. With
// the suppress-positive-response bit set in req's sub-function, Do returns nil once req is sent.
func (c *Client) Do(ctx context.Context, req []byte) ([]byte, error) {
	if len(req) == 0 {
		return nil, errors.New("uds: empty request")
	}
	sid := req[0]
	if err := c.settleOwed(ctx); err != nil {
		return nil, err
	}
	c.owesLast = false
	if err := c.t.Send(ctx, req); err != nil {
		return nil, fmt.Errorf("uds: send %#02x: %w", sid, err)
	}
	if SuppressesPositiveResponse(req) {
		return nil, nil
	}
	resp, err := c.await(ctx, req)
	if err == nil || isAnswer(err) {
		return resp, err
	}
	c.owe(req) // sent and not answered: its answer may still come
	if c.takeLate && ctx.Err() == nil {
		return c.AwaitLate(ctx)
	}
	return nil, err
}

// isAnswer reports whether err carries the server's answer (a negative response).
func isAnswer(err error) bool {
	var nr *NegativeResponseError
	return errors.As(err, &nr)
}

// await waits for the answer to req: P2 for the first message, P2* after each response pending.
// Messages that are not req's answer are discarded.
func (c *Client) await(ctx context.Context, req []byte) ([]byte, error) {
	wait := c.p2 + c.margin
	deadline := c.clock.Now().Add(wait)
	for {
		msg, err := c.receive(ctx, deadline.Sub(c.clock.Now()))
		switch {
		case errors.Is(err, errWaitOver):
			c.timeouts.Add(1)
			c.logf("uds: no answer in time", "service", req[0], "waited", wait)
			return nil, fmt.Errorf("%w: service %#02x after %v", ErrTimeout, req[0], wait)
		case err != nil:
			return nil, fmt.Errorf("uds: receive %#02x: %w", req[0], err)
		}
		switch Match(req, msg) {
		case Pending:
			wait = c.p2Star + c.margin
			deadline = c.clock.Now().Add(wait)
		case Answer:
			return answerOf(msg)
		default:
			c.discard(msg, "foreign")
		}
	}
}

// answerOf returns a positive answer as it is and a negative one as its error.
func answerOf(msg []byte) ([]byte, error) {
	if sid, nrc, ok := ParseNegative(msg); ok {
		return nil, &NegativeResponseError{SID: sid, NRC: nrc}
	}
	return msg, nil
}

// owe records that req timed out: its answer is awaited until P2* after now.
func (c *Client) owe(req []byte) {
	c.seq++
	c.owed = append(c.owed, owedAnswer{req: slices.Clone(req), deadline: c.clock.Now().Add(c.p2Star + c.margin), seq: c.seq})
	c.owesLast = true
}

// settleOwed waits for the answers owed to requests that timed out and discards them, giving up
// on each at its deadline.
func (c *Client) settleOwed(ctx context.Context) error {
	for len(c.owed) > 0 {
		if _, err := c.awaitOwed(ctx, c.owed[0].seq); err != nil && !isAnswer(err) && !errors.Is(err, ErrTimeout) {
			return err
		}
	}
	return nil
}

// awaitOwed waits for the answer owed under seq and returns it (a negative one as its error);
// the other owed answers that come meanwhile are discarded. The entry is settled either way.
func (c *Client) awaitOwed(ctx context.Context, seq uint64) ([]byte, error) {
	for {
		i := slices.IndexFunc(c.owed, func(o owedAnswer) bool { return o.seq == seq })
		if i < 0 {
			return nil, ErrNothingOwed
		}
		o := c.owed[i]
		// Past the deadline still a moment: an answer that came meanwhile is queued and read.
		msg, err := c.receive(ctx, max(o.deadline.Sub(c.clock.Now()), time.Millisecond))
		switch {
		case errors.Is(err, errWaitOver):
			c.owed = slices.Delete(c.owed, i, i+1)
			c.logf("uds: no late answer either", "service", o.req[0])
			return nil, fmt.Errorf("%w: service %#02x, not even late", ErrTimeout, o.req[0])
		case err != nil:
			return nil, fmt.Errorf("uds: awaiting the late answer to %#02x: %w", o.req[0], err)
		}
		if got, ok := c.matchOwed(msg); ok && got.seq == seq {
			return answerOf(msg)
		}
	}
}

// matchOwed files msg under the first owed request it answers: a response pending moves that
// request's deadline on, an answer settles it. It reports the request an answer settled; every
// message but that one is discarded.
func (c *Client) matchOwed(msg []byte) (owedAnswer, bool) {
	for i, o := range c.owed {
		switch Match(o.req, msg) {
		case Pending:
			c.owed[i].deadline = c.clock.Now().Add(c.p2Star + c.margin)
			return owedAnswer{}, false
		case Answer:
			c.owed = slices.Delete(c.owed, i, i+1)
			c.late.Add(1)
			c.logf("uds: late answer", "service", o.req[0], "answer", abbreviate(msg))
			return o, true
		}
	}
	c.discard(msg, "foreign")
	return owedAnswer{}, false
}

// AwaitLate waits for the late answer to the last request, when that request timed out (and no
// other was sent since): it returns the answer as Do would have, or ErrTimeout when none came
// within P2* after the timeout. Answers owed to older requests that come meanwhile are discarded.
// Without a timed-out last request it returns ErrNothingOwed.
func (c *Client) AwaitLate(ctx context.Context) ([]byte, error) {
	if !c.owesLast || len(c.owed) == 0 {
		return nil, ErrNothingOwed
	}
	c.owesLast = false
	return c.awaitOwed(ctx, c.owed[len(c.owed)-1].seq)
}

// discard drops msg, counting and logging it.
func (c *Client) discard(msg []byte, why string) {
	c.discarded.Add(1)
	c.logf("uds: discarded an answer", "why", why, "answer", abbreviate(msg))
}

func (c *Client) logf(msg string, args ...any) {
	if c.log != nil {
		c.log.Info(msg, args...)
	}
}

// abbreviate is the hex of msg's first 8 bytes: enough to name the service and identifier.
func abbreviate(msg []byte) string {
	if len(msg) > 8 {
		return hex.EncodeToString(msg[:8]) + "…"
	}
	return hex.EncodeToString(msg)
}

// errWaitOver ends a receive whose time is up.
var errWaitOver = errors.New("uds: wait over")

// starvationTolerance is how late a timer may fire before the client takes the lateness for its
// own starvation (the process was not scheduled) rather than the server's silence.
const starvationTolerance = 2 * time.Millisecond

// maxGraces bounds the grace periods of one wait: each is granted only when the one before it
// fired late too.
const maxGraces = 16

// receive returns the next message, or errWaitOver when none arrives within d of the client's
// clock. When the timer fires late (the clock is past the deadline by more than
// starvationTolerance: the tester was starved), an answer may already wait in the transport:
// receive listens again for as long as the timer was late, at most P2*, and again while that
// grace itself ends late. On an on-time timer the wait ends at the deadline.
func (c *Client) receive(ctx context.Context, d time.Duration) ([]byte, error) {
	deadline := c.clock.Now().Add(d)
	for graces := 0; ; graces++ {
		msg, err := c.receiveWithin(ctx, d)
		if !errors.Is(err, errWaitOver) {
			return msg, err
		}
		now := c.clock.Now()
		late := now.Sub(deadline)
		if late <= starvationTolerance || graces == maxGraces {
			return nil, errWaitOver
		}
		d = min(late, c.p2Star)
		deadline = now.Add(d)
		c.logf("uds: timer fired late, listening again", "late", late, "grace", d)
	}
}

// receiveWithin is one wait of receive: the next message, or errWaitOver after d on the clock.
func (c *Client) receiveWithin(ctx context.Context, d time.Duration) ([]byte, error) {
	if d <= 0 {
		return nil, errWaitOver
	}
	rctx, cancel := context.WithCancelCause(ctx)
	stop := c.clock.AfterFunc(d, func() { cancel(errWaitOver) })
	defer func() { stop(); cancel(nil) }()
	msg, err := c.t.Receive(rctx)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(rctx), errWaitOver) {
		return nil, errWaitOver
	}
	return msg, err
}

// StartSession switches to session and adopts the P2 and P2* the server reports.
func (c *Client) StartSession(ctx context.Context, session byte) error {
	resp, err := c.Do(ctx, []byte{DiagnosticSessionControl, session})
	if err != nil {
		return err
	}
	if len(resp) != 6 || resp[1] != session {
		return fmt.Errorf("uds: malformed session response % x", resp)
	}
	c.p2 = time.Duration(uint16(resp[2])<<8|uint16(resp[3])) * time.Millisecond
	c.p2Star = time.Duration(uint16(resp[4])<<8|uint16(resp[5])) * 10 * time.Millisecond
	return nil
}

// Reset requests ECUReset of the given type.
func (c *Client) Reset(ctx context.Context, resetType byte) error {
	_, err := c.Do(ctx, []byte{ECUReset, resetType})
	return err
}

// Unlock runs SecurityAccess at an odd level: request the seed, answer key(seed). A zero seed
// means the level is already unlocked.
func (c *Client) Unlock(ctx context.Context, level byte, key func(seed []byte) []byte) error {
	resp, err := c.Do(ctx, []byte{SecurityAccess, level})
	if err != nil {
		return err
	}
	if len(resp) < 3 || resp[1] != level {
		return fmt.Errorf("uds: SecurityAccess %#02x answered % x, not a seed for that level", level, resp)
	}
	seed := resp[2:]
	if allZero(seed) {
		return nil
	}
	_, err = c.Do(ctx, append([]byte{SecurityAccess, level + 1}, key(seed)...))
	return err
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// ReadDID reads one data identifier.
func (c *Client) ReadDID(ctx context.Context, did uint16) ([]byte, error) {
	resp, err := c.Do(ctx, []byte{ReadDataByIdentifier, byte(did >> 8), byte(did)})
	if err != nil {
		return nil, err
	}
	return DIDData(resp, did)
}

// DIDData returns the data of a ReadDataByIdentifier answer for did.
func DIDData(resp []byte, did uint16) ([]byte, error) {
	if len(resp) < 3 || uint16(resp[1])<<8|uint16(resp[2]) != did {
		return nil, fmt.Errorf("uds: malformed response to DID %#04x: % x", did, resp)
	}
	return resp[3:], nil
}

// StartRoutine runs RoutineControl startRoutine for rid with data and returns the routine's
// status record.
func (c *Client) StartRoutine(ctx context.Context, rid uint16, data []byte) ([]byte, error) {
	req := append([]byte{RoutineControl, 0x01, byte(rid >> 8), byte(rid)}, data...)
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	return RoutineRecord(resp, rid)
}

// RoutineRecord returns the status record of a startRoutine answer for rid.
func RoutineRecord(resp []byte, rid uint16) ([]byte, error) {
	if len(resp) < 4 || resp[1] != 0x01 || uint16(resp[2])<<8|uint16(resp[3]) != rid {
		return nil, fmt.Errorf("uds: malformed response to routine %#04x: % x", rid, resp)
	}
	return resp[4:], nil
}

// TesterPresent keeps a non-default session alive; suppress asks for no answer.
func (c *Client) TesterPresent(ctx context.Context, suppress bool) error {
	sub := byte(0)
	if suppress {
		sub = SuppressPositiveResponse
	}
	_, err := c.Do(ctx, []byte{TesterPresent, sub})
	return err
}

// DoSuppressed sends req, whose sub-function has the suppress-positive-response bit, and returns
// every message that answers it within wait, P2* after each response pending: none from a server
// that honours the bit; a negative answer; or response pendings and the final answer that ISO
// 14229-1 requires after them. It returns at the first answer that is not a response pending
// (a session's S3 may be shorter than P2*); any later one is discarded, and counted, by the
// requests that follow. Foreign messages are discarded as by Do.
func (c *Client) DoSuppressed(ctx context.Context, req []byte, wait time.Duration) ([][]byte, error) {
	if !SuppressesPositiveResponse(req) {
		return nil, fmt.Errorf("uds: % x has no suppress bit", req)
	}
	if _, err := c.Do(ctx, req); err != nil {
		return nil, err
	}
	var answers [][]byte
	deadline := c.clock.Now().Add(wait)
	for {
		msg, err := c.receive(ctx, deadline.Sub(c.clock.Now()))
		switch {
		case errors.Is(err, errWaitOver):
			return answers, nil
		case err != nil:
			return answers, fmt.Errorf("uds: receive %#02x: %w", req[0], err)
		}
		switch Match(req, msg) {
		case Pending:
			answers = append(answers, msg)
			deadline = c.clock.Now().Add(c.p2Star + c.margin)
		case Answer:
			return append(answers, msg), nil
		default:
			c.discard(msg, "foreign")
		}
	}
}
