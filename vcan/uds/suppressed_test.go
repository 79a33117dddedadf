package uds

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestDoSuppressed: DoSuppressed returns what answers a request with the suppress bit within its
// wait, P2* after a response pending: nothing, a negative answer, or pendings and the final answer.
func TestDoSuppressed(t *testing.T) {
	pending := []byte{0x7F, 0x27, 0x78}
	final := []byte{0x67, 0x02}
	cases := []struct {
		name    string
		replies []reply
		want    [][]byte
	}{
		{"honoured", nil, nil},
		{"negative", []reply{{10 * time.Millisecond, []byte{0x7F, 0x27, 0x35}}}, [][]byte{{0x7F, 0x27, 0x35}}},
		{"pending then final", []reply{{10 * time.Millisecond, pending}, {100 * time.Millisecond, final}}, [][]byte{pending, final}},
		// The wait is 60 ms; a pending at 50 ms gives P2* + margin (170 ms) for the final answer.
		{"final after the wait, pending before it", []reply{{50 * time.Millisecond, pending}, {150 * time.Millisecond, final}}, [][]byte{pending, final}},
		{"positive despite the bit", []reply{{10 * time.Millisecond, final}}, [][]byte{final}},
		{"foreign discarded", []reply{{10 * time.Millisecond, []byte{0x7E, 0x00}}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := scripted(t, func([]byte) []reply { return tc.replies })
				start := time.Now()
				got, err := c.DoSuppressed(context.Background(), []byte{0x27, 0x82, 1, 2}, 60*time.Millisecond)
				if err != nil {
					t.Fatal(err)
				}
				// The final answer ends the wait: a session's S3 may be shorter than P2*.
				if n := len(tc.want); n > 0 && !isPending(tc.want[n-1]) {
					if d, at := time.Since(start), finalAt(tc.replies); d != at {
						t.Fatalf("returned after %v, want at the final answer (%v)", d, at)
					}
				}
				if len(got) != len(tc.want) {
					t.Fatalf("answers % x, want % x", got, tc.want)
				}
				for i := range got {
					if !bytes.Equal(got[i], tc.want[i]) {
						t.Fatalf("answer %d: % x, want % x", i, got[i], tc.want[i])
					}
				}
			})
		})
	}
}

// TestDoSuppressedLeavesALateAnswerToTheNextRequest: an answer after the final one is not
// DoSuppressed's; the request that follows discards it, and counts it.
func TestDoSuppressedLeavesALateAnswerToTheNextRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		final := []byte{0x67, 0x02}
		c := scripted(t, bySID(map[byte][]reply{
			0x27: {{10 * time.Millisecond, []byte{0x7F, 0x27, 0x78}}, {100 * time.Millisecond, final}, {20 * time.Millisecond, final}},
			0x3E: {{10 * time.Millisecond, []byte{0x7E, 0x00}}},
		}))
		got, err := c.DoSuppressed(context.Background(), []byte{0x27, 0x82, 1, 2}, 60*time.Millisecond)
		if err != nil || len(got) != 2 || !bytes.Equal(got[1], final) {
			t.Fatalf("DoSuppressed: % x, %v; want the pending and one final answer", got, err)
		}
		if c.Stats().Discarded != 0 {
			t.Fatalf("%d discarded before the next request", c.Stats().Discarded)
		}
		if resp, err := c.Do(context.Background(), []byte{0x3E, 0x00}); err != nil || !bytes.Equal(resp, []byte{0x7E, 0x00}) {
			t.Fatalf("the next request: % x, %v", resp, err)
		}
		if n := c.Stats().Discarded; n != 1 {
			t.Fatalf("%d discarded, want the late 67 02", n)
		}
	})
}

// TestDoSuppressedNeedsTheBit: a request without the suppress bit is refused before it is sent.
func TestDoSuppressedNeedsTheBit(t *testing.T) {
	c := NewClient(nil)
	if _, err := c.DoSuppressed(context.Background(), []byte{0x27, 0x02}, time.Millisecond); err == nil {
		t.Fatal("DoSuppressed sent 27 02, which has no suppress bit")
	}
}

// isPending reports whether msg is a response pending (7F xx 78), written apart from Match.
func isPending(msg []byte) bool { return len(msg) == 3 && msg[0] == 0x7F && msg[2] == 0x78 }

// finalAt is when the first reply that is not a response pending is sent (scripted sleeps
// each reply's after before sending it).
func finalAt(replies []reply) time.Duration {
	var at time.Duration
	for _, r := range replies {
		if at += r.after; !isPending(r.msg) {
			return at
		}
	}
	return -1
}
