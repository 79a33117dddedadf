package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/simulator/she"
)

// backends are the stores every test runs against: SQLite always, PostgreSQL when
// SHEKIT_TEST_POSTGRES names a server (postgres://…; .ci/run starts one).
func backends(t *testing.T) map[string]func(t *testing.T) *Store {
	b := map[string]func(t *testing.T) *Store{"sqlite": func(t *testing.T) *Store {
		s, err := OpenSQLite(filepath.Join(t.TempDir(), "kms.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}}
	if url := os.Getenv("SHEKIT_TEST_POSTGRES"); url != "" {
		b["postgres"] = func(t *testing.T) *Store { s, _ := openPostgresTemp(t, url); return s }
	} else {
		t.Log("SHEKIT_TEST_POSTGRES is not set: PostgreSQL not tested here")
	}
	return b
}

// openPostgresTemp creates a database of its own for the test on the server at url and returns
// a store on it and its URL.
func openPostgresTemp(t *testing.T, url string) (*Store, string) {
	t.Helper()
	ctx := context.Background()
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("kms_test_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	u, _ := neturl.Parse(url)
	u.Path = "/" + name
	s, err := OpenPostgres(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		admin.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)")
		admin.Close()
	})
	return s, u.String()
}

// eachBackend runs test against every backend.
func eachBackend(t *testing.T, test func(t *testing.T, open func(t *testing.T) *Store)) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) { test(t, open) })
	}
}

var slot = kms.Slot{UID: she.UID{0x00, 0x03, 0x00, 0x01, 14: 2}, KeyID: she.MasterECUKey}

// TestConcurrentIssuesGetDistinctCounters: 300 concurrent issues on one slot get 300 distinct
// counters 1..300, and the writer grouped them into fewer commits.
func TestConcurrentIssuesGetDistinctCounters(t *testing.T) {
	eachBackend(t, testConcurrentIssues)
}

func testConcurrentIssues(t *testing.T, open func(t *testing.T) *Store) {
	s := open(t)
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
	if changes.Load() != n {
		t.Fatalf("%d changes committed, want %d", changes.Load(), n)
	}
	if commits.Load() >= n { // both stores group the issues waiting together
		t.Fatalf("%d changes in %d commits: no grouping", changes.Load(), commits.Load())
	}
	t.Logf("%d changes in %d commits", changes.Load(), commits.Load())
}

// TestRefusedChangeRollsBackAlone: in one batch, a change that fails leaves no trace and does
// not disturb the others.
func TestRefusedChangeRollsBackAlone(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) { testRefusedChange(t, open(t)) })
}

func testRefusedChange(t *testing.T, s *Store) {
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
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		ctx := context.Background()
		s.Issue(ctx, kms.Issue{Slot: slot, Type: kms.EcuMasterKey}, 0, "t")
		for _, q := range []string{`UPDATE audit SET actor = 'someone else'`, `DELETE FROM audit`} {
			if err := s.update(ctx, func(tx *sql.Tx) error { _, err := tx.Exec(q); return err }); err == nil {
				t.Fatalf("%s succeeded", q)
			}
		}
		if e, err := s.Audit(ctx, 0, 10); err != nil || len(e) != 1 || e[0].Actor != "t" {
			t.Fatalf("audit %+v %v", e, err)
		}
	})
}

func TestSecretIsCreatedOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) { testSecret(t, open(t)) })
}

func testSecret(t *testing.T, s *Store) {
	values := make([][]byte, 20)
	var wg sync.WaitGroup
	for i := range values {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.Secret(context.Background(), "k", func() ([]byte, error) { return []byte{byte(i)}, nil })
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
}

// TestTwoServersOnePostgres: two stores with pools of their own, as two server processes have,
// issue counters for the same slots at once; no counter is handed out twice.
func TestTwoServersOnePostgres(t *testing.T) {
	url := os.Getenv("SHEKIT_TEST_POSTGRES")
	if url == "" {
		t.Skip("SHEKIT_TEST_POSTGRES is not set")
	}
	a, aURL := openPostgresTemp(t, url)
	b, err := OpenPostgres(context.Background(), aURL)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	slots := []kms.Slot{slot, {UID: slot.UID, KeyID: she.Key1}, {UID: she.UID{9}, KeyID: she.MasterECUKey}}
	const perServer = 150
	got := make(chan [2]int, 2*perServer)
	var wg sync.WaitGroup
	for _, s := range []*Store{a, b} {
		for i := range perServer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := i % len(slots)
				c, _, err := s.Issue(context.Background(), kms.Issue{Slot: slots[k], Type: kms.EcuMasterKey}, 0, "t")
				if err != nil {
					t.Error(err)
				}
				got <- [2]int{k, int(c)}
			}()
		}
	}
	wg.Wait()
	close(got)
	seen := map[[2]int]bool{}
	for g := range got {
		if seen[g] {
			t.Fatalf("slot %d: counter %d handed out twice", g[0], g[1])
		}
		seen[g] = true
	}
	if len(seen) != 2*perServer {
		t.Fatalf("%d distinct counters, want %d", len(seen), 2*perServer)
	}
}

