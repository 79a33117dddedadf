package store

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/simulator/she"
)

func openTemp(t *testing.T) *SQLite {
	t.Helper()
	s, err := OpenSQLite(filepath.Join(t.TempDir(), "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var slot = kms.Slot{UID: she.UID{0x00, 0x03, 0x00, 0x01, 14: 2}, KeyID: she.MasterECUKey}

// TestConcurrentIssuesGetDistinctCounters: 300 concurrent issues on one slot get 300 distinct
// counters 1..300, and the writer grouped them into fewer commits.
func TestConcurrentIssuesGetDistinctCounters(t *testing.T) {
	s := openTemp(t)
	var commits, changes atomic.Int64
	s.OnCommit = func(n int, _ time.Duration) { commits.Add(1); changes.Add(int64(n)) }
	const n = 300
	counters := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, _, err := s.Issue(context.Background(), kms.Issue{Slot: slot, Type: kms.EcuMasterKey, Phase: kms.Dev}, 0, "test")
			if err != nil {
				t.Error(err)
			}
			counters[i] = int(c)
		}()
	}
	wg.Wait()
	sort.Ints(counters)
	for i, c := range counters {
		if c != i+1 {
			t.Fatalf("counters %v...: not 1..%d", counters[:min(i+3, n)], n)
		}
	}
	if changes.Load() != n || commits.Load() >= n {
		t.Fatalf("%d changes in %d commits: no grouping", changes.Load(), commits.Load())
	}
	t.Logf("%d changes in %d commits", changes.Load(), commits.Load())
}

// TestRefusedChangeRollsBackAlone: in one batch, a change that fails leaves no trace and does
// not disturb the others.
func TestRefusedChangeRollsBackAlone(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	other := kms.Slot{UID: slot.UID, KeyID: she.Key10}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, fn := range []func() error{
		func() error {
			_, _, err := s.Issue(ctx, kms.Issue{Slot: slot, Type: kms.EcuMasterKey}, 0, "t")
			return err
		},
		func() error { return s.Report(ctx, other, true, "", "t") }, // nothing issued: refused
		func() error {
			_, _, err := s.Issue(ctx, kms.Issue{Slot: other, Type: kms.SupplierSymmKey}, she.MaxCounter+1, "t")
			return err
		},
	} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn() }()
	}
	wg.Wait()
	if errs[0] != nil || !errors.Is(errs[1], kms.ErrNothingIssued) || !errors.Is(errs[2], kms.ErrCounterExhausted) {
		t.Fatalf("errors %v", errs)
	}
	if st, _ := s.SlotState(ctx, slot); st.LastCounter != 1 || st.Pending == nil {
		t.Fatalf("slot %+v", st)
	}
	if st, _ := s.SlotState(ctx, other); st.LastCounter != 0 || st.Pending != nil {
		t.Fatalf("refused changes left %+v", st)
	}
	entries, err := s.Audit(ctx, 0, 10)
	if err != nil || len(entries) != 1 || entries[0].Action != "issue:EcuMasterKey" || *entries[0].Counter != 1 {
		t.Fatalf("audit %+v %v", entries, err)
	}
}

func TestAuditIsAppendOnly(t *testing.T) {
	s := openTemp(t)
	s.Issue(context.Background(), kms.Issue{Slot: slot, Type: kms.EcuMasterKey}, 0, "t")
	if _, err := s.w.Exec(`UPDATE audit SET actor = 'someone else'`); err == nil {
		t.Fatal("audit entry updated")
	}
	if _, err := s.w.Exec(`DELETE FROM audit`); err == nil {
		t.Fatal("audit entry deleted")
	}
}

func TestSecretIsCreatedOnce(t *testing.T) {
	s := openTemp(t)
	var made atomic.Int64
	values := make([][]byte, 20)
	var wg sync.WaitGroup
	for i := range values {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.Secret(context.Background(), "k", func() ([]byte, error) { return []byte{byte(made.Add(1))}, nil })
			if err != nil {
				t.Error(err)
			}
			values[i] = v
		}()
	}
	wg.Wait()
	for _, v := range values {
		if string(v) != string(values[0]) {
			t.Fatal("concurrent first starts got different secrets")
		}
	}
	if made.Load() != 1 {
		t.Fatalf("secret created %d times", made.Load())
	}
}
