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
// timeout.
func withDeadline(h http.Handler, d time.Duration, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		held := &heldWriter{header: http.Header{}}
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
			held.drop()
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

// heldWriter holds a handler's answer until the handler returns.
type heldWriter struct {
	mu      sync.Mutex
	header  http.Header
	status  int
	body    bytes.Buffer
	dropped bool
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
	return hw.body.Write(b)
}

// drop discards the answer: the deadline passed.
func (hw *heldWriter) drop() {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	hw.dropped = true
	hw.body.Reset()
}

// flush sends the held answer.
func (hw *heldWriter) flush(w http.ResponseWriter) {
	hw.mu.Lock()
	defer hw.mu.Unlock()
	for k, v := range hw.header {
		w.Header()[k] = v
	}
	if hw.status == 0 {
		hw.status = http.StatusOK
	}
	w.WriteHeader(hw.status)
	w.Write(hw.body.Bytes())
}
