package store

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/shekit/shekit/server/clm"
)

// put stores o in a change of its own.
func put(s *Store, o clm.Object) error {
	return s.CLM(context.Background(), func(tx clm.Tx) error { return tx.Put(o) })
}

// TestDeviceNamesAreUnique: the store refuses a second device of one owner and name with
// clm.ErrNameTaken and keeps the first; other kinds may share an alt.
func TestDeviceNamesAreUnique(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		first := clm.Object{Kind: "device", ID: "d1", Alt: "0000000001/edge", Owner: "0000000001", Value: []byte{1}}
		if err := put(s, first); err != nil {
			t.Fatal(err)
		}
		twin := clm.Object{Kind: "device", ID: "d2", Alt: "0000000001/edge", Owner: "0000000001", Value: []byte{2}}
		if err := put(s, twin); !errors.Is(err, clm.ErrNameTaken) {
			t.Fatalf("second device of one name: %v, want clm.ErrNameTaken", err)
		}
		err := s.CLM(context.Background(), func(tx clm.Tx) error { _, err := tx.Insert(twin); return err })
		if !errors.Is(err, clm.ErrNameTaken) {
			t.Fatalf("second device of one name, inserted: %v, want clm.ErrNameTaken", err)
		}
		err = s.View(context.Background(), func(tx clm.Tx) error {
			o, ok, err := tx.ByAlt("device", "0000000001/edge")
			if err == nil && (!ok || o.ID != "d1") {
				t.Errorf("by name: %+v %v, want d1", o, ok)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := put(s, clm.Object{Kind: "device", ID: "d1", Alt: "0000000001/edge", Owner: "0000000001", Value: []byte{3}}); err != nil {
			t.Errorf("rewriting the device itself: %v", err)
		}
		for _, id := range []string{"k1", "k2"} {
			if err := put(s, clm.Object{Kind: "key", ID: id, Alt: "d1", Owner: "0000000001", Value: []byte{1}}); err != nil {
				t.Errorf("two keys of one device: %v", err)
			}
		}
	})
}

// TestDuplicateDeviceNamesStillOpen: a database of an earlier version that holds two devices of
// one name opens (without the unique index: it cannot hold one), and once they are gone the
// next open creates it.
func TestDuplicateDeviceNamesStillOpen(t *testing.T) {
	type db struct {
		open func() (*Store, error)
		raw  *sql.DB
	}
	dbs := map[string]func(t *testing.T) db{"sqlite": func(t *testing.T) db {
		path := filepath.Join(t.TempDir(), "kms.db")
		return db{func() (*Store, error) { return OpenSQLite(path) }, rawOpen(t, "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")}
	}}
	if url := os.Getenv("SHEKIT_TEST_POSTGRES"); url != "" {
		dbs["postgres"] = func(t *testing.T) db {
			s, loc := openPostgresTemp(t, url)
			s.Close()
			return db{func() (*Store, error) { return OpenPostgres(context.Background(), loc) }, rawOpen(t, "pgx", loc)}
		}
	}
	for name, mk := range dbs {
		t.Run(name, func(t *testing.T) {
			d := mk(t)
			s, err := d.open()
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			// an earlier version's database: no index, two devices of one name
			mustExec(t, d.raw, `DROP INDEX clm_objects_device_name`)
			mustExec(t, d.raw, `INSERT INTO clm_objects (kind, id, alt, owner, value) VALUES
				('device', 'd1', '0000000001/edge', '0000000001', '1'), ('device', 'd2', '0000000001/edge', '0000000001', '2')`)
			s, err = d.open()
			if err != nil {
				t.Fatalf("open with duplicate device names: %v", err)
			}
			s.Close()
			mustExec(t, d.raw, `DELETE FROM clm_objects WHERE id = 'd2'`)
			if s, err = d.open(); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := put(s, clm.Object{Kind: "device", ID: "d3", Alt: "0000000001/edge", Owner: "0000000001", Value: []byte{3}}); !errors.Is(err, clm.ErrNameTaken) {
				t.Errorf("after the duplicates are gone: %v, want clm.ErrNameTaken", err)
			}
		})
	}
}

func rawOpen(t *testing.T, driver, dsn string) *sql.DB {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}
