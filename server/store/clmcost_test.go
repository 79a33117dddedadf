package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/kms"
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

// TestSQLiteWriterKeepsTemporariesInMemory: the writer's savepoint journal (a guarded batch runs
// every change in a savepoint) is kept in memory, not written to a temporary file page by page.
func TestSQLiteWriterKeepsTemporariesInMemory(t *testing.T) {
	s := backends(t)["sqlite"](t)
	var mode int
	err := s.update(context.Background(), func(tx *sql.Tx) error {
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

// TestCLMRefusalsLeaveNothing: among concurrent CLM changes (on SQLite, batches of the writer),
// the CLM's refusal before any write, its refusal after a write, and another error before any
// write each leave nothing and are answered with their own error; the other changes commit,
// each once.
func TestCLMRefusalsLeaveNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		ctx := context.Background()
		const n = 96
		refusal := &clm.Error{Code: 1501, Status: 404, Detail: "refused"}
		other := errors.New("not a refusal")
		want := func(i int) error { return []error{nil, refusal, refusal, other}[i%4] }
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.CLM(ctx, func(tx clm.Tx) error {
					if _, _, err := tx.Get("key", "0"); err != nil {
						return err
					}
					if i%4 == 1 || i%4 == 3 { // before any write
						return want(i)
					}
					if err := tx.Put(clm.Object{Kind: "key", ID: strconv.Itoa(i), Alt: "a", Owner: "o", Value: []byte{1}}); err != nil {
						return err
					}
					if err := tx.Audit(clm.AuditEntry{Actor: "clm:o", Action: "clm:key-create", Number: int64(i)}); err != nil {
						return err
					}
					return want(i) // after writing: a refusal for i%4 == 2
				})
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != want(i) {
				t.Errorf("change %d: %v, want %v", i, err, want(i))
			}
		}
		var stored []clm.Object
		if err := s.View(ctx, func(tx clm.Tx) (err error) { stored, err = tx.List("key"); return err }); err != nil {
			t.Fatal(err)
		}
		for _, o := range stored {
			if id, _ := strconv.Atoi(o.ID); id%4 != 0 {
				t.Errorf("the refused change %s was committed", o.ID)
			}
		}
		if len(stored) != n/4 {
			t.Errorf("%d keys stored, want %d", len(stored), n/4)
		}
		if e, err := s.Audit(ctx, 0, 2*n); err != nil || len(e) != n/4 {
			t.Errorf("%d audit entries (%v), want %d: each committed change once", len(e), err, n/4)
		}
	})
}

// TestLookupReadsOneObject: Lookup finds a stored object by kind and ID, outside a transaction,
// and reports a missing one (another kind's object of the same ID is not it).
func TestLookupReadsOneObject(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		ctx := context.Background()
		if err := put(s, clm.Object{Kind: "id", ID: "0000000001", Alt: "tenant", Owner: "0000000001", Value: []byte{1, 2}}); err != nil {
			t.Fatal(err)
		}
		o, ok, err := s.Lookup(ctx, "id", "0000000001")
		if err != nil || !ok || o.Kind != "id" || o.ID != "0000000001" || o.Alt != "tenant" || o.Owner != "0000000001" || string(o.Value) != "\x01\x02" {
			t.Fatalf("Lookup: %+v %v %v", o, ok, err)
		}
		for _, k := range [][2]string{{"id", "0000000002"}, {"device", "0000000001"}} {
			if o, ok, err := s.Lookup(ctx, k[0], k[1]); err != nil || ok {
				t.Errorf("Lookup(%s, %s): %+v %v %v, want none", k[0], k[1], o, ok, err)
			}
		}
	})
}

