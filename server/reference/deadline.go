package reference

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/kms"
)

// withDeadline answers every request within d: the handler runs with a context that ends after
// d (so store calls that honour it give up), its answer is held until it is complete, and when d
// passes first, lateAnswer answers instead and the handler's answer, whenever it comes, is
// dropped. So a hung store (PostgreSQL paused, a disk that stalls) costs a client d, not its own
// timeout. A handler that streams (it flushes, as GET IDInfo does) is no longer held once it has
// flushed: its context still ends after d, which cuts the stream off.
func withDeadline(h http.Handler, d time.Duration, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		held := &heldWriter{header: http.Header{}, w: w}
		done, panicked := make(chan struct{}), make(chan any, 1)
		go func() {
			defer func() {
				if p := recover(); p != nil {
					panicked <- p
				}
			}()
			h.ServeHTTP(held, r.WithContext(ctx))
			close(done)
		}()
		select {
		case p := <-panicked:
			panic(p)
		case <-done:
			held.flush(w)
		case <-ctx.Done():
			select {
			case <-done: // answered just in time
				held.flush(w)
				return
			default:
			}
			if !held.drop() { // streaming: the answer is the handler's, cut off or not
				select {
				case <-done:
				case p := <-panicked:
					panic(p)
				}
				return
			}
			log.Error("request deadline passed", "path", r.URL.Path, "deadline", d)
			lateAnswer(w, r)
		}
	})
}

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

// heldWriter holds a handler's answer until the handler returns, or until it flushes.
type heldWriter struct {
	mu        sync.Mutex
	w         http.ResponseWriter
	header    http.Header
	status    int
	body      bytes.Buffer
	dropped   bool
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
		hw.send(hw.w)
		hw.streaming = true
	}
	if f, ok := hw.w.(http.Flusher); ok {
		f.Flush()
	}
}

// drop discards the answer, the deadline having passed, and says whether it did: a streaming
// answer is under way and cannot be replaced.
func (hw *heldWriter) drop() bool {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if hw.streaming {
		return false
	}
	hw.dropped = true
	hw.body.Reset()
	return true
}

// flush sends the held answer (nothing more when it has been streaming).
func (hw *heldWriter) flush(w http.ResponseWriter) {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	if !hw.streaming {
		hw.send(w)
	}
}

// send writes the held header and body to w.
func (hw *heldWriter) send(w http.ResponseWriter) {
	for k, v := range hw.header {
		w.Header()[k] = v
	}
	if hw.status == 0 {
		hw.status = http.StatusOK
	}
	w.WriteHeader(hw.status)
	w.Write(hw.body.Bytes())
	hw.body.Reset()
}
