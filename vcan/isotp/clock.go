package isotp

import (
	"context"
	"errors"
	"time"

	"github.com/shekit/shekit/vcan"
)

// Clock is the time source of a Conn's timers: N_As, N_Bs, N_Cr, and the STmin and flow control
// pauses on a bus that keeps no simulated time.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed; stop cancels that if it has not
	// happened yet.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the real clock (package time).
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// errTimerFired is the cause of a context that a timer of the clock ended.
var errTimerFired = errors.New("isotp: timer fired")

// withTimeout returns a context that ends d after now on clk, with cause errTimerFired (and
// context.DeadlineExceeded for the callers that look only at ctx.Err's kind).
func withTimeout(ctx context.Context, clk Clock, d time.Duration) (context.Context, context.CancelFunc) {
	tctx, cancel := context.WithCancelCause(ctx)
	stop := clk.AfterFunc(max(d, 0), func() { cancel(errTimerFired) })
	return tctx, func() { stop(); cancel(context.Canceled) }
}

// timerFired reports whether ctx was ended by withTimeout's timer.
func timerFired(ctx context.Context) bool { return errors.Is(context.Cause(ctx), errTimerFired) }

// wait lets d pass: the bus's simulated time where it keeps one (vcan.Waiter), else d on clk.
func wait(ctx context.Context, bus vcan.Conn, clk Clock, d time.Duration) error {
	if w, ok := bus.(vcan.Waiter); ok {
		return w.Wait(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	tctx, cancel := withTimeout(ctx, clk, d)
	defer cancel()
	<-tctx.Done()
	if timerFired(tctx) {
		return nil
	}
	return ctx.Err()
}
