// Package reference assembles the reference server: the data directory with its key-encryption
// key, the store, the root keys, and the HTTP APIs on one handler. The server command and the
// in-process servers of the tests and conformance suites are built with it.
package reference

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/shekit/shekit/server/kek"
	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/store"
)

// Config describes a reference server.
type Config struct {
	DataDir  string        // holds kek.key and, with the embedded store, kms.db
	DB       string        // "" for SQLite in DataDir, or a postgres:// URL
	Registry *kms.Registry // default: the demo registry
	Auth     kms.Auth      // default: none
	Log      *slog.Logger
}

// Server is an assembled reference server.
type Server struct {
	Store *store.Store
	KMS   *kms.Service
	mux   *http.ServeMux
}

// New opens (or creates) the data directory and assembles the server.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Registry == nil {
		cfg.Registry = kms.DemoRegistry()
	}
	if cfg.Auth == "" {
		cfg.Auth = kms.AuthNone
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	k, err := kek.Load(filepath.Join(cfg.DataDir, "kek.key"))
	if err != nil {
		return nil, err
	}
	var st *store.Store
	switch {
	case cfg.DB == "":
		st, err = store.OpenSQLite(filepath.Join(cfg.DataDir, "kms.db"))
	case strings.HasPrefix(cfg.DB, "postgres://"), strings.HasPrefix(cfg.DB, "postgresql://"):
		st, err = store.OpenPostgres(ctx, cfg.DB)
	default:
		return nil, fmt.Errorf("database %q: want a postgres:// URL, or nothing for SQLite", cfg.DB)
	}
	if err != nil {
		return nil, err
	}
	roots, err := kms.RootKeys(ctx, st, k)
	if err != nil {
		st.Close()
		return nil, err
	}
	m := newMetrics()
	st.OnCommit = m.observeCommit
	s := &Server{Store: st, KMS: kms.NewService(st, roots, cfg.Registry, cfg.Log), mux: http.NewServeMux()}
	h := kms.NewHandler(s.KMS, cfg.Auth, cfg.Log)
	h.Observe = m.observeRequest
	h.Register(s.mux)
	s.mux.HandleFunc("GET /healthz", s.health)
	s.mux.Handle("GET /metrics", m.handler())
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if err := s.Store.Ping(r.Context()); err != nil {
		http.Error(w, "store unreachable", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n"))
}

// Close closes the store after the changes under way.
func (s *Server) Close() error {
	if s == nil {
		return errors.New("reference: nil server")
	}
	return s.Store.Close()
}
