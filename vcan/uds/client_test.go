package uds

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
)

// reply is one message of a scripted server, sent after a delay.
type reply struct {
	after time.Duration
	msg   []byte
}

// scripted starts a server that answers each request with the replies answer returns for it,
// one after the other, on a fresh hub; it returns a client of it. Inside a synctest bubble the
// delays are simulated time.
func scripted(t *testing.T, answer func(req []byte) []reply, opts ...ClientOption) *Client {
	t.Helper()
	h := vcan.NewHub()
	server := isotp.New(h.Connect(vcan.ExactID(0x7E0, false)), 0x7E8, 0x7E0)
	client := isotp.New(h.Connect(vcan.ExactID(0x7E8, false)), 0x7E0, 0x7E8)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			req, err := server.Receive(ctx)
			if err != nil {
				return
			}
			for _, r := range answer(req) {
				time.Sleep(r.after)
				server.Send(ctx, r.msg)
			}
		}
	}()
	t.Cleanup(func() { cancel(); server.Close(); client.Close(); h.Close(); <-done })
	opts = append([]ClientOption{WithTiming(40*time.Millisecond, 150*time.Millisecond, 20*time.Millisecond)}, opts...)
	return NewClient(client, opts...)
}

// bySID answers by the request's service ID.
func bySID(answers map[byte][]reply) func([]byte) []reply {
	return func(req []byte) []reply { return answers[req[0]] }
}

