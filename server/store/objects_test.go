package store

import (
	"context"
	"errors"
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
		if e.Actor != entry.Actor || e.Action != entry.Action || e.UID != "dev1" || e.Counter == nil || *e.Counter != 7 || e.Message != "AES-128" {
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