// queueWhileHeld holds SQLite's writer busy, calls queue(i) for i < n, each on a goroutine of
// its own, waiting until it is queued, and then lets the writer take them all in one batch.
func queueWhileHeld(t *testing.T, s *Store, n int, queue func(i int)) {
	release, held := make(chan struct{}), make(chan struct{})
	go s.update(context.Background(), func(*sql.Tx) error { close(held); <-release; return nil })
	<-held
	for i := range n {
		go queue(i)
		for len(s.sqlite.ops) != i+1 { // queued in this order
			runtime.Gosched()
		}
	}
	close(release)
}

// TestSQLiteBatchAuditsEachIssue: the issues committed in one batch get one audit entry each,
// with their own slot and counter, in the order they were queued (the batch's entries go in one
// insert of several rows, its issues in one upsert of several rows).
func TestSQLiteBatchAuditsEachIssue(t *testing.T) {
	s := backends(t)["sqlite"](t)
	ctx := context.Background()
	var commits []int
	s.OnCommit = func(changes int, _ time.Duration) { commits = append(commits, changes) }
	const n = 37 // 32 + 4 + 1 rows
	errs := make(chan error, n)
	queueWhileHeld(t, s, n, func(i int) {
		u := slot
		u.UID[14] = byte(i)
		_, _, err := s.Issue(ctx, kms.Issue{Slot: u, Type: kms.EcuMasterKey, Phase: kms.Prod}, uint32(100+i), "supplier:"+strconv.Itoa(i))
		errs <- err
	})
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	e, err := s.Audit(ctx, 0, 2*n)
	if err != nil || len(e) != n {
		t.Fatalf("%d audit entries (%v), want %d", len(e), err, n)
	}
	for i, a := range e {
		u := slot
		u.UID[14] = byte(i)
		if a.Actor != "supplier:"+strconv.Itoa(i) || a.UID != u.UID.String() || a.Counter == nil || *a.Counter != int64(100+i) ||
			a.Action != "issue:EcuMasterKey" || a.Outcome != "issued" || a.KeyID != 1 {
			t.Errorf("entry %d: %+v (counter %v)", i, a, a.Counter)
		}
	}
	if len(commits) != 2 || commits[1] != n {
		t.Fatalf("commits of %v changes, want the held one and then the %d issues together", commits, n)
	}
	for _, k := range []int{5, 2, 0} { // the last batch's upserts and inserts: 32, 4 and 1 rows
		if s.sqlite.bound[boundIssueRows+k] == nil || s.sqlite.bound[boundAuditRows+k] == nil {
			t.Errorf("no upsert or audit insert of %d rows in the batch", 1<<k)
		}
	}
}

// TestSQLiteBatchOfIssues: in one batch, two issues of one slot get its next two counters, an
// issue past she.MaxCounter is refused and writes nothing, and each issue learns the master key
// slot's injected key, the other issues of the batch notwithstanding.
func TestSQLiteBatchOfIssues(t *testing.T) {
	s := backends(t)["sqlite"](t)
	ctx := context.Background()
	ecu := func(b byte, id she.KeyID) kms.Slot { u := slot; u.UID[14], u.KeyID = b, id; return u }
	a, full, c := ecu(1, she.Key1), ecu(2, she.Key1), ecu(3, she.MasterECUKey)
	if _, _, err := s.Issue(ctx, kms.Issue{Slot: full, Type: kms.SecOCKey, Phase: kms.Prod}, she.MaxCounter, "t"); err != nil {
		t.Fatal(err)
	}
	master := ecu(1, she.MasterECUKey)
	if _, _, err := s.Issue(ctx, kms.Issue{Slot: master, Type: kms.EcuMasterKey, Phase: kms.Dev}, 41, "t"); err != nil {
		t.Fatal(err)
	}
	if err := s.Report(ctx, master, true, "", "t"); err != nil {
		t.Fatal(err)
	}
	issues := []kms.Slot{a, full, a, c, master}
	type got struct {
		counter uint32
		master  kms.SlotState
		err     error
	}
	results := make([]chan got, len(issues))
	for i := range results {
		results[i] = make(chan got, 1)
	}
	queueWhileHeld(t, s, len(issues), func(i int) {
		r, m, err := s.Issue(ctx, kms.Issue{Slot: issues[i], Type: kms.SecOCKey, Phase: kms.Prod}, 0, "b"+strconv.Itoa(i))
		results[i] <- got{r, m, err}
	})
	want := []uint32{1, 0, 2, 1, 42}
	for i, ch := range results {
		g := <-ch
		if i == 1 {
			if !errors.Is(g.err, kms.ErrCounterExhausted) {
				t.Errorf("issue past she.MaxCounter: %d %v", g.counter, g.err)
			}
			continue
		}
		if g.err != nil || g.counter != want[i] {
			t.Errorf("issue %d: counter %d (%v), want %d", i, g.counter, g.err, want[i])
		}
		if ecu1 := issues[i].UID == a.UID; ecu1 != (g.master.Injected != nil) ||
			ecu1 && (g.master.Injected.Counter != 41 || g.master.Injected.Phase != kms.Dev) {
			t.Errorf("issue %d: master key slot %+v", i, g.master.Injected)
		}
	}
	if st, err := s.SlotState(ctx, full); err != nil || st.LastCounter != she.MaxCounter || st.Pending.Counter != she.MaxCounter {
		t.Fatalf("the refused issue wrote: %+v %v", st, err)
	}
	e, err := s.Audit(ctx, 0, 100)
	if err != nil || len(e) != 3+4 {
		t.Fatalf("%d audit entries (%v), want 3 before the batch and its 4 issues", len(e), err)
	}
}

