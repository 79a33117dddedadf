package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestPprofOnItsOwnLoopbackListener: -pprof serves the profiles on a listener of its own, the
// API's listener does not serve them, and a non-loopback -pprof address is refused.
func TestPprofOnItsOwnLoopbackListener(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:6060", "example.com:6060"} {
		var stderr bytes.Buffer
		if code := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-data", t.TempDir(), "-pprof", addr}, io.Discard, &stderr); code != 2 ||
			!strings.Contains(stderr.String(), "-pprof") {
			t.Errorf("-pprof %s: exit %d, want 2 and a word about -pprof (%s)", addr, code, stderr.String())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-data", t.TempDir(), "-pprof", "127.0.0.1:0"}, pw, io.Discard)
	}()
	lines := bufio.NewReader(pr)
	api, err := lines.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	api = strings.Fields(strings.TrimPrefix(api, "listening on "))[0]
	prof, err := lines.ReadString('\n')
	if err != nil || !strings.HasPrefix(prof, "profiles on http://127.0.0.1:") {
		t.Fatalf("second line %q %v, want where the profiles are", prof, err)
	}
	go io.Copy(io.Discard, pr)
	prof = strings.TrimSpace(strings.TrimPrefix(prof, "profiles on "))
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(prof + "goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("pprof listener: %d %.200s", code, body)
	}
	if code, _ := get(api + "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("API listener serves /debug/pprof/: %d, want 404", code)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}
