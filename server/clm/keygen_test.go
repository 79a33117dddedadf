package clm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a log destination the workers write to concurrently.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestKeyPoolWorkersSurviveErrors: a worker whose generation fails logs it and goes on, so the
// pool fills once generation works again.
func TestKeyPoolWorkersSurviveErrors(t *testing.T) {
	var logged syncBuffer
	g := newKeyGen("rsa", 2, 1, slog.New(slog.NewTextHandler(&logged, nil)))
	defer g.close()
	g.retry = time.Millisecond
	var mu sync.Mutex
	failures := 3
	g.make = func() (crypto.Signer, error) {
		mu.Lock()
		defer mu.Unlock()
		if failures > 0 {
			failures--
			return nil, errors.New("entropy exhausted")
		}
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) // fast, and any crypto.Signer will do
	}
	g.startPool()
	// Wait (with a wide margin for a loaded machine) for the pool to hold a key.
	for deadline := time.Now().Add(30 * time.Second); g.ready() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the pool is still empty after three failed generations; log:\n%s", logged.String())
		}
	}
	if n := strings.Count(logged.String(), "generation failed"); n != 3 {
		t.Fatalf("%d failures logged, want 3:\n%s", n, logged.String())
	}
}
