package reference

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/server/clm"
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

// TestDeadlineStreamsPastItsFirstFlush: a stream whose first flush carries more than net/http's
// chunking threshold goes on after it: the client reads every byte the handler wrote (the first
// part is not sent with a Content-Length that would cut the rest off).
func TestDeadlineStreamsPastItsFirstFlush(t *testing.T) {
	first, rest := strings.Repeat("a", 3*chunkingThreshold), strings.Repeat("b", 5000)
	writeErr := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, first)
		w.(http.Flusher).Flush()
		_, err := io.WriteString(w, rest)
		writeErr <- err
	})
	ts := httptest.NewServer(withDeadline(mux, time.Minute, slog.New(slog.DiscardHandler)))
	defer ts.Close()
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(ts.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != first+rest {
		t.Fatalf("read %d bytes (%v), want %d", len(body), err, len(first)+len(rest))
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("the write after the flush: %v", err)
	}
}

// TestServerStreamsEveryID: the assembled server (its request deadline on) answers GET IDInfo
// with every ID when they fill more than one of the CLM's pages: the answer is whole JSON.
func TestServerStreamsEveryID(t *testing.T) {
	s, err := New(context.Background(), Config{DataDir: t.TempDir(), CLMKeys: "ecdsa", CLMPool: -1, RequestTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	call := func(method, body string) (*http.Response, error) {
		req, _ := http.NewRequest(method, ts.URL+clm.PathIDInfo, strings.NewReader(body))
		req.SetBasicAuth(clm.LicenseUser, DemoLicense)
		req.Header.Set("Content-Type", "application/json")
		return ts.Client().Do(req)
	}
	const ids = 2*256 + 1 // two full pages and one more ID
	errs := make(chan error, ids)
	for w := range 8 {
		go func() {
			for i := w; i < ids; i += 8 {
				resp, err := call(http.MethodPost, `{"mode":"create","tenantid":"t1","alias":"DemoKey1"}`)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						err = fmt.Errorf("create: %s", resp.Status)
					}
				}
				errs <- err
			}
		}()
	}
	for range ids {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	resp, err := call(http.MethodGet, "")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer struct {
		ErrorCode int               `json:"errorcode"`
		KeyInfo   []json.RawMessage `json:"keyinfo"`
	}
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET IDInfo: %s (%v)", resp.Status, err)
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.ErrorCode != 0 || len(answer.KeyInfo) != ids {
		t.Fatalf("GET IDInfo: %d bytes, %d IDs (errorcode %d, %v), want %d IDs", len(body), len(answer.KeyInfo), answer.ErrorCode, err, ids)
	}
}
