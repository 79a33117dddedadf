package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
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

// TestLogLevelWarnDropsRequestLines: -log-level warn logs no line per request (info does, see
// TestServerServesUntilStopped); an unknown level is refused.
func TestLogLevelWarnDropsRequestLines(t *testing.T) {
	var bad bytes.Buffer
	if code := run(context.Background(), []string{"-log-level", "loud", "-data", t.TempDir()}, io.Discard, &bad); code != 2 {
		t.Fatalf("-log-level loud: exit %d, want 2 (%s)", code, bad.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr syncBuffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-data", t.TempDir(), "-log-level", "warn"}, pw, &stderr)
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	url := strings.Fields(strings.TrimPrefix(line, "listening on "))[0]
	resp, err := http.Post(url+"/app/automotive/supplierKeyProvisioning", "application/json",
		strings.NewReader(`{"ProvisioningType":"EcuMasterKey","KeyID":"1","EcuID":"010203040506070801020304000300010000000000000000000002"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	if strings.Contains(stderr.String(), "kms request") {
		t.Fatalf("a request line at -log-level warn: %s", stderr.String())
	}
}
