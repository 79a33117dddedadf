package uds

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// gatedServer answers each ReadDataByIdentifier of DID 0xFD00 with answer, once the test sends on
// the returned channel.
func gatedServer(t *testing.T, clk *stepClock, answer []byte) (*Client, chan struct{}) {
	t.Helper()
	release := make(chan struct{})
	c := scripted(t, func(req []byte) []reply {
		<-release
		return []reply{{msg: answer}}
	}, WithClock(clk))
	return c, release
}

// armedOrDone waits for the client to set its next timer, or to return; it reports which.
func armedOrDone(t *testing.T, clk *stepClock, errc <-chan error) (armed bool, err error) {
	t.Helper()
	select {
	case <-clk.armed:
		return true, nil
	case err := <-errc:
		return false, err
	case <-time.After(time.Minute):
		t.Fatal("the client neither set a timer nor returned")
		return false, nil
	}
}

// TestStarvedTimerDoesNotBlameTheServer: the P2 timer fires 200 ms late (the clock jumps past the
// deadline, as when the tester's process was not scheduled) and the answer is delivered just
// after: the client listens again and returns it, counting no timeout.
func TestStarvedTimerDoesNotBlameTheServer(t *testing.T) {
	clk := &stepClock{now: time.Unix(1000, 0), armed: make(chan struct{}, 100)}
	want := []byte{0x62, 0xFD, 0x00, 0x01}
	c, release := gatedServer(t, clk, want)
	errc := make(chan error, 1)
	var got []byte
	go func() {
		var err error
		got, err = c.Do(context.Background(), []byte{0x22, 0xFD, 0x00})
		errc <- err
	}()
	<-clk.armed
	clk.Advance(60*time.Millisecond + 200*time.Millisecond) // P2 40 ms + margin 20 ms, fired 200 ms late
	if armed, err := armedOrDone(t, clk, errc); !armed {
		t.Fatalf("a timer that fired 200 ms late ended the wait: %v", err)
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("Do: %v, want the answer", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("answer % x, want % x", got, want)
	}
	if s := c.Stats(); s != (Stats{}) {
		t.Errorf("stats %+v, want none: the answer came in the grace, not late", s)
	}
}

// TestStarvedGraceIsCappedAndRepeated: the grace is at most P2* (150 ms here) and is granted again
// when it fires late itself; once a grace fires on time with no answer, Do times out.
func TestStarvedGraceIsCappedAndRepeated(t *testing.T) {
	clk := &stepClock{now: time.Unix(1000, 0), armed: make(chan struct{}, 100)}
	c, release := gatedServer(t, clk, []byte{0x62, 0xFD, 0x00, 0x01})
	defer close(release)
	errc := make(chan error, 1)
	go func() { _, err := c.Do(context.Background(), []byte{0x22, 0xFD, 0x00}); errc <- err }()
	<-clk.armed
	clk.Advance(60*time.Millisecond + time.Second) // a second late: the grace is P2*, 150 ms
	if armed, err := armedOrDone(t, clk, errc); !armed {
		t.Fatalf("no grace after a late timer: %v", err)
	}
	clk.Advance(149 * time.Millisecond)
	clk.Advance(50 * time.Millisecond) // the grace fires 49 ms late: another grace of 49 ms
	if armed, err := armedOrDone(t, clk, errc); !armed {
		t.Fatalf("no second grace after a grace that fired late: %v", err)
	}
	clk.Advance(48 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("gave up before the second grace's end: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	clk.Advance(time.Millisecond) // on time: the wait is over
	if armed, err := armedOrDone(t, clk, errc); armed || !errors.Is(err, ErrTimeout) {
		t.Fatalf("after a grace on time with no answer: armed %v, %v; want ErrTimeout", armed, err)
	}
	if s := c.Stats(); s.Timeouts != 1 {
		t.Errorf("stats %+v, want one timeout", s)
	}
}

// TestOnTimeTimerStaysStrict: a timer that fires on time ends the wait (ErrTimeout); an answer that
// comes after it is late, as before: AwaitLate claims it and it is counted late.
func TestOnTimeTimerStaysStrict(t *testing.T) {
	clk := &stepClock{now: time.Unix(1000, 0), armed: make(chan struct{}, 100)}
	want := []byte{0x62, 0xFD, 0x00, 0x01}
	c, release := gatedServer(t, clk, want)
	errc := make(chan error, 1)
	go func() { _, err := c.Do(context.Background(), []byte{0x22, 0xFD, 0x00}); errc <- err }()
	<-clk.armed
	clk.Advance(60*time.Millisecond + starvationTolerance) // late, but within the tolerance
	if armed, err := armedOrDone(t, clk, errc); armed || !errors.Is(err, ErrTimeout) {
		t.Fatalf("on-time timer: armed %v, %v; want ErrTimeout", armed, err)
	}
	close(release)
	lc := make(chan error, 1)
	var got []byte
	go func() {
		var err error
		got, err = c.AwaitLate(context.Background())
		lc <- err
	}()
	if err := <-lc; err != nil || !bytes.Equal(got, want) {
		t.Fatalf("AwaitLate: % x, %v; want % x", got, err, want)
	}
	if s := c.Stats(); s != (Stats{Timeouts: 1, Late: 1}) {
		t.Errorf("stats %+v, want one timeout and one late answer", s)
	}
}
