package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/shekit/shekit/server/clm"
)

// TestCLMChangeIsAuditedWithIt: a CLM change and its audit entry commit together or not at all,
// and a read-only transaction refuses both.
func TestCLMChangeIsAuditedWithIt(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		ctx := context.Background()
		entry := clm.AuditEntry{Actor: "clm:0000000001", Action: "clm:key-create", Device: "dev1", Number: 7, Message: "AES-128"}
		refused := errors.New("refused")
		err := s.CLM(ctx, func(tx clm.Tx) error {
			if err := tx.Put(clm.Object{Kind: "key", ID: "6", Owner: "0000000001", Value: []byte{1}}); err != nil {
				return err
			}
			if err := tx.Audit(entry); err != nil {
				return err
			}
			return refused
		})
		if !errors.Is(err, refused) {
			t.Fatalf("refused change: %v", err)
		}
		err = s.CLM(ctx, func(tx clm.Tx) error {
			if err := tx.Put(clm.Object{Kind: "key", ID: "7", Owner: "0000000001", Value: []byte{1}}); err != nil {
				return err
			}
			return tx.Audit(entry)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.View(ctx, func(tx clm.Tx) error { return tx.Audit(entry) }); err == nil {
			t.Fatal("a read-only transaction appended to the audit log")
		}
		got, err := s.Audit(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("audit %+v: want the committed change's entry only", got)
		}
		e := got[0]
		if e.Actor != entry.Actor || e.Action != entry.Action || e.Device != "dev1" || e.KeyNumber == nil || *e.KeyNumber != 7 ||
			e.Message != "AES-128" || e.UID != "" || e.Counter != nil || e.KeyID != 0 {
			t.Fatalf("audit entry %+v, want %+v", e, entry)
		}
		err = s.View(ctx, func(tx clm.Tx) error {
			if _, ok, err := tx.Get("key", "6"); ok || err != nil {
				return errors.New("the refused change's object is stored")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestDeviceNamesOfAnEarlierVersion: a device stored by an earlier version (owner and name
// joined by a NUL) is found by the current form (joined by a slash) once the database reopens.
func TestDeviceNamesOfAnEarlierVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kms.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	err = s.CLM(ctx, func(tx clm.Tx) error {
		return tx.Put(clm.Object{Kind: "device", ID: "d1", Alt: "0000000001\x00edge/01", Owner: "0000000001", Value: []byte{1}})
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err = OpenSQLite(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.View(ctx, func(tx clm.Tx) error {
		o, ok, err := tx.ByAlt("device", "0000000001/edge/01")
		if err != nil || !ok || o.ID != "d1" {
			return fmt.Errorf("device by its new key: %v %v %+v", ok, err, o)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEveryStatementPrepares: each dialect writes every statement of the store as its database
// reads it (SQLite prepares them on open; PostgreSQL only when first run).
func TestEveryStatementPrepares(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		for i, q := range s.sql {
			st, err := s.r.Prepare(q)
			if err != nil {
				t.Errorf("statement %d: %v\n%s", i, err, q)
				continue
			}
			st.Close()
		}
	})
}

// TestCLMReadModifyWriteLosesNothing: changes that read an object (by ID or by its second key),
// change it and write it back, many at once, lose none of their writes: a change's read locks
// the row until it ends. A read-only transaction reads the same object meanwhile (its read
// takes no lock, which PostgreSQL refuses in one).
func TestCLMReadModifyWriteLosesNothing(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func(t *testing.T) *Store) {
		s := open(t)
		ctx := context.Background()
		put := func(tx clm.Tx, n int) error {
			return tx.Put(clm.Object{Kind: "counter", ID: "c", Alt: "alt", Value: []byte(strconv.Itoa(n))})
		}
		if err := s.CLM(ctx, func(tx clm.Tx) error { return put(tx, 0) }); err != nil {
			t.Fatal(err)
		}
		const n = 64
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.CLM(ctx, func(tx clm.Tx) error {
					read := tx.Get
					if i%2 == 1 {
						read = func(kind, _ string) (clm.Object, bool, error) { return tx.ByAlt(kind, "alt") }
					}
					o, ok, err := read("counter", "c")
					if err != nil || !ok {
						return fmt.Errorf("read: %v %v", ok, err)
					}
					v, _ := strconv.Atoi(string(o.Value))
					return put(tx, v+1)
				})
				if err != nil {
					t.Error(err)
				}
				err = s.View(ctx, func(tx clm.Tx) error {
					_, _, err := tx.Get("counter", "c")
					if err == nil {
						_, _, err = tx.ByAlt("counter", "alt")
					}
					return err
				})
				if err != nil {
					t.Errorf("read-only: %v", err)
				}
			}()
		}
		wg.Wait()
		err := s.View(ctx, func(tx clm.Tx) error {
			o, _, err := tx.Get("counter", "c")
			if string(o.Value) != strconv.Itoa(n) {
				t.Errorf("counter %q after %d increments", o.Value, n)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