func TestClientTiming(t *testing.T) {
	// Simulated time: every duration below is exact, whatever the machine's load.
	synctest.Test(t, func(t *testing.T) {
		pending := []byte{0x7F, 0x31, 0x78}
		c := scripted(t, bySID(map[byte][]reply{
			// Answered within P2.
			0x3E: {{0, []byte{0x7E, 0x00}}},
			// Response pending twice, each within P2*, then the answer: P2* applies after 0x78.
			0x31: {{10 * time.Millisecond, pending}, {100 * time.Millisecond, pending}, {100 * time.Millisecond, []byte{0x71, 0x01, 0xFD, 0x11, 0x00}}},
			// Answered after P2 + margin: too late.
			0x22: {{100 * time.Millisecond, []byte{0x62, 0xFD, 0x01, 0x00}}},
			// Pending, then nothing within P2*.
			0x11: {{0, []byte{0x7F, 0x11, 0x78}}},
			// A foreign answer (to another service) first, then the real one.
			0x27: {{0, []byte{0x62, 0xFD, 0x02, 0x00}}, {0, []byte{0x67, 0x01, 1, 2}}},
			// Negative.
			0x10: {{0, []byte{0x7F, 0x10, 0x12}}},
		}))
		ctx := context.Background()
		if err := c.TesterPresent(ctx, false); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if rec, err := c.StartRoutine(ctx, 0xFD11, nil); err != nil || len(rec) != 1 {
			t.Fatalf("routine with two pendings: % x, %v", rec, err)
		}
		if d := time.Since(start); d != 210*time.Millisecond {
			t.Fatalf("routine answered after %v, want 210ms", d)
		}
		start = time.Now()
		if _, err := c.ReadDID(ctx, 0xFD01); !errors.Is(err, ErrTimeout) {
			t.Fatalf("late answer: %v", err)
		}
		if d := time.Since(start); d != 60*time.Millisecond {
			t.Fatalf("gave up after %v, want P2 + margin = 60ms", d)
		}
		start = time.Now()
		if err := c.Reset(ctx, 0x01); !errors.Is(err, ErrTimeout) {
			t.Fatalf("pending then silence: %v", err)
		}
		// 40 ms until the late 0x22 answer came and was discarded, then P2* + margin.
		if d := time.Since(start); d != 210*time.Millisecond {
			t.Fatalf("gave up after %v, want 40ms + P2* + margin = 210ms", d)
		}
		start = time.Now()
		if resp, err := c.Do(ctx, []byte{0x27, 0x01}); err != nil || resp[0] != 0x67 {
			t.Fatalf("foreign answer not skipped: % x, %v", resp, err)
		}
		// The reset's answer was owed until P2* + margin after its timeout.
		if d := time.Since(start); d != 170*time.Millisecond {
			t.Fatalf("answered after %v, want 170ms", d)
		}
		var nr *NegativeResponseError
		if _, err := c.Do(ctx, []byte{0x10, 0x05}); !errors.As(err, &nr) || nr.NRC != SubFunctionNotSupported || nr.SID != 0x10 {
			t.Fatalf("negative response: %v", err)
		}
		if nr.Error() != "uds: service 0x10: negative response 0x12 subFunctionNotSupported" {
			t.Fatalf("error text %q", nr.Error())
		}
		if st := c.Stats(); st != (Stats{Timeouts: 2, Late: 1, Discarded: 1}) {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestLateAnswerIsNotTakenForTheNext(t *testing.T) {
	// The first read of a DID is answered after the client gave up; the second read of the same
	// DID is answered at once with other data. The client must return the second answer.
	synctest.Test(t, func(t *testing.T) {
		n := 0
		var logged bytes.Buffer
		c := scripted(t, func(req []byte) []reply {
			n++
			if n == 1 {
				return []reply{{100 * time.Millisecond, []byte{0x62, 0xFD, 0x00, 0x01}}}
			}
			return []reply{{0, []byte{0x62, 0xFD, 0x00, 0x02}}}
		}, WithLogger(slog.New(slog.NewTextHandler(&logged, nil))))
		ctx := context.Background()
		if _, err := c.ReadDID(ctx, 0xFD00); !errors.Is(err, ErrTimeout) {
			t.Fatalf("first read: %v", err)
		}
		data, err := c.ReadDID(ctx, 0xFD00)
		if err != nil || !bytes.Equal(data, []byte{0x02}) {
			t.Fatalf("second read: % x, %v; want 02", data, err)
		}
		if st := c.Stats(); st != (Stats{Timeouts: 1, Late: 1}) {
			t.Fatalf("stats %+v", st)
		}
		if !strings.Contains(logged.String(), "uds: late answer") || !strings.Contains(logged.String(), "answer=62fd0001") {
			t.Fatalf("log:\n%s", &logged)
		}
	})
}

func TestLateAnswerQueuedWhileIdleIsNotTakenForTheNext(t *testing.T) {
	// The late answer comes while the client is idle and waits in the transport's queue past the
	// time the client would have waited for it: the next read must still not take it.
	synctest.Test(t, func(t *testing.T) {
		n := 0
		c := scripted(t, func(req []byte) []reply {
			n++
			if n == 1 {
				return []reply{{100 * time.Millisecond, []byte{0x62, 0xFD, 0x00, 0x01}}}
			}
			return []reply{{0, []byte{0x62, 0xFD, 0x00, 0x02}}}
		})
		ctx := context.Background()
		if _, err := c.ReadDID(ctx, 0xFD00); !errors.Is(err, ErrTimeout) {
			t.Fatalf("first read: %v", err)
		}
		time.Sleep(time.Second) // past P2* + margin after the timeout
		data, err := c.ReadDID(ctx, 0xFD00)
		if err != nil || !bytes.Equal(data, []byte{0x02}) {
			t.Fatalf("second read: % x, %v; want 02", data, err)
		}
	})
}

func TestAwaitLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := scripted(t, bySID(map[byte][]reply{
			0x31: {{100 * time.Millisecond, []byte{0x71, 0x01, 0xFD, 0x10, 0x00}}},
			0x22: {{500 * time.Millisecond, []byte{0x62, 0xFD, 0x00, 0x01}}}, // after P2* too
			0x3E: {{0, []byte{0x7E, 0x00}}},
		}))
		ctx := context.Background()
		if _, err := c.AwaitLate(ctx); !errors.Is(err, ErrNothingOwed) {
			t.Fatalf("nothing sent yet: %v", err)
		}
		if _, err := c.StartRoutine(ctx, 0xFD10, nil); !errors.Is(err, ErrTimeout) {
			t.Fatalf("routine: %v", err)
		}
		resp, err := c.AwaitLate(ctx)
		if err != nil || !bytes.Equal(resp, []byte{0x71, 0x01, 0xFD, 0x10, 0x00}) {
			t.Fatalf("late routine answer % x, %v", resp, err)
		}
		if _, err := c.AwaitLate(ctx); !errors.Is(err, ErrNothingOwed) {
			t.Fatalf("claimed twice: %v", err)
		}
		// Too late even for AwaitLate: ErrTimeout, and the answer is discarded when it comes.
		start := time.Now()
		c.ReadDID(ctx, 0xFD00)
		if _, err := c.AwaitLate(ctx); !errors.Is(err, ErrTimeout) {
			t.Fatalf("answer after P2*: %v", err)
		}
		if d := time.Since(start); d != 60*time.Millisecond+170*time.Millisecond {
			t.Fatalf("gave up after %v, want P2 + P2* + 2 margins", d)
		}
		time.Sleep(time.Second)
		if err := c.TesterPresent(ctx, false); err != nil {
			t.Fatal(err)
		}
		// With SetLateAnswers, Do takes the late answer itself.
		c.SetLateAnswers(true)
		if rec, err := c.StartRoutine(ctx, 0xFD10, nil); err != nil || !bytes.Equal(rec, []byte{0}) {
			t.Fatalf("late answer taken by Do: % x, %v", rec, err)
		}
		if st := c.Stats(); st != (Stats{Timeouts: 3, Late: 2, Discarded: 1}) {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestPendingOfAnotherServiceDoesNotExtendTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := scripted(t, bySID(map[byte][]reply{0x22: {{0, []byte{0x7F, 0x31, 0x78}}}}))
		start := time.Now()
		if _, err := c.ReadDID(context.Background(), 0xFD00); !errors.Is(err, ErrTimeout) {
			t.Fatalf("read: %v", err)
		}
		if d := time.Since(start); d != 60*time.Millisecond {
			t.Fatalf("gave up after %v, want P2 + margin: a 0x78 for 0x31 is not one for 0x22", d)
		}
	})
}

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		req, resp []byte
		want      Verdict
	}{
		{[]byte{0x10, 0x03}, []byte{0x50, 0x03, 0, 0x32, 1, 0xF4}, Answer},
		{[]byte{0x10, 0x03}, []byte{0x50, 0x02, 0, 0x32, 1, 0xF4}, Foreign}, // another session
		{[]byte{0x10, 0x83}, []byte{0x50, 0x03, 0, 0x32, 1, 0xF4}, Answer},  // suppress bit not echoed
		{[]byte{0x27, 0x02, 1, 2}, []byte{0x67, 0x02}, Answer},
		{[]byte{0x27, 0x02, 1, 2}, []byte{0x67, 0x01, 1, 2}, Foreign}, // a seed is not a key's answer
		{[]byte{0x22, 0xFD, 0x00}, []byte{0x62, 0xFD, 0x00, 1}, Answer},
		{[]byte{0x22, 0xFD, 0x00}, []byte{0x62, 0xFD, 0x01, 1}, Foreign},
		{[]byte{0x22, 0x80, 0x00}, []byte{0x62, 0x80, 0x00, 1}, Answer}, // 0x80 of a DID is no suppress bit
		{[]byte{0x31, 0x01, 0xFD, 0x10}, []byte{0x71, 0x01, 0xFD, 0x10, 0}, Answer},
		{[]byte{0x31, 0x01, 0xFD, 0x10}, []byte{0x71, 0x01, 0xFD, 0x12, 0}, Foreign},
		{[]byte{0x31, 0x01, 0xFD, 0x10}, []byte{0x71, 0x01, 0xFD}, Foreign}, // too short to echo
		{[]byte{0x31, 0x01, 0xFD, 0x10}, []byte{0x7F, 0x31, 0x33}, Answer},
		{[]byte{0x31, 0x01, 0xFD, 0x10}, []byte{0x7F, 0x31, 0x78}, Pending},
		{[]byte{0x31, 0x01, 0xFD, 0x10}, []byte{0x7F, 0x22, 0x31}, Foreign},
		{[]byte{0x31, 0x01, 0xFD, 0x10}, []byte{0x7F, 0x22, 0x78}, Foreign},
		{[]byte{0x3E, 0x00}, []byte{0x7E, 0x00}, Answer},
		{[]byte{0x3E, 0x00}, []byte{0x62, 0xFD, 0x00}, Foreign},
		{nil, []byte{0x7E, 0x00}, Foreign},
		// WriteDataByIdentifier echoes its DID.
		{[]byte{0x2E, 0x0E, 0x10, 1, 2}, []byte{0x6E, 0x0E, 0x10}, Answer},
		{[]byte{0x2E, 0x0E, 0x10, 1, 2}, []byte{0x6E, 0x0E, 0x20}, Foreign}, // another DID's write
		{[]byte{0x2E, 0x8E, 0x10, 1}, []byte{0x6E, 0x8E, 0x10}, Answer},     // 0x80 of a DID is no suppress bit
		{[]byte{0x2E, 0x8E, 0x10, 1}, []byte{0x6E, 0x0E, 0x10}, Foreign},
		{[]byte{0x2E, 0x0E, 0x10, 1, 2}, []byte{0x6E, 0x0E}, Foreign},       // too short to echo
		{[]byte{0x2E, 0x0E, 0x10, 1, 2}, []byte{0x62, 0x0E, 0x10}, Foreign}, // a read's answer
		{[]byte{0x2E, 0x0E, 0x10, 1, 2}, []byte{0x7F, 0x2E, 0x72}, Answer},
		{[]byte{0x2E, 0x0E, 0x10, 1, 2}, []byte{0x7F, 0x2E, 0x78}, Pending},
		{[]byte{0x2E, 0x0E, 0x10, 1, 2}, []byte{0x7F, 0x22, 0x31}, Foreign},
		// ReadDataByIdentifier of the record after a write.
		{[]byte{0x22, 0x0E, 0x11}, []byte{0x62, 0x0E, 0x11, 0}, Answer},
		{[]byte{0x22, 0x0E, 0x11}, []byte{0x6E, 0x0E, 0x11}, Foreign}, // the write's answer, late
		{[]byte{0x22, 0x0E, 0x11}, []byte{0x7F, 0x2E, 0x72}, Foreign},
		// RequestDownload echoes nothing but the service.
		{[]byte{0x34, 0x00, 0x24, 0, 0xFF, 0, 0, 0, 0x40}, []byte{0x74, 0x20, 0x0F, 0xFF}, Answer},
		{[]byte{0x34, 0x00, 0x24, 0, 0xFF, 0, 0, 0, 0x40}, []byte{0x76, 0x01}, Foreign},
		{[]byte{0x34, 0x00, 0x24, 0, 0xFF, 0, 0, 0, 0x40}, []byte{0x7F, 0x34, 0x70}, Answer},
		{[]byte{0x34, 0x00, 0x24, 0, 0xFF, 0, 0, 0, 0x40}, []byte{0x7F, 0x36, 0x24}, Foreign},
		// TransferData echoes its block sequence counter.
		{[]byte{0x36, 0x01, 1, 2, 3}, []byte{0x76, 0x01}, Answer},
		{[]byte{0x36, 0x02, 1, 2, 3}, []byte{0x76, 0x01}, Foreign}, // the previous block's answer
		{[]byte{0x36, 0x81, 1, 2, 3}, []byte{0x76, 0x81}, Answer},  // 0x80 of a counter is no suppress bit
		{[]byte{0x36, 0x81, 1, 2, 3}, []byte{0x76, 0x01}, Foreign},
		{[]byte{0x36, 0x01, 1, 2, 3}, []byte{0x76}, Foreign}, // too short to echo
		{[]byte{0x36, 0x01, 1, 2, 3}, []byte{0x74, 0x20, 0x0F, 0xFF}, Foreign},
		{[]byte{0x36, 0x01, 1, 2, 3}, []byte{0x7F, 0x36, 0x78}, Pending},
		{[]byte{0x36, 0x01, 1, 2, 3}, []byte{0x7F, 0x36, 0x73}, Answer},
		// RequestTransferExit echoes nothing but the service.
		{[]byte{0x37}, []byte{0x77, 0, 1, 2}, Answer},
		{[]byte{0x37}, []byte{0x77}, Answer},
		{[]byte{0x37}, []byte{0x76, 0x01}, Foreign}, // the transfer's answer, late
		{[]byte{0x37}, []byte{0x7F, 0x37, 0x24}, Answer},
		{[]byte{0x37}, []byte{0x7F, 0x36, 0x24}, Foreign},
	} {
		if got := Match(c.req, c.resp); got != c.want {
			t.Errorf("% x answered by % x: %v, want %v", c.req, c.resp, got, c.want)
		}
	}
}

