package isotp

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan"
)

// TestStarvedBsTimerDoesNotBlameTheReceiver: the N_Bs timer fires 100 ms late (the clock jumps
// past the deadline, as when the sender's process was not scheduled) and the flow control comes
// just after: the sender listens again and sends the message. A timer within the tolerance ends
// the wait as before (ErrTimeoutBs).
func TestStarvedBsTimerDoesNotBlameTheReceiver(t *testing.T) {
	for _, c := range []struct {
		name string
		late time.Duration
		want error
	}{
		{"100 ms late", 100 * time.Millisecond, nil},
		{"on time", starvationTolerance, ErrTimeoutBs},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := vcan.NewHub()
			defer h.Close()
			clk := newManualClock()
			tester := New(h.Connect(vcan.ExactID(ecuID, false)), testerID, ecuID, WithClock(clk), WithTimeouts(time.Second, 200*time.Millisecond, time.Second))
			defer tester.Close()
			ecuSide := h.Connect(vcan.ExactID(testerID, false))
			errc := make(chan error, 1)
			go func() { errc <- tester.Send(context.Background(), seq(20)) }()
			<-clk.armed // N_As of the first frame
			<-clk.armed // N_Bs
			clk.Advance(200*time.Millisecond + c.late)
			select {
			case <-clk.armed: // a grace
				if c.want != nil {
					t.Fatalf("a grace after a timer %v late", c.late)
				}
			case err := <-errc:
				if !errors.Is(err, c.want) || c.want == nil {
					t.Fatalf("send after a timer %v late: %v, want %v", c.late, err, c.want)
				}
				return
			case <-time.After(time.Minute):
				t.Fatal("the sender neither set a timer nor returned")
			}
			fc := vcan.Frame{ID: ecuID, Length: 3}
			copy(fc.Data[:], []byte{0x30, 0x00, 0x00}) // flow control: clear to send, BS 0, STmin 0
			if err := ecuSide.SendFrame(context.Background(), fc); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("send: %v, want the message sent after the flow control in the grace", err)
			}
		})
	}
}

// TestStarvedCrTimerDoesNotBlameTheSender: the receiver's N_Cr timer fires 100 ms late and the
// consecutive frames come just after: the message is received whole. A timer within the tolerance
// abandons the message as before (ErrTimeoutCr).
func TestStarvedCrTimerDoesNotBlameTheSender(t *testing.T) {
	for _, c := range []struct {
		name string
		late time.Duration
		want error
	}{
		{"100 ms late", 100 * time.Millisecond, nil},
		{"on time", starvationTolerance, ErrTimeoutCr},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := vcan.NewHub()
			defer h.Close()
			clk := newManualClock()
			tester := New(h.Connect(vcan.ExactID(ecuID, false)), testerID, ecuID, WithClock(clk), WithTimeouts(time.Second, time.Second, 200*time.Millisecond))
			defer tester.Close()
			ecuSide := h.Connect(vcan.ExactID(testerID, false))
			send := func(b ...byte) {
				f := vcan.Frame{ID: ecuID, Length: 8}
				copy(f.Data[:], b)
				if err := ecuSide.SendFrame(context.Background(), f); err != nil {
					t.Fatal(err)
				}
			}
			send(0x10, 20, 0, 1, 2, 3, 4, 5) // first frame of 20 bytes
			<-clk.armed                      // N_As of the tester's flow control
			<-clk.armed                      // N_Cr
			clk.Advance(200*time.Millisecond + c.late)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if c.want != nil {
				if got, err := tester.Receive(ctx); !errors.Is(err, c.want) {
					t.Fatalf("receive after an N_Cr timer %v late: % x, %v; want %v", c.late, got, err, c.want)
				}
				return
			}
			select {
			case <-clk.armed: // a grace
			case got := <-tester.inbox:
				t.Fatalf("no grace after an N_Cr timer %v late: % x, %v", c.late, got.msg, got.err)
			}
			send(0x21, 6, 7, 8, 9, 10, 11, 12)
			send(0x22, 13, 14, 15, 16, 17, 18, 19)
			want := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19}
			if got, err := tester.Receive(ctx); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("receive: % x, %v; want the 20 bytes", got, err)
			}
		})
	}
}