// TestSQLiteBatchKeepsQueueOrder: a batch's changes take effect in the order they were queued,
// its issues run together or not: an issue queued after a report of its slot allocates after
// the report (the report settles the counter it was given), and an issue queued after the
// report of its ECU's master key learns the key that report injected.
func TestSQLiteBatchKeepsQueueOrder(t *testing.T) {
	s := backends(t)["sqlite"](t)
	ctx := context.Background()
	ecu := func(b byte, id she.KeyID) kms.Slot { u := slot; u.UID[14], u.KeyID = b, id; return u }
	a, master, key4, other := ecu(1, she.Key1), ecu(2, she.MasterECUKey), ecu(2, she.Key1+3), ecu(3, she.Key1)
	if _, _, err := s.Issue(ctx, kms.Issue{Slot: a, Type: kms.SecOCKey, Phase: kms.Prod}, 0, "t"); err != nil {
		t.Fatal(err)
	}
	var key4Master kms.SlotState
	ops := []func() error{
		func() error { return s.Report(ctx, a, true, "", "t") },
		func() error {
			_, _, err := s.Issue(ctx, kms.Issue{Slot: a, Type: kms.SecOCKey, Phase: kms.Prod}, 0, "t")
			return err
		},
		func() error {
			_, _, err := s.Issue(ctx, kms.Issue{Slot: master, Type: kms.EcuMasterKey, Phase: kms.Prod}, 0, "t")
			return err
		},
		func() error { return s.Report(ctx, master, true, "", "t") },
		func() error {
			var err error
			_, key4Master, err = s.Issue(ctx, kms.Issue{Slot: key4, Type: kms.SecOCKey, Phase: kms.Prod}, 0, "t")
			return err
		},
		func() error {
			_, _, err := s.Issue(ctx, kms.Issue{Slot: other, Type: kms.SecOCKey, Phase: kms.Prod}, 0, "t")
			return err
		},
	}
	errs := make([]chan error, len(ops))
	for i := range errs {
		errs[i] = make(chan error, 1)
	}
	queueWhileHeld(t, s, len(ops), func(i int) { errs[i] <- ops[i]() })
	for i, ch := range errs {
		if err := <-ch; err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	st, err := s.SlotState(ctx, a)
	if err != nil || st.Injected == nil || st.Injected.Counter != 1 || st.Pending == nil || st.Pending.Counter != 2 {
		t.Errorf("slot a: injected %+v, pending %+v (%v); want 1 injected, 2 pending", st.Injected, st.Pending, err)
	}
	if key4Master.Injected == nil || key4Master.Injected.Counter != 1 {
		t.Errorf("the issue after its master key's report learnt the master key slot %+v, want counter 1 injected", key4Master.Injected)
	}
}

// TestSQLiteFailedChangeLeavesNoAuditEntry: a change that fails after writing its audit entry
// (the database failed under it) leaves no entry; the changes of its batch commit theirs.
func TestSQLiteFailedChangeLeavesNoAuditEntry(t *testing.T) {
	s := backends(t)["sqlite"](t)
	ctx := context.Background()
	ecu := func(b byte) kms.Slot { u := slot; u.UID[14] = b; return u }
	failed := errors.New("the database failed")
	errs := make([]chan error, 3)
	for i := range errs {
		errs[i] = make(chan error, 1)
	}
	queueWhileHeld(t, s, len(errs), func(i int) {
		if i == 1 {
			errs[i] <- s.update(ctx, func(tx *sql.Tx) error {
				if err := s.audit(tx, "failing", "sync", ecu(9), nil, "issued", ""); err != nil {
					return err
				}
				return failed
			})
			return
		}
		_, _, err := s.Issue(ctx, kms.Issue{Slot: ecu(byte(i)), Type: kms.EcuMasterKey, Phase: kms.Prod}, 0, "t")
		errs[i] <- err
	})
	for i, ch := range errs {
		if err := <-ch; (i == 1) != errors.Is(err, failed) {
			t.Fatalf("change %d: %v", i, err)
		}
	}
	e, err := s.Audit(ctx, 0, 10)
	if err != nil || len(e) != 2 || e[0].UID != ecu(0).UID.String() || e[1].UID != ecu(2).UID.String() {
		t.Fatalf("audit %+v (%v), want the two issues' entries only", e, err)
	}
}