func TestClientRejectsMalformedResponses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := scripted(t, bySID(map[byte][]reply{
			0x10: {{0, []byte{0x50, 0x03, 0x00}}},             // session response too short
			0x22: {{0, []byte{0x62, 0xF1, 0x90, 0x01}}},       // another DID
			0x31: {{0, []byte{0x71, 0x01, 0xFD, 0x12, 0x00}}}, // another routine
			0x27: {{0, []byte{0x67, 0x01}}},                   // no seed
		}))
		ctx := context.Background()
		if err := c.StartSession(ctx, ExtendedSession); err == nil {
			t.Error("short session response accepted")
		}
		if _, err := c.ReadDID(ctx, 0xFD00); err == nil {
			t.Error("response for another DID accepted")
		}
		if _, err := c.StartRoutine(ctx, 0xFD11, nil); err == nil {
			t.Error("response for another routine accepted")
		}
		if _, err := c.Do(ctx, nil); err == nil {
			t.Error("empty request sent")
		}
		if err := c.Unlock(ctx, 0x01, func(seed []byte) []byte { return seed }); err == nil {
			t.Error("SecurityAccess answer without a seed accepted")
		}
	})
}

func TestStartSessionAdoptsTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := scripted(t, bySID(map[byte][]reply{0x10: {{0, []byte{0x50, 0x03, 0x00, 0x19, 0x00, 0x64}}}}))
		if err := c.StartSession(context.Background(), ExtendedSession); err != nil {
			t.Fatal(err)
		}
		if p2, p2s := c.Timing(); p2 != 25*time.Millisecond || p2s != time.Second {
			t.Fatalf("P2 %v P2* %v, want 25ms and 1s", p2, p2s)
		}
	})
}

