package store

import (
	"context"
	"database/sql"
	"sync"
	"testing"

	"github.com/shekit/shekit/server/clm"
)

// TestDeviceByNameFindsDevicesOnly: a device is found by its owner and name in a change and in a
// view; an object of another kind with the same alt is not a device, and is found by its own kind.
func TestDeviceByNameFindsDevicesOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		ctx := context.Background()
		for _, o := range []clm.Object{
			{Kind: "device", ID: "d1", Alt: "0000000001/edge", Owner: "0000000001", Value: []byte{1}},
			{Kind: "key", ID: "7", Alt: "0000000001/lone", Owner: "0000000001", Value: []byte{2}},
		} {
			if err := put(s, o); err != nil {
				t.Fatal(err)
			}
		}
		check := func(tx clm.Tx) error {
			for _, c := range []struct {
				kind, alt, id string
			}{{"device", "0000000001/edge", "d1"}, {"device", "0000000001/lone", ""}, {"key", "0000000001/lone", "7"}, {"key", "0000000001/edge", ""}} {
				o, ok, err := tx.ByAlt(c.kind, c.alt)
				if err != nil {
					return err
				}
				if ok != (c.id != "") || o.ID != c.id || (ok && (o.Kind != c.kind || o.Owner != "0000000001")) {
					t.Errorf("ByAlt(%s, %s) = %+v %v, want ID %q", c.kind, c.alt, o, ok, c.id)
				}
			}
			return nil
		}
		if err := s.CLM(ctx, check); err != nil {
			t.Fatal(err)
		}
		if err := s.View(ctx, check); err != nil {
			t.Fatal(err)
		}
	})
}

// TestSQLiteWriterKeepsTemporariesInMemory: the writer's savepoint journal (every CLM change
// runs in a savepoint) is kept in memory, not written to a temporary file page by page.
func TestSQLiteWriterKeepsTemporariesInMemory(t *testing.T) {
	s := backends(t)["sqlite"](t)
	var mode int
	err := s.change(context.Background(), func(tx *sql.Tx) error {
		return tx.QueryRow(`PRAGMA temp_store`).Scan(&mode)
	})
	if err != nil || mode != 2 {
		t.Fatalf("temp_store %d (%v), want 2 (MEMORY)", mode, err)
	}
}

// TestSQLiteReaderPoolKeepsItsConnections: the connections that concurrent views opened stay
// open for the next views (none is closed as surplus, to be opened and prepared again).
func TestSQLiteReaderPoolKeepsItsConnections(t *testing.T) {
	s := backends(t)["sqlite"](t)
	const n = 8 // views open at once
	for range 2 {
		var all, done sync.WaitGroup
		all.Add(n)
		errs := make(chan error, n)
		for range n {
			done.Add(1)
			go func() {
				defer done.Done()
				errs <- s.View(context.Background(), func(tx clm.Tx) error {
					all.Done()
					all.Wait() // every view holds its connection at once
					_, _, err := tx.Get("id", "0000000001")
					return err
				})
			}()
		}
		done.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := s.r.Stats(); st.MaxIdleClosed != 0 || st.OpenConnections < n {
		t.Fatalf("reader pool: %d connections open, %d closed as surplus; want %d open, none closed", st.OpenConnections, st.MaxIdleClosed, n)
	}
}
