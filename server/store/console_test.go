package store

import (
	"context"
	"encoding/hex"
	"testing"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/simulator/she"
)

func mustUID(t *testing.T, s string) she.UID {
	t.Helper()
	u, err := she.ParseUID(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestConsoleQueries: the console's ECU listing (UID range, keyset pages), an ECU's slots, and
// the audit log newest first with filters and keyset pages, on every backend.
func TestConsoleQueries(t *testing.T) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			s, ctx := open(t), context.Background()
			uids := []string{"0001001d00000000000000000000aa", "0001001d00000000000000000000bb", "0002001d000000000000000000000c"}
			for _, u := range uids {
				is := kms.Issue{Slot: kms.Slot{UID: mustUID(t, u), KeyID: she.MasterECUKey}, Type: kms.EcuMasterKey, Phase: kms.Dev}
				if _, _, err := s.Issue(ctx, is, 0, "supplier-"+u[28:]); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Report(ctx, kms.Slot{UID: mustUID(t, uids[0]), KeyID: she.MasterECUKey}, true, "", "station"); err != nil {
				t.Fatal(err)
			}
			from, _ := hex.DecodeString("0001")
			to, _ := hex.DecodeString("0002")
			got, err := s.ECUs(ctx, from, to, nil, 1)
			if err != nil || len(got) != 1 || hex.EncodeToString(got[0]) != uids[0] {
				t.Fatalf("first page: %x, %v", got, err)
			}
			got, err = s.ECUs(ctx, from, to, got[0], 10)
			if err != nil || len(got) != 1 || hex.EncodeToString(got[0]) != uids[1] {
				t.Fatalf("second page: %x, %v (want only %s)", got, err, uids[1])
			}
			first := mustUID(t, uids[0])
			slots, err := s.ECUSlots(ctx, first[:])
			if err != nil || len(slots) != 1 || slots[0].KeyID != 1 || slots[0].Injected == nil || slots[0].Injected.Counter != 1 || slots[0].Pending != nil {
				t.Fatalf("slots: %+v, %v", slots, err)
			}
			all, err := s.AuditNewest(ctx, AuditFilter{}, 10)
			if err != nil || len(all) != 4 || all[0].Action != "result:EcuMasterKey" || all[3].UID != uids[0] {
				t.Fatalf("newest first: %+v, %v", all, err)
			}
			page, err := s.AuditNewest(ctx, AuditFilter{Before: all[1].Seq}, 10)
			if err != nil || len(page) != 2 || page[0].Seq != all[2].Seq {
				t.Fatalf("page before %d: %+v, %v", all[1].Seq, page, err)
			}
			byUID, err := s.AuditNewest(ctx, AuditFilter{UID: uids[0], Action: "issue:EcuMasterKey"}, 10)
			if err != nil || len(byUID) != 1 || byUID[0].Actor != "supplier-aa" {
				t.Fatalf("by uid and action: %+v, %v", byUID, err)
			}
			byActor, err := s.AuditNewest(ctx, AuditFilter{Actor: "supplier-bb"}, 10)
			if err != nil || len(byActor) != 1 || byActor[0].UID != uids[1] {
				t.Fatalf("by actor: %+v, %v", byActor, err)
			}
			none, err := s.AuditNewest(ctx, AuditFilter{To: "2000-01-01T00:00:00"}, 10)
			if err != nil || len(none) != 0 {
				t.Fatalf("before 2000: %+v, %v", none, err)
			}
			after, err := s.AuditNewest(ctx, AuditFilter{From: "2000-01-01T00:00:00"}, 10)
			if err != nil || len(after) != 4 || after[0].Seq != all[0].Seq || after[3].Seq != all[3].Seq {
				t.Fatalf("after 2000, newest first: %+v, %v", after, err)
			}
			timePage, err := s.AuditNewest(ctx, AuditFilter{From: "2000-01-01T00:00:00", To: "2999-01-01T00:00:00", Before: all[1].Seq}, 1)
			if err != nil || len(timePage) != 1 || timePage[0].Seq != all[2].Seq {
				t.Fatalf("by time, the page before %d: %+v, %v", all[1].Seq, timePage, err)
			}
		})
	}
}
