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
	"time"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/console"
	"github.com/shekit/shekit/server/kek"
	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/store"
)

// Config describes a reference server.
type Config struct {
	DataDir string // holds kek.key and, with the embedded store, kms.db
	DB      string // "" for SQLite in DataDir, or a postgres:// URL
	// Registry is the operator's registry: used as it is, even when the store holds one edited
	// through the admin API. Nil: that stored one, else the demo registry.
	Registry *kms.Registry
	Auth     kms.Auth // default: none
	// AdminToken enables the admin API for callers presenting it (empty: disabled).
	AdminToken string
	// Console serves the web console at /console/, signed into with AdminToken (none without one).
	Console bool
	// CLMLicense is the CLM's license key (default DemoLicense); CLMKeys its key pairs, "rsa"
	// (default) or "ecdsa".
	CLMLicense string
	CLMKeys    string
	CLMCAKeys  string // the CA's key pair: "rsa" or "ecdsa" (default: CLMKeys)
	CLMPool    int    // RSA keys generated ahead (default 16)
	// RequestTimeout, when positive, bounds every request: past it, the API's documented
	// internal error answers (the store calls under way are cancelled).
	RequestTimeout time.Duration
	// RegistryRefresh is how often the stored registry is read for changes made through another
	// replica's admin API (default DefaultRegistryRefresh).
	RegistryRefresh time.Duration
	Log             *slog.Logger
}

// DemoLicense is the CLM license key when none is configured; the server command refuses it
// unless it listens on a loopback address.
const DemoLicense = "demo-license"

// registrySecret names the sealed, admin-edited registry in the store.
const registrySecret = "kms-registry"

// sealedRegistry keeps the registry sealed under the KEK in the store.
type sealedRegistry struct {
	st  *store.Store
	kek *kek.KEK
}

// SaveRegistry implements kms.RegistrySaver.
func (s sealedRegistry) SaveRegistry(ctx context.Context, r *kms.Registry) error {
	data, err := r.MarshalJSON()
	if err != nil {
		return err
	}
	return s.st.SetSecret(ctx, registrySecret, s.kek.Seal(registrySecret, data))
}

// load returns the stored registry, if there is one, and its sealed form.
func (s sealedRegistry) load(ctx context.Context) (*kms.Registry, []byte, error) {
	sealed, ok, err := s.st.LookupSecret(ctx, registrySecret)
	if err != nil || !ok {
		return nil, nil, err
	}
	reg, err := s.open(sealed)
	return reg, sealed, err
}

// open opens and reads a sealed registry.
func (s sealedRegistry) open(sealed []byte) (*kms.Registry, error) {
	data, err := s.kek.Open(registrySecret, sealed)
	if err != nil {
		return nil, err
	}
	return kms.ParseRegistry(data, "json")
}

// Server is an assembled reference server.
type Server struct {
	Store *store.Store
	KMS   *kms.Service
	CLM   *clm.Service
	mux   *http.ServeMux
	h     http.Handler
	watch *registryWatch
}

// New opens (or creates) the data directory and assembles the server.
func New(ctx context.Context, cfg Config) (*Server, error) {
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
	saver := sealedRegistry{st: st, kek: k}
	var seen []byte // the sealed registry in use, when it came from the store
	if cfg.Registry == nil {
		stored, sealed, err := saver.load(ctx)
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("stored registry: %w", err)
		}
		if cfg.Registry, seen = stored, sealed; stored == nil {
			cfg.Registry = kms.DemoRegistry()
		}
	}
	m := newMetrics()
	st.OnCommit = m.observeCommit
	s := &Server{Store: st, KMS: kms.NewService(st, roots, cfg.Registry, cfg.Log), mux: http.NewServeMux()}
	h := kms.NewHandler(s.KMS, cfg.Auth, cfg.Log)
	h.Observe = m.observeRequest
	h.Register(s.mux)
	if cfg.CLMLicense == "" {
		cfg.CLMLicense = DemoLicense
	}
	if cfg.RegistryRefresh <= 0 {
		cfg.RegistryRefresh = DefaultRegistryRefresh
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.watch = &registryWatch{saver: saver, svc: s.KMS, interval: cfg.RegistryRefresh, log: log}
	if err := s.watch.start(ctx, seen); err != nil {
		st.Close()
		return nil, fmt.Errorf("stored registry: %w", err)
	}
	admin := kms.NewAdmin(s.KMS, cfg.AdminToken, st, saver)
	admin.Refresh = s.watch.refresh
	admin.Register(s.mux)
	if s.CLM, err = clm.New(ctx, st, k, clm.Config{License: cfg.CLMLicense, KeyAlgorithm: cfg.CLMKeys, CAAlgorithm: cfg.CLMCAKeys, PoolSize: cfg.CLMPool}, cfg.Log); err != nil {
		s.watch.close()
		st.Close()
		return nil, err
	}
	s.CLM.Register(s.mux)
	if cfg.Console {
		console.New(console.Config{AdminToken: cfg.AdminToken, Admin: s.mux, KMS: s.KMS, Store: st, CLM: s.CLM,
			Metrics: m.reg, Log: log}).Register(s.mux)
	}
	s.mux.HandleFunc("GET /healthz", s.health)
	s.mux.Handle("GET /metrics", m.handler())
	if s.h = s.mux; cfg.RequestTimeout > 0 {
		s.h = withDeadline(s.mux, cfg.RequestTimeout, log)
	}
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.h }

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
	if s.watch != nil {
		s.watch.close()
	}
	if s.CLM != nil {
		s.CLM.Close()
	}
	return s.Store.Close()
}
