package reference

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/kms"
)

// withDeadline answers every request within d: the handler runs, on the request's goroutine,
// with a context that ends after d (its cause errDeadline: store calls that honour it give up),
// and its answer is held until it is complete. When d passes first, lateAnswer answers at once
// (and closes the connection: the handler still occupies it) and the handler's answer, whenever
// it comes, is dropped. So a hung store (PostgreSQL paused, a disk that stalls) costs a client
// d, not its own timeout. A handler that streams (it flushes, as GET IDInfo does) is no longer
// held once it has flushed: its context still ends after d, which cuts the stream off. A
// handler's panic reaches net/http as it would without the deadline.
func withDeadline(h http.Handler, d time.Duration, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// One timer per request: it answers late (if the handler has not answered), then ends
		// the handler's context.
		ctx, cancel := context.WithCancelCause(r.Context())
		defer cancel(nil)
		held := heldWriters.Get().(*heldWriter)
		held.w = w
		late := time.AfterFunc(d, func() {
			if held.answerLate(func(late http.ResponseWriter) { lateAnswer(late, r) }) {
				log.Error("request deadline passed", "path", r.URL.Path, "deadline", d)
			}
			cancel(errDeadline)
		})
		returned := false
		defer func() {
			if !returned { // a panic: nothing more is answered; net/http takes the panic
				late.Stop()
				held.abandon()
			}
		}()
		h.ServeHTTP(held, r.WithContext(ctx))
		returned = true
		// The late answer has not started (it never will) or it is done or under way (finish
		// waits for it): only in the first case is held no longer shared.
		notLate := late.Stop()
		held.finish()
		if notLate {
			held.recycle()
		}
	})
}

// errDeadline ends a request's context when its deadline passes.
var errDeadline = fmt.Errorf("request deadline passed: %w", context.DeadlineExceeded)

// lateAnswer is the answer to a request whose deadline passed: each API's documented internal
// error (the KMS's INTERNAL envelope, the CLM's 1601 for SystemStatus and 1602 otherwise, the
// admin API's 500, 503 from /healthz).
func lateAnswer(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/app/"):
		kms.WriteInternalError(w)
	case strings.HasPrefix(path, "/SWCLM/"):
		code := 1602 // database access error
		if path == clm.PathSystemStatus {
			code = 1601 // database connection error
		}
		writeJSON(w, http.StatusInternalServerError, map[string]int{"errorcode": code})
	case strings.HasPrefix(path, "/admin/"):
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "the store did not answer in time"})
	default:
		http.Error(w, "store unreachable", http.StatusServiceUnavailable)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// heldWriters keeps held writers, their header maps and buffers, for requests to come.
var heldWriters = sync.Pool{New: func() any { return &heldWriter{header: http.Header{}} }}

// heldWriter holds a handler's answer until the handler returns, or until it flushes.
type heldWriter struct {
	mu        sync.Mutex
	w         http.ResponseWriter
	header    http.Header
	status    int
	body      bytes.Buffer
	done      bool // the handler's answer was sent, or the handler panicked
	dropped   bool // the late answer was sent instead
	streaming bool
}

func (hw *heldWriter) Header() http.Header { return hw.header }

func (hw *heldWriter) WriteHeader(status int) {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if hw.status == 0 {
		hw.status = status
	}
}

func (hw *heldWriter) Write(b []byte) (int, error) {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if hw.status == 0 {
		hw.status = http.StatusOK
	}
	if hw.dropped {
		return 0, http.ErrHandlerTimeout
	}
	if hw.streaming {
		return hw.w.Write(b)
	}
	return hw.body.Write(b)
}

// Flush starts streaming: what is held, and every later write, goes straight to the client.
func (hw *heldWriter) Flush() {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if hw.dropped {
		return
	}
	if !hw.streaming {
		hw.send(false) // the answer goes on: its length is not known
		hw.streaming = true
	}
	if f, ok := hw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// answerLate sends the late answer, unless the handler's answer was sent or is being streamed,
// and reports whether it did. The handler's answer is then dropped. The late answer is sent
// whole, with a Content-Length, and flushed, and the connection is closed after it: the handler
// still holds the request's goroutine.
func (hw *heldWriter) answerLate(answer func(http.ResponseWriter)) bool {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if hw.done || hw.streaming {
		return false
	}
	hw.dropped = true
	hw.body.Reset()
	late := &heldWriter{w: hw.w, header: http.Header{}}
	answer(late)
	late.header.Set("Connection", "close")
	late.header.Set("Content-Length", strconv.Itoa(late.body.Len()))
	late.send(false) // its Content-Length is set
	if f, ok := hw.w.(http.Flusher); ok {
		f.Flush()
	}
	return true
}

// finish sends the handler's answer, unless the late answer was sent or it has been streaming.
func (hw *heldWriter) finish() {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if !hw.dropped && !hw.streaming {
		hw.send(true)
	}
	hw.done = true
}

// abandon sends nothing more: the handler panicked.
func (hw *heldWriter) abandon() {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	hw.done = true
}

// send writes the held header and body to the client in one Write; complete (the whole answer
// is held), with a Content-Length (net/http sets it itself for a body shorter than its chunking
// threshold, without allocating). A stream's first part gets none: net/http would hold the
// stream to that length and refuse its later writes.
func (hw *heldWriter) send(complete bool) {
	h := hw.w.Header()
	for k, v := range hw.header {
		h[k] = v
	}
	if hw.status == 0 {
		hw.status = http.StatusOK
	}
	if _, ok := h["Content-Length"]; complete && !ok && hw.body.Len() >= chunkingThreshold {
		h["Content-Length"] = []string{strconv.Itoa(hw.body.Len())}
	}
	hw.w.WriteHeader(hw.status)
	hw.w.Write(hw.body.Bytes())
	hw.body.Reset()
}

// chunkingThreshold is the size from which net/http chunks an answer without a Content-Length.
const chunkingThreshold = 2048

// maxRecycledBody bounds the buffer a held writer keeps for the next request.
const maxRecycledBody = 64 << 10

// recycle returns hw to heldWriters once its request is over and nothing else holds it.
func (hw *heldWriter) recycle() {
	if hw.body.Cap() > maxRecycledBody {
		return
	}
	clear(hw.header)
	hw.body.Reset()
	hw.w, hw.status, hw.done, hw.dropped, hw.streaming = nil, 0, false, false, false
	heldWriters.Put(hw)
}
