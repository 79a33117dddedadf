package clm_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/store"
)

// backend is a kind of store the CLM's tests run on.
type backend struct {
	name string
	// fresh makes an empty database for the test and returns where it is.
	fresh func(t testing.TB) string
	// open opens a store on the database at loc (again and again, as replicas do).
	open func(t testing.TB, loc string) *store.Store
	// raw opens the database at loc with database/sql, for a test to change what the store holds.
	raw func(t testing.TB, loc string) *sql.DB
}

var databases atomic.Int64

// backends are the stores every CLM test runs on: SQLite always, PostgreSQL when
// SHEKIT_TEST_POSTGRES names a server (postgres://…; CI starts one).
func backends(t testing.TB) []backend {
	b := []backend{{
		name:  "sqlite",
		fresh: func(t testing.TB) string { return filepath.Join(t.TempDir(), "kms.db") },
		open: func(t testing.TB, loc string) *store.Store {
			s, err := store.OpenSQLite(loc)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		raw: func(t testing.TB, loc string) *sql.DB {
			return rawDB(t, "sqlite", "file:"+loc+"?_pragma=busy_timeout(10000)")
		},
	}}
	url := os.Getenv("SHEKIT_TEST_POSTGRES")
	if url == "" {
		t.Log("SHEKIT_TEST_POSTGRES is not set: the CLM is tested on SQLite only here")
		return b
	}
	return append(b, backend{
		name:  "postgres",
		fresh: func(t testing.TB) string { return freshPostgres(t, url) },
		open: func(t testing.TB, loc string) *store.Store {
			s, err := store.OpenPostgres(context.Background(), loc)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		raw: func(t testing.TB, loc string) *sql.DB { return rawDB(t, "pgx", loc) },
	})
}

// eachBackend runs test on every backend.
func eachBackend(t *testing.T, test func(t *testing.T, b backend)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { test(t, b) })
	}
}

func rawDB(t testing.TB, driver, dsn string) *sql.DB {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// freshPostgres creates a database of its own for the test on the server at url (dropped at the
// end of the test) and returns its URL.
func freshPostgres(t testing.TB, url string) string {
	t.Helper()
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("clm_test_%d_%d", time.Now().UnixNano(), databases.Add(1))
	if _, err := admin.ExecContext(context.Background(), "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.ExecContext(context.Background(), "DROP DATABASE "+name+" WITH (FORCE)")
		admin.Close()
	})
	u, _ := neturl.Parse(url)
	u.Path = "/" + name
	return u.String()
}

var errDown = errors.New("store unreachable")

// faultyStore is a store that can be made to fail: down fails every call (a store that cannot
// be reached), failSeq fails taking the next value of that sequence within a transaction,
// viewsLeft lets that many read transactions run before the store goes down. It
// also refuses to list every ID at once: the CLM reads them a page at a time.
type faultyStore struct {
	*store.Store
	down    atomic.Bool
	failSeq atomic.Value // string
	// viewsLeft, when positive, counts the read transactions that may still run; the one after
	// them fails.
	viewsLeft atomic.Int64
}

func (f *faultyStore) Ping(ctx context.Context) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.Ping(ctx)
}

func (f *faultyStore) CLM(ctx context.Context, fn func(clm.Tx) error) error {
	if f.down.Load() {
		return errDown
	}
	return f.Store.CLM(ctx, func(tx clm.Tx) error { return fn(faultyTx{tx, f}) })
}

func (f *faultyStore) Lookup(ctx context.Context, kind, id string) (clm.Object, bool, error) {
	if f.down.Load() {
		return clm.Object{}, false, errDown
	}
	return f.Store.Lookup(ctx, kind, id)
}

func (f *faultyStore) View(ctx context.Context, fn func(clm.Tx) error) error {
	if f.down.Load() {
		return errDown
	}
	if f.viewsLeft.Load() > 0 && f.viewsLeft.Add(-1) == 0 {
		f.down.Store(true)
	}
	return f.Store.View(ctx, func(tx clm.Tx) error { return fn(faultyTx{tx, f}) })
}

type faultyTx struct {
	clm.Tx
	f *faultyStore
}

var errSeq = errors.New("sequence refused")

func (t faultyTx) List(kind string) ([]clm.Object, error) {
	if kind == "id" {
		return nil, errors.New("every ID listed at once")
	}
	return t.Tx.List(kind)
}

func (t faultyTx) Next(seq string) (int64, error) {
	if s, _ := t.f.failSeq.Load().(string); s == seq {
		return 0, errSeq
	}
	return t.Tx.Next(seq)
}
