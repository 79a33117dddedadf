package console

import (
	"bytes"
	"testing"
	"time"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/store"
)

// TestUIDRange: a hex prefix selects the UIDs from the prefix padded with zeros up to the
// prefix plus one; none above ff…; odd lengths; refusals.
func TestUIDRange(t *testing.T) {
	for _, c := range []struct {
		prefix   string
		from, to []byte
	}{
		{"", []byte{}, nil},
		{"0007", []byte{0x00, 0x07}, []byte{0x00, 0x08}},
		{"00070abc", []byte{0x00, 0x07, 0x0a, 0xbc}, []byte{0x00, 0x07, 0x0a, 0xbd}},
		{"0a1", []byte{0x0a, 0x10}, []byte{0x0a, 0x20}},
		{"0aF", []byte{0x0a, 0xf0}, []byte{0x0b, 0x00}},
		{"ff", []byte{0xff}, nil},
		{"1ff", []byte{0x1f, 0xf0}, []byte{0x20, 0x00}},
	} {
		from, to, ok := uidRange(c.prefix)
		if !ok || !bytes.Equal(from, c.from) || !bytes.Equal(to, c.to) || (to == nil) != (c.to == nil) {
			t.Errorf("uidRange(%q) = %x, %x, %v; want %x, %x", c.prefix, from, to, ok, c.from, c.to)
		}
	}
	for _, bad := range []string{"0g", "x", "0000000000000000000000000000000"} {
		if _, _, ok := uidRange(bad); ok {
			t.Errorf("uidRange(%q) accepted", bad)
		}
	}
}

// TestSearchPrefix: an EcuID search uses the UID digits after ClusterID and Model.
func TestSearchPrefix(t *testing.T) {
	got, err := searchPrefix("ecuid", "c100000000000000 4d000000 00070ABC")
	if err != nil || got != "00070abc" {
		t.Fatalf("EcuID prefix: %q, %v", got, err)
	}
	if _, err := searchPrefix("ecuid", "c1000000"); err == nil {
		t.Fatal("an EcuID prefix without UID digits was accepted")
	}
	if got, err := searchPrefix("uid", " 0007 "); err != nil || got != "0007" {
		t.Fatalf("UID prefix: %q, %v", got, err)
	}
}

// TestSessionsExpire: a session is found until its TTL has passed on the injected clock, then
// never again; ended sessions are gone.
func TestSessionsExpire(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &sessions{byID: map[string]session{}, ttl: time.Hour, now: func() time.Time { return now }}
	id, ses := s.start()
	id2, _ := s.start()
	if id == id2 || len(id) < 40 || ses.csrf == "" || ses.csrf == id {
		t.Fatalf("session IDs %q, %q and CSRF token %q are not distinct random values", id, id2, ses.csrf)
	}
	now = now.Add(59 * time.Minute)
	if got, ok := s.lookup(id); !ok || got.csrf != ses.csrf {
		t.Fatal("a session was lost before its TTL")
	}
	s.end(id2)
	if _, ok := s.lookup(id2); ok {
		t.Fatal("an ended session is still found")
	}
	now = now.Add(time.Minute)
	if _, ok := s.lookup(id); ok {
		t.Fatal("a session is found after its TTL")
	}
}

// TestCell: a CSV cell that a spreadsheet would read as a formula is quoted.
func TestCell(t *testing.T) {
	for in, want := range map[string]string{"=1+1": "'=1+1", "+x": "'+x", "-2": "'-2", "@a": "'@a", "supplier:001D": "supplier:001D", "": ""} {
		if got := cell(in); got != want {
			t.Errorf("cell(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTimeBound: a datetime-local value is the store's zone-less bound; others are refused.
func TestTimeBound(t *testing.T) {
	if got, err := timeBound("2026-12-01T18:05"); err != nil || got != "2026-12-01T18:05:00" {
		t.Fatalf("timeBound: %q, %v", got, err)
	}
	if _, err := timeBound("yesterday"); err == nil {
		t.Fatal("a bad time was accepted")
	}
}

// TestSlotState: a slot is issued while an issue awaits its report, failed when its newest
// report was a failure, injected when the newest was a success; when and by whom come from its
// newest entry; other slots' entries do not count.
func TestSlotState(t *testing.T) {
	inj := &kms.Injected{Counter: 3, Phase: kms.Dev}
	entries := []kms.AuditEntry{ // newest first
		{KeyID: 4, Action: "result:SecOCKey", Outcome: "OperationFailed", At: "t9", Actor: "other"},
		{KeyID: 1, Action: "sync", Outcome: "issued", At: "t8", Actor: "supplier:001D"},
		{KeyID: 1, Action: "result:EcuMasterKey", Outcome: "OperationFailed", At: "t7", Actor: "supplier:001D"},
		{KeyID: 1, Action: "result:EcuMasterKey", Outcome: "Success", At: "t5", Actor: "supplier:001D"},
	}
	for _, c := range []struct {
		name  string
		row   store.SlotRow
		state string
		count uint32
	}{
		{"failed after an injection", store.SlotRow{KeyID: 1, SlotState: kms.SlotState{LastCounter: 4, Injected: inj}}, "failed", 3},
		{"issued", store.SlotRow{KeyID: 1, SlotState: kms.SlotState{LastCounter: 5, Injected: inj, Pending: &kms.Issue{Counter: 5, Phase: kms.Dev}}}, "issued", 5},
	} {
		got := slotState(c.row, entries)
		if got.State != c.state || got.Counter != c.count || got.When != "t8" || got.Who != "supplier:001D" || got.KeyID != "1" {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
	got := slotState(store.SlotRow{KeyID: 1, SlotState: kms.SlotState{LastCounter: 3, Injected: inj}}, entries[3:])
	if got.State != "injected" || got.When != "t5" {
		t.Errorf("injected: %+v", got)
	}
}
