package uds

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
)

// script is a server that answers each request with the given responses, each after a delay.
type reply struct {
	after time.Duration
	msg   []byte
}

func scripted(t *testing.T, answers map[byte][]reply) *Client {
	t.Helper()
	h := vcan.NewHub()
	server := isotp.New(h.Connect(vcan.ExactID(0x7E0, false)), 0x7E8, 0x7E0)
	client := isotp.New(h.Connect(vcan.ExactID(0x7E8, false)), 0x7E0, 0x7E8)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			req, err := server.Receive(ctx)
			if err != nil {
				return
			}
			for _, r := range answers[req[0]] {
				time.Sleep(r.after)
				server.Send(ctx, r.msg)
			}
		}
	}()
	t.Cleanup(func() { cancel(); server.Close(); client.Close(); h.Close() })
	return NewClient(client, WithTiming(40*time.Millisecond, 150*time.Millisecond, 20*time.Millisecond))
}

func TestClientTiming(t *testing.T) {
	pending := []byte{0x7F, 0x31, 0x78}
	c := scripted(t, map[byte][]reply{
		// Answered within P2.
		0x3E: {{0, []byte{0x7E, 0x00}}},
		// Response pending twice, each within P2*, then the answer: P2* applies after 0x78.
		0x31: {{10 * time.Millisecond, pending}, {100 * time.Millisecond, pending}, {100 * time.Millisecond, []byte{0x71, 0x01, 0xFD, 0x11, 0x00}}},
		// Answered after P2 + margin: too late.
		0x22: {{100 * time.Millisecond, []byte{0x62, 0xFD, 0x01, 0x00}}},
		// Pending, then nothing within P2*.
		0x11: {{0, []byte{0x7F, 0x11, 0x78}}},
		// A stale answer to another service first, then the real one.
		0x27: {{0, []byte{0x62, 0xFD, 0x01, 0x00}}, {0, []byte{0x67, 0x01, 1, 2}}},
		// Negative.
		0x10: {{0, []byte{0x7F, 0x10, 0x12}}},
	})
	ctx := context.Background()
	if err := c.TesterPresent(ctx, false); err != nil {
		t.Fatal(err)
	}
	if rec, err := c.StartRoutine(ctx, 0xFD11, nil); err != nil || len(rec) != 1 {
		t.Fatalf("routine with two pendings: % x, %v", rec, err)
	}
	start := time.Now()
	if _, err := c.ReadDID(ctx, 0xFD01); !errors.Is(err, ErrTimeout) {
		t.Fatalf("late answer: %v", err)
	}
	if d := time.Since(start); d < 60*time.Millisecond || d > time.Second {
		t.Fatalf("gave up after %v, want P2 + margin = 60ms", d)
	}
	start = time.Now()
	if err := c.Reset(ctx, 0x01); !errors.Is(err, ErrTimeout) {
		t.Fatalf("pending then silence: %v", err)
	}
	if d := time.Since(start); d < 170*time.Millisecond {
		t.Fatalf("gave up after %v, want P2* + margin = 170ms", d)
	}
	time.Sleep(50 * time.Millisecond) // let the late 0x22 answer arrive and be skipped
	if resp, err := c.Do(ctx, []byte{0x27, 0x01}); err != nil || resp[0] != 0x67 {
		t.Fatalf("stale answer not skipped: % x, %v", resp, err)
	}
	var nr *NegativeResponseError
	if _, err := c.Do(ctx, []byte{0x10, 0x05}); !errors.As(err, &nr) || nr.NRC != SubFunctionNotSupported || nr.SID != 0x10 {
		t.Fatalf("negative response: %v", err)
	}
	if nr.Error() != "uds: service 0x10: negative response 0x12 subFunctionNotSupported" {
		t.Fatalf("error text %q", nr.Error())
	}
}

func TestClientRejectsMalformedResponses(t *testing.T) {
	c := scripted(t, map[byte][]reply{
		0x10: {{0, []byte{0x50, 0x03, 0x00}}},             // session response too short
		0x22: {{0, []byte{0x62, 0xF1, 0x90, 0x01}}},       // another DID
		0x31: {{0, []byte{0x71, 0x01, 0xFD, 0x12, 0x00}}}, // another routine
		0x27: {{0, []byte{0x67}}},                         // no level, no seed
	})
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
}

func TestStartSessionAdoptsTiming(t *testing.T) {
	c := scripted(t, map[byte][]reply{0x10: {{0, []byte{0x50, 0x03, 0x00, 0x19, 0x00, 0x64}}}})
	if err := c.StartSession(context.Background(), ExtendedSession); err != nil {
		t.Fatal(err)
	}
	if p2, p2s := c.Timing(); p2 != 25*time.Millisecond || p2s != time.Second {
		t.Fatalf("P2 %v P2* %v, want 25ms and 1s", p2, p2s)
	}
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
