package reference

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestDeadlineAnswersForAHungHandler: a handler that never returns (a store that hangs and
// ignores its context) is answered, after the deadline, with each API's documented internal
// error; a handler that answers in time is passed through as it answered.
func TestDeadlineAnswersForAHungHandler(t *testing.T) {
	hang := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(http.ResponseWriter, *http.Request) { <-hang })
	mux.HandleFunc("GET /fast", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Fast", "yes")
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "answered")
	})
	ts := httptest.NewServer(withDeadline(mux, 200*time.Millisecond, slog.New(slog.DiscardHandler)))
	defer ts.Close()
	defer close(hang)                                 // a hung handler holds its request's goroutine (not its answer) until it returns
	client := &http.Client{Timeout: 30 * time.Second} // far beyond the deadline: an answer proves it
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"POST", "/app/automotive/supplierKeyProvisioning", 500, `{"ResultStatus":"OperationFailed","ResultReason":"INTERNAL","ResultMessage":"Internal error."}`},
		{"PUT", "/app/automotive/supplierKeySyncValue", 500, `{"ResultStatus":"OperationFailed","ResultReason":"INTERNAL","ResultMessage":"Internal error."}`},
		{"GET", "/SWCLM/v10/SystemStatus", 500, `{"errorcode":1601}`},
		{"POST", "/SWCLM/v10/CredInfo", 500, `{"errorcode":1602}`},
		{"PUT", "/admin/suppliers/001D", 500, `{"error":"the store did not answer in time"}`},
		{"GET", "/healthz", 503, "store unreachable"},
	} {
		req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader("{}"))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Errorf("%s %s: reading the late answer: %v", tc.method, tc.path, err)
		}
		if !resp.Close {
			t.Errorf("%s %s: the connection of a late answer stays open (its handler still holds it)", tc.method, tc.path)
		}
		if resp.StatusCode != tc.status || strings.TrimSpace(string(body)) != tc.body {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.body)
		}
		if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(tc.body, "{") && ct != "application/json" || json.Valid(body) != strings.HasPrefix(tc.body, "{") {
			t.Errorf("%s %s: Content-Type %q for %s", tc.method, tc.path, ct, body)
		}
	}
	resp, err := client.Get(ts.URL + "/fast")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || string(body) != "answered" || resp.Header.Get("X-Fast") != "yes" ||
		resp.ContentLength != int64(len("answered")) {
		t.Fatalf("a handler in time: %d %q %v", resp.StatusCode, body, resp.Header)
	}
}

// TestDeadlineLetsAStreamThrough: a handler that flushes streams: the client reads the first part
// while the handler is still running (it is not held), and when the deadline passes mid-stream the
// stream is cut off, never followed by a late error answer.
func TestDeadlineLetsAStreamThrough(t *testing.T) {
	firstRead, release := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /SWCLM/v10/IDInfo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"errorcode":0,"keyinfo":[`)
		w.(http.Flusher).Flush()
		<-firstRead // the client has the first part: it was not held
		<-r.Context().Done()
		<-release
		io.WriteString(w, `]}`)
	})
	ts := httptest.NewServer(withDeadline(mux, 300*time.Millisecond, slog.New(slog.DiscardHandler)))
	defer ts.Close()
	defer close(release)
	resp, err := http.Get(ts.URL + "/SWCLM/v10/IDInfo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, len(`{"errorcode":0,"keyinfo":[`))
	if _, err := io.ReadFull(resp.Body, first); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first part: %d %q %v", resp.StatusCode, first, err)
	}
	close(firstRead)
	release <- struct{}{} // the handler has seen its deadline pass
	rest, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(rest), "errorcode\":16") {
		t.Fatalf("a late error answer after a stream: %q", rest)
	}
}

// TestDeadlinePassesAPanicOn: a handler's panic reaches net/http (which drops the connection
// without an answer), before or after the deadline, and no late answer follows it.
func TestDeadlinePassesAPanicOn(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /panic", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	mux.HandleFunc("GET /app/late-panic", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "partial")
		<-r.Context().Done()
		for { // until the late answer has gone out: the handler's writes then fail
			if _, err := io.WriteString(w, "x"); err != nil {
				panic(http.ErrAbortHandler)
			}
			runtime.Gosched()
		}
	})
	ts := httptest.NewServer(withDeadline(mux, 200*time.Millisecond, slog.New(slog.DiscardHandler)))
	defer ts.Close()
	client := &http.Client{Timeout: 30 * time.Second}
	if resp, err := client.Get(ts.URL + "/panic"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Fatalf("a panicking handler answered %d %q", resp.StatusCode, body)
	}
	// After the deadline the late answer goes out first; the handler's panic then ends the
	// connection, the late answer already complete.
	resp, err := client.Get(ts.URL + "/app/late-panic")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(body), "INTERNAL") {
		t.Fatalf("late panic: %d %q %v", resp.StatusCode, body, err)
	}
}
