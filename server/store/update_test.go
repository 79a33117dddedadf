package store

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/simulator/she"
)

// TestExhaustedCounterIsNotConsumed: an issue past 2^28-1 is refused and changes nothing: the
// slot keeps its last counter and pending issue, and the audit log only the first issue.
func TestExhaustedCounterIsNotConsumed(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		ctx := context.Background()
		c, _, err := s.Issue(ctx, kms.Issue{Slot: slot, Type: kms.EcuMasterKey, Phase: kms.Prod}, she.MaxCounter, "t")
		if err != nil || c != she.MaxCounter {
			t.Fatalf("issue at the last counter: %d %v", c, err)
		}
		if _, _, err := s.Issue(ctx, kms.Issue{Slot: slot, Type: kms.EcuMasterKey, Phase: kms.Dev}, 0, "t"); !errors.Is(err, kms.ErrCounterExhausted) {
			t.Fatalf("issue past the last counter: %v, want ErrCounterExhausted", err)
		}
		st, err := s.SlotState(ctx, slot)
		if err != nil || st.LastCounter != she.MaxCounter || st.Pending == nil || st.Pending.Counter != she.MaxCounter || st.Pending.Phase != kms.Prod {
			t.Fatalf("slot after the refusal: %+v %+v %v", st, st.Pending, err)
		}
		if e, err := s.Audit(ctx, 0, 10); err != nil || len(e) != 1 {
			t.Fatalf("audit %+v %v, want the first issue alone", e, err)
		}
	})
}

// TestFailedUpdateUndoesItselfOnly: an update that fails after writing (an audit entry, a row
// written by a statement of its own, then a statement the database refuses whatever it holds)
// leaves no trace, whatever batch it shared; the changes beside it commit.
func TestFailedUpdateUndoesItselfOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		ctx := context.Background()
		const n = 64
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i == n/2 {
					errs[i] = s.update(ctx, func(tx *sql.Tx) error {
						if err := s.audit(tx, "failing", "issue:EcuMasterKey", slot, 7, "issued", ""); err != nil {
							return err
						}
						// A write of its own (SQLite's writer holds audit entries until its commit).
						if _, err := tx.Exec(`INSERT INTO audit (at, actor, action, uid, key_id) VALUES ('t0', 'failing-write', 'x', 'u', 7)`); err != nil {
							return err
						}
						_, err := tx.Exec(`INSERT INTO slots (uid, key_id) VALUES (NULL, 0)`) // refused: uid NOT NULL
						return err
					})
					return
				}
				u := slot
				u.UID[13] = byte(i)
				_, _, errs[i] = s.Issue(ctx, kms.Issue{Slot: u, Type: kms.EcuMasterKey, Phase: kms.Prod}, 0, "t")
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if (i == n/2) != (err != nil) {
				t.Fatalf("change %d: %v", i, err)
			}
		}
		e, err := s.Audit(ctx, 0, 2*n)
		if err != nil || len(e) != n-1 {
			t.Fatalf("%d audit entries (%v), want the %d issues", len(e), err, n-1)
		}
		for _, a := range e {
			if a.Actor != "t" {
				t.Fatalf("the failed update's entry was committed: %+v", a)
			}
		}
	})
}

// TestSQLiteReadsArePrepared: the reader pool holds a prepared statement for every read the KMS
// and the CLM make outside a change, and a view reads through them.
func TestSQLiteReadsArePrepared(t *testing.T) {
	s := backends(t)["sqlite"](t)
	for _, q := range readStatements {
		if s.read[q] == nil {
			t.Errorf("statement %d not prepared on the reader pool", q)
		}
	}
	ctx := context.Background()
	if _, _, err := s.Issue(ctx, kms.Issue{Slot: slot, Type: kms.EcuMasterKey, Phase: kms.Prod}, 0, "t"); err != nil {
		t.Fatal(err)
	}
	if st, err := s.SlotState(ctx, slot); err != nil || st.LastCounter != 1 {
		t.Fatalf("slot %+v %v", st, err)
	}
}

// TestFailedCLMChangeUndoesItselfOnly: a CLM change that fails after writing leaves nothing,
// whatever batch it shared; the changes beside it commit, each once.
func TestFailedCLMChangeUndoesItselfOnly(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		ctx := context.Background()
		const n = 64
		refused := errors.New("refused after writing")
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.CLM(ctx, func(tx clm.Tx) error {
					if err := tx.Put(clm.Object{Kind: "key", ID: strconv.Itoa(i), Alt: "a", Owner: "o", Value: []byte{1}}); err != nil {
						return err
					}
					if i%8 == 0 {
						return refused
					}
					return tx.Audit(clm.AuditEntry{Actor: "clm:o", Action: "clm:key-create", Number: int64(i)})
				})
			}()
		}
		wg.Wait()
		var stored int
		err := s.View(ctx, func(tx clm.Tx) error {
			objs, err := tx.List("key")
			stored = len(objs)
			for _, o := range objs {
				if id, _ := strconv.Atoi(o.ID); id%8 == 0 {
					t.Errorf("the failed change %s was committed", o.ID)
				}
			}
			return err
		})
		for i, e := range errs {
			if (i%8 == 0) != errors.Is(e, refused) || (i%8 != 0 && e != nil) {
				t.Fatalf("change %d: %v", i, e)
			}
		}
		if err != nil || stored != n-n/8 {
			t.Fatalf("%d keys stored (%v), want %d", stored, err, n-n/8)
		}
		if e, err := s.Audit(ctx, 0, 2*n); err != nil || len(e) != n-n/8 {
			t.Fatalf("%d audit entries (%v), want %d: each change once", len(e), err, n-n/8)
		}
	})
}
