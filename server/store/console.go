package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/shekit/shekit/server/kms"
)

// consoleIndexes serve the web console's pages: an ECU's audit entries by UID, an actor's, newest
// first; entries by time.
const consoleIndexes = `
CREATE INDEX IF NOT EXISTS audit_uid_seq ON audit (uid, seq);
CREATE INDEX IF NOT EXISTS audit_actor_seq ON audit (actor, seq);
CREATE INDEX IF NOT EXISTS audit_at_seq ON audit (at, seq);`

// SlotRow is one key slot of one ECU as the store keeps it.
type SlotRow struct {
	UID   []byte
	KeyID int
	kms.SlotState
}

// ECUs returns the UIDs of ECUs with at least one slot whose UID is in [from, to) (to nil: no
// upper bound) and above after (nil: none), at most limit, in UID order (keyset paging on the primary key).
func (s *Store) ECUs(ctx context.Context, from, to, after []byte, limit int) ([][]byte, error) {
	q, args := `SELECT DISTINCT uid FROM slots WHERE uid >= ?`, []any{from}
	if to != nil {
		q, args = q+` AND uid < ?`, append(args, to)
	}
	if after != nil {
		q, args = q+` AND uid > ?`, append(args, after)
	}
	rows, err := s.r.QueryContext(ctx, s.placeholders(q+` ORDER BY uid LIMIT ?`), append(args, limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var uid []byte
		if err := rows.Scan(&uid); err != nil {
			return nil, err
		}
		out = append(out, uid)
	}
	return out, rows.Err()
}

// ECUSlots returns every slot the store keeps of one ECU, by KeyID.
func (s *Store) ECUSlots(ctx context.Context, uid []byte) ([]SlotRow, error) {
	rows, err := s.r.QueryContext(ctx, s.placeholders(`SELECT key_id, last_counter, pending_counter, pending_type, pending_phase,
		injected_counter, injected_phase, sync_pending FROM slots WHERE uid = ? ORDER BY key_id`), uid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SlotRow
	for rows.Next() {
		r := SlotRow{UID: uid}
		var pc, ic sql.NullInt64
		var pt, pp, ip sql.NullString
		var sync int
		if err := rows.Scan(&r.KeyID, &r.LastCounter, &pc, &pt, &pp, &ic, &ip, &sync); err != nil {
			return nil, err
		}
		if pc.Valid {
			r.Pending = &kms.Issue{Type: kms.ProvisioningType(pt.String), Phase: kms.Phase(pp.String), Counter: uint32(pc.Int64)}
		}
		if ic.Valid {
			r.Injected = &kms.Injected{Counter: uint32(ic.Int64), Phase: kms.Phase(ip.String)}
		}
		r.SyncPending = sync != 0
		out = append(out, r)
	}
	return out, rows.Err()
}

// AuditFilter selects audit entries; empty fields select all. From and To bound the entry's
// time (at >= From, at < To), written as RFC 3339 without a zone (UTC).
type AuditFilter struct {
	Actor, Action, UID string
	From, To           string
	Before             int64 // entries with a lower sequence number only (0: from the newest)
}

// AuditNewest returns at most limit audit entries matching f, newest first (keyset paging: the
// next page is Before the last entry's Seq). Without a time bound the order is by sequence
// number, on the primary key; with one it is by time, then sequence number, on the index of
// (at, seq), so that a bound far in the past costs no scan of what came after it.
func (s *Store) AuditNewest(ctx context.Context, f AuditFilter, limit int) ([]kms.AuditEntry, error) {
	var where []string
	var args []any
	add := func(cond string, v ...any) { where, args = append(where, cond), append(args, v...) }
	order := "seq DESC"
	byTime := f.From != "" || f.To != ""
	switch {
	case byTime && f.Before > 0:
		var at string
		err := s.r.QueryRowContext(ctx, s.placeholders(`SELECT at FROM audit WHERE seq = ?`), f.Before).Scan(&at)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil // no such entry: nothing is before it
		}
		if err != nil {
			return nil, err
		}
		add("(at, seq) < (?, ?)", at, f.Before)
	case f.Before > 0:
		add("seq < ?", f.Before)
	}
	if byTime {
		order = "at DESC, seq DESC"
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.UID != "" {
		add("uid = ?", f.UID)
	}
	if f.From != "" {
		add("at >= ?", f.From)
	}
	if f.To != "" {
		add("at < ?", f.To)
	}
	q := `SELECT seq, at, actor, action, uid, key_id, counter, COALESCE(outcome, ''), COALESCE(message, ''),
		COALESCE(device, ''), keynumber FROM audit`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := s.r.QueryContext(ctx, s.placeholders(q+" ORDER BY "+order+" LIMIT ?"), append(args, limit)...)
	if err != nil {
		return nil, err
	}
	return scanAuditEntries(rows)
}

// placeholders writes a statement with ? placeholders as the store's database reads them.
func (s *Store) placeholders(q string) string {
	if s.dollar {
		return dollarPlaceholders(q)
	}
	return q
}