// TestCLMAuditEntriesInOrder: a change's audit entries (here three: written two to a statement,
// then one) are all in the log, in the order the change made them, with the CLM's columns.
func TestCLMAuditEntriesInOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		ctx := context.Background()
		in := []clm.AuditEntry{
			{Actor: "clm:0000000001", Action: "clm:device-register", Device: "dev1"},
			{Actor: "clm:0000000001", Action: "clm:key-create", Device: "dev1", Number: 7, Message: "AES-128"},
			{Actor: "clm:0000000002", Action: "clm:id-delete"},
		}
		err := s.CLM(ctx, func(tx clm.Tx) error {
			for _, e := range in {
				if err := tx.Audit(e); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Audit(ctx, 0, 10)
		if err != nil || len(got) != len(in) {
			t.Fatalf("%d entries (%v), want %d", len(got), err, len(in))
		}
		for i, g := range got {
			e := in[i]
			number := g.KeyNumber != nil && *g.KeyNumber == e.Number || g.KeyNumber == nil && e.Number == 0
			if g.Actor != e.Actor || g.Action != e.Action || g.Device != e.Device || g.Message != e.Message || !number ||
				g.UID != "" || g.KeyID != 0 || g.Counter != nil || g.Outcome != "done" || g.At == "" {
				t.Errorf("entry %d: %+v, want %+v", i, g, e)
			}
		}
	})
}

// TestCLMSequences: each sequence counts from 1 on its own, also when changes take its values
// at once, and a failed change's values are not consumed.
func TestCLMSequences(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		ctx := context.Background()
		next := func(seq string) (v int64, err error) {
			err = s.CLM(ctx, func(tx clm.Tx) error { v, err = tx.Next(seq); return err })
			return v, err
		}
		const n = 40
		var wg sync.WaitGroup
		got := make([]int64, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := next("keynumber")
				if err != nil {
					t.Error(err)
				}
				got[i] = v
			}()
		}
		wg.Wait()
		slices.Sort(got)
		for i, v := range got {
			if v != int64(i+1) {
				t.Fatalf("values %v, want 1..%d", got, n)
			}
		}
		err := s.CLM(ctx, func(tx clm.Tx) error {
			if _, err := tx.Next("keynumber"); err != nil {
				return err
			}
			return errors.New("undone")
		})
		if err == nil {
			t.Fatal("the failed change committed")
		}
		if v, err := next("keyid"); err != nil || v != 1 {
			t.Errorf("another sequence: %d %v, want 1", v, err)
		}
		if v, err := next("keynumber"); err != nil || v != n+1 {
			t.Errorf("after the failed change: %d %v, want %d", v, err, n+1)
		}
	})
}

// TestSQLiteBatchAuditsInQueueOrder: the audit entries of one batch's changes, the KMS's and the
// CLM's, follow the order the changes were queued in (a CLM change makes two entries here).
func TestSQLiteBatchAuditsInQueueOrder(t *testing.T) {
	s := backends(t)["sqlite"](t)
	ctx := context.Background()
	errs := make([]chan error, 4)
	for i := range errs {
		errs[i] = make(chan error, 1)
	}
	queueWhileHeld(t, s, len(errs), func(i int) {
		if i%2 == 1 {
			errs[i] <- s.CLM(ctx, func(tx clm.Tx) error {
				if err := tx.Audit(clm.AuditEntry{Actor: "clm:" + strconv.Itoa(i), Action: "clm:key-create", Device: "d", Number: 1}); err != nil {
					return err
				}
				return tx.Audit(clm.AuditEntry{Actor: "clm:" + strconv.Itoa(i), Action: "clm:key-update", Device: "d", Number: 2})
			})
			return
		}
		u := slot
		u.UID[14] = byte(i)
		_, _, err := s.Issue(ctx, kms.Issue{Slot: u, Type: kms.EcuMasterKey, Phase: kms.Prod}, 0, "kms:"+strconv.Itoa(i))
		errs[i] <- err
	})
	for i, ch := range errs {
		if err := <-ch; err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	e, err := s.Audit(ctx, 0, 10)
	var got []string
	for _, a := range e {
		got = append(got, a.Actor+" "+a.Action)
	}
	want := []string{"kms:0 issue:EcuMasterKey", "clm:1 clm:key-create", "clm:1 clm:key-update",
		"kms:2 issue:EcuMasterKey", "clm:3 clm:key-create", "clm:3 clm:key-update"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("audit in seq order %q (%v), want %q", got, err, want)
	}
}