func TestSuppressesPositiveResponse(t *testing.T) {
	for _, c := range []struct {
		req  []byte
		want bool
	}{
		{[]byte{TesterPresent, 0x80}, true},
		{[]byte{DiagnosticSessionControl, 0x83}, true},
		{[]byte{RoutineControl, 0x81, 0xFD, 0x10}, true},
		{[]byte{TesterPresent, 0x00}, false},
		{[]byte{ReadDataByIdentifier, 0x80, 0x00}, false}, // a DID's high byte, not a sub-function
		{[]byte{TesterPresent}, false},
	} {
		if got := SuppressesPositiveResponse(c.req); got != c.want {
			t.Errorf("% x: %v, want %v", c.req, got, c.want)
		}
	}
}

// stepClock is a Clock that moves only when the test says so.
type stepClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*stepTimer
	armed  chan struct{} // signalled when a timer is set
}

type stepTimer struct {
	at   time.Time
	f    func()
	done bool
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	tm := &stepTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, tm)
	c.armed <- struct{}{}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		stopped := !tm.done
		tm.done = true
		return stopped
	}
}

// Advance moves the clock by d and fires the timers that are due.
func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, tm := range c.timers {
		if !tm.done && !tm.at.After(c.now) {
			tm.done = true
			due = append(due, tm.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		go f()
	}
}

// TestClientUsesItsClock: P2 runs on the injected clock: with no answer, Do gives up when that
// clock has moved P2 + margin on, and not before.
func TestClientUsesItsClock(t *testing.T) {
	clk := &stepClock{now: time.Unix(1000, 0), armed: make(chan struct{}, 100)}
	c := scripted(t, bySID(nil), WithClock(clk))
	errc := make(chan error, 1)
	go func() { _, err := c.Do(context.Background(), []byte{0x22, 0xFD, 0x00}); errc <- err }()
	<-clk.armed
	clk.Advance(59 * time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("gave up before P2 + margin on the clock: %v", err)
	default:
	}
	clk.Advance(time.Millisecond)
	if err := <-errc; !errors.Is(err, ErrTimeout) {
		t.Fatalf("Do: %v, want ErrTimeout", err)
	}
}

func TestClientDiscardsForeignAnswersOfTheDownloadAndDIDServices(t *testing.T) {
	// The server first sends an answer that belongs to another request of the same service, then
	// the right one: the client returns the right one and counts the other discarded.
	for _, c := range []struct {
		name          string
		req           []byte
		foreign, want []byte
	}{
		{"write-did", []byte{0x2E, 0x0E, 0x10, 1, 2}, []byte{0x6E, 0x0E, 0x20}, []byte{0x6E, 0x0E, 0x10}},
		{"read-did", []byte{0x22, 0x0E, 0x11}, []byte{0x62, 0x0E, 0x21, 9}, []byte{0x62, 0x0E, 0x11, 1}},
		{"request-download", []byte{0x34, 0x00, 0x24, 0, 0xFF, 0, 0, 0, 0x40}, []byte{0x76, 0x01}, []byte{0x74, 0x20, 0x0F, 0xFF}},
		{"transfer-data", []byte{0x36, 0x02, 1, 2}, []byte{0x76, 0x01}, []byte{0x76, 0x02}},
		{"request-transfer-exit", []byte{0x37}, []byte{0x76, 0x01}, []byte{0x77, 0, 1}},
		{"foreign negative", []byte{0x37}, []byte{0x7F, 0x36, 0x24}, []byte{0x77}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cl := scripted(t, func([]byte) []reply { return []reply{{0, c.foreign}, {0, c.want}} })
				got, err := cl.Do(context.Background(), c.req)
				if err != nil || !bytes.Equal(got, c.want) {
					t.Fatalf("Do(% x) = % x, %v; want % x", c.req, got, err, c.want)
				}
				if st := cl.Stats(); st != (Stats{Discarded: 1}) {
					t.Fatalf("stats %+v, want one discarded", st)
				}
			})
		})
	}
}
