package console

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/store"
)

// pageSize is how many rows a listing page shows.
const pageSize = 50

// uidRange returns the UIDs a hex prefix selects, [from, to) (to nil: no upper bound), or false
// when the prefix is not hexadecimal or longer than a UID (30 digits).
func uidRange(prefix string) (from, to []byte, ok bool) {
	if len(prefix) > 30 {
		return nil, nil, false
	}
	if _, err := hex.DecodeString(prefix + strings.Repeat("0", len(prefix)%2)); err != nil {
		return nil, nil, false
	}
	digits := []byte(strings.ToLower(prefix))
	from, _ = hex.DecodeString(string(digits) + strings.Repeat("0", len(digits)%2))
	// to: the prefix plus one, as a number of len(prefix) hex digits; none past ff…f.
	next := append([]byte{}, digits...)
	for i := len(next) - 1; i >= 0; i-- {
		if next[i] != 'f' {
			next[i] = "0123456789abcdef"[strings.IndexByte("0123456789abcdef", next[i])+1]
			to, _ = hex.DecodeString(string(next) + strings.Repeat("0", len(next)%2))
			return from, to, true
		}
		next[i] = '0'
	}
	return from, nil, true
}

// searchPrefix returns the UID prefix a search names: a UID's prefix, or an EcuID's (ClusterID
// 16, Model 8, then the UID: the KMS keeps only UIDs, so an EcuID search uses its UID digits).
func searchPrefix(by, q string) (string, error) {
	q = strings.ToLower(strings.Join(strings.Fields(q), ""))
	if by == "ecuid" {
		if len(q) <= 24 {
			return "", fmt.Errorf("EcuID %q: give more than its 24 digits of ClusterID and Model, the KMS keeps only UIDs", q)
		}
		q = q[24:]
	}
	if _, _, ok := uidRange(q); !ok {
		return "", fmt.Errorf("%q: want up to 30 hex digits of a UID", q)
	}
	return q, nil
}

// ecuList is the ECU search page's data.
type ecuList struct {
	By, Q string
	UIDs  []string
	Next  string // the next page's URL, if any
}

func (c *Console) ecus(w http.ResponseWriter, r *http.Request, v *view) {
	q := r.URL.Query()
	data := ecuList{By: q.Get("by"), Q: q.Get("q")}
	v.Title, v.Nav, v.Data = "ECUs", "ecus", &data
	prefix, err := searchPrefix(data.By, data.Q)
	if err != nil {
		v.Error = err.Error()
		c.render(w, http.StatusBadRequest, "ecus", v)
		return
	}
	from, to, _ := uidRange(prefix)
	var after []byte
	if a := q.Get("after"); a != "" {
		if after, err = hex.DecodeString(a); err != nil || len(after) != 15 {
			http.Error(w, "after: want a UID of 30 hex digits", http.StatusBadRequest)
			return
		}
	}
	uids, err := c.cfg.Store.ECUs(r.Context(), from, to, after, pageSize+1)
	if err != nil {
		c.fail(w, "list ECUs", err)
		return
	}
	for i, u := range uids {
		if i == pageSize {
			data.Next = "/console/ecus?" + url.Values{"by": {data.By}, "q": {data.Q}, "after": {data.UIDs[i-1]}}.Encode()
			break
		}
		data.UIDs = append(data.UIDs, hex.EncodeToString(u))
	}
	c.render(w, http.StatusOK, "ecus", v)
}

// slotView is one key slot as the ECU page shows it.
type slotView struct {
	KeyID       string
	State       string // issued, injected, failed (the newest report), or "" (nothing yet)
	Counter     uint32 // the injected key's, else the newest handed out
	LastCounter uint32
	Phase       string
	When, Who   string // of the slot's newest audit entry
	SyncPending bool
}

// ecuView is the ECU page's data.
type ecuView struct {
	UID     string
	Slots   []slotView
	Entries []kms.AuditEntry
	More    string // the audit page of the ECU, when it has more entries than shown
}

// ecuAuditShown bounds the audit entries the ECU page shows (the audit page has them all).
const ecuAuditShown = 200

// slotState derives a slot's state from the store's row and the slot's newest audit entries.
func slotState(row store.SlotRow, entries []kms.AuditEntry) slotView {
	s := slotView{KeyID: strings.ToUpper(fmt.Sprintf("%X", row.KeyID)), LastCounter: row.LastCounter,
		Counter: row.LastCounter, SyncPending: row.SyncPending}
	if row.Injected != nil {
		s.State, s.Counter, s.Phase = "injected", row.Injected.Counter, string(row.Injected.Phase)
	}
	for _, e := range entries { // newest first
		if e.KeyID != row.KeyID {
			continue
		}
		if s.When == "" {
			s.When, s.Who = e.At, e.Actor
		}
		if strings.HasPrefix(e.Action, "result:") {
			if e.Outcome != "Success" && row.Pending == nil {
				s.State = "failed"
			}
			break
		}
	}
	if row.Pending != nil {
		s.State, s.Counter, s.Phase = "issued", row.Pending.Counter, string(row.Pending.Phase)
	}
	return s
}

func (c *Console) ecu(w http.ResponseWriter, r *http.Request, v *view) {
	uid, err := hex.DecodeString(r.PathValue("uid"))
	if err != nil || len(uid) != 15 {
		http.Error(w, "want a UID of 30 hex digits", http.StatusBadRequest)
		return
	}
	rows, err := c.cfg.Store.ECUSlots(r.Context(), uid)
	if err != nil {
		c.fail(w, "read the ECU's slots", err)
		return
	}
	data := ecuView{UID: hex.EncodeToString(uid)}
	data.Entries, err = c.cfg.Store.AuditNewest(r.Context(), store.AuditFilter{UID: data.UID}, ecuAuditShown+1)
	if err != nil {
		c.fail(w, "read the ECU's audit entries", err)
		return
	}
	if len(data.Entries) > ecuAuditShown {
		data.Entries, data.More = data.Entries[:ecuAuditShown], "/console/audit?"+url.Values{"uid": {data.UID}}.Encode()
	}
	for _, row := range rows {
		data.Slots = append(data.Slots, slotState(row, data.Entries))
	}
	if len(rows) == 0 && len(data.Entries) == 0 {
		http.Error(w, "the KMS knows no ECU "+data.UID, http.StatusNotFound)
		return
	}
	v.Title, v.Nav, v.Data = "ECU "+data.UID, "ecus", data
	c.render(w, http.StatusOK, "ecu", v)
}
