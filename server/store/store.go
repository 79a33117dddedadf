// Package store keeps the reference server's state: SQLite (pure Go, WAL, synchronous=FULL) as
// the embedded default, PostgreSQL for any number of stateless server replicas sharing one store.
// Counter allocation and every state change are single transactions. With SQLite, one writer
// commits every change waiting at that moment together (group commit): the KMS's and the CLM's
// changes refuse only before they write and need no savepoint (a batch in which one fails after
// writing runs again, each change in a savepoint); with
// PostgreSQL, each change is a transaction of its own and the server's WAL writer flushes
// concurrent commits together.
package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/simulator/she"
)

// Store is the reference server's store.
type Store struct {
	r    *sql.DB                   // reads
	read [statementCount]*sql.Stmt // reads prepared on r (nil: by their text)
	sql  [statementCount]string    // the statements as the dialect writes them
	// update runs fn in one committed transaction (returning fn's own error, with fn's effects
	// undone). fn refuses (returns a refusal) only before its first write and fails otherwise
	// only when the database does: SQLite's writer runs it without a savepoint.
	update func(ctx context.Context, fn func(*sql.Tx) error) error
	stmt   func(tx *sql.Tx, st statement) *sql.Stmt // a prepared statement, or nil
	// auditLater, when set, may keep an audit entry (stAudit's values) to insert later in tx,
	// before it commits, and reports whether it did (SQLite's writer).
	auditLater func(tx *sql.Tx, values ...any) bool
	// issue allocates a counter (Issue's work once its arguments are checked): SQLite's writer
	// runs consecutive issues of a batch together; PostgreSQL sends them in one pgx batch (pgIssuer).
	issue func(ctx context.Context, is kms.Issue, min uint32, actor string) (uint32, kms.SlotState, error)
	close func() error
	// sqlite is SQLite's writer (nil with PostgreSQL), which the store reaches through the
	// functions above; kept for the tests that hold the writer and look into its batches.
	sqlite *sqliteWriter
	// dollar: the database wants $n placeholders (PostgreSQL), not ?.
	dollar bool

	// OnCommit, when set before use, is called after every commit with the number of changes it
	// carried and its duration.
	OnCommit func(changes int, d time.Duration)
}

var _ kms.Store = (*Store)(nil)

// Close closes the store after the changes under way. Closing again does nothing.
func (s *Store) Close() error { return s.close() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.r.PingContext(ctx) }

func (s *Store) exec(tx *sql.Tx, q statement, args ...any) (sql.Result, error) {
	if st := s.stmt(tx, q); st != nil {
		return st.Exec(args...)
	}
	return tx.Exec(s.sql[q], args...)
}

func (s *Store) row(tx *sql.Tx, q statement, args ...any) *sql.Row {
	if st := s.stmt(tx, q); st != nil {
		return st.QueryRow(args...)
	}
	return tx.QueryRow(s.sql[q], args...)
}

// refusal is an update's refusal, returned before its first write: nothing to undo.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// refuse marks err as a refusal before any write.
func refuse(err error) error { return refusal{err} }

// unrefused returns the error a refusal carries, else err.
func unrefused(err error) error {
	if r, ok := err.(refusal); ok {
		return r.err
	}
	return err
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// audit appends an entry; it never holds a key.
func (s *Store) audit(tx *sql.Tx, actor, action string, slot kms.Slot, counter any, outcome, message string) error {
	values := []any{now(), actor, action, slot.UID.String(), int(slot.KeyID), counter, outcome, message, nil, nil}
	if s.auditLater != nil && s.auditLater(tx, values...) {
		return nil
	}
	_, err := s.exec(tx, stAudit, values...)
	return err
}

// scanSlot reads the slot query's row.
func scanSlot(row *sql.Row, slot kms.Slot) (kms.SlotState, error) {
	var st kms.SlotState
	var pc, ic sql.NullInt64
	var pt, pp, ip sql.NullString
	var sync int
	err := row.Scan(&st.LastCounter, &pc, &pt, &pp, &ic, &ip, &sync)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	if pc.Valid {
		st.Pending = &kms.Issue{Slot: slot, Type: kms.ProvisioningType(pt.String), Phase: kms.Phase(pp.String), Counter: uint32(pc.Int64)}
	}
	if ic.Valid {
		st.Injected = &kms.Injected{Counter: uint32(ic.Int64), Phase: kms.Phase(ip.String)}
	}
	st.SyncPending = sync != 0
	return st, nil
}

// SlotState implements kms.Store.
func (s *Store) SlotState(ctx context.Context, slot kms.Slot) (kms.SlotState, error) {
	if st := s.read[stSlot]; st != nil {
		return scanSlot(st.QueryRowContext(ctx, slot.UID[:], int(slot.KeyID)), slot)
	}
	return scanSlot(s.r.QueryRowContext(ctx, s.sql[stSlot], slot.UID[:], int(slot.KeyID)), slot)
}

// Issue implements kms.Store.
func (s *Store) Issue(ctx context.Context, is kms.Issue, min uint32, actor string) (counter uint32, master kms.SlotState, err error) {
	if min > she.MaxCounter {
		return 0, kms.SlotState{}, kms.ErrCounterExhausted
	}
	return s.issue(ctx, is, min, actor)
}

// Report implements kms.Store.
func (s *Store) Report(ctx context.Context, slot kms.Slot, success bool, message, actor string) error {
	return s.update(ctx, func(tx *sql.Tx) error {
		st, err := scanSlot(s.row(tx, stSlot, slot.UID[:], int(slot.KeyID)), slot)
		if err != nil {
			return err
		}
		if st.Pending == nil {
			return refuse(kms.ErrNothingIssued)
		}
		outcome, stmt := "OperationFailed", stDropPending
		if success {
			outcome, stmt = "Success", stInject
		}
		if _, err := s.exec(tx, stmt, slot.UID[:], int(slot.KeyID)); err != nil {
			return err
		}
		return s.audit(tx, actor, "result:"+string(st.Pending.Type), slot, st.Pending.Counter, outcome, message)
	})
}

// IssueSync implements kms.Store.
func (s *Store) IssueSync(ctx context.Context, slot kms.Slot, actor string) error {
	return s.update(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(tx, stSync, slot.UID[:], int(slot.KeyID)); err != nil {
			return err
		}
		return s.audit(tx, actor, "sync", slot, nil, "issued", "")
	})
}

// ReportSync implements kms.Store.
func (s *Store) ReportSync(ctx context.Context, slot kms.Slot, success bool, message, actor string) error {
	return s.update(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(tx, stSyncDone, slot.UID[:], int(slot.KeyID))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 { // nothing matched: nothing written
			return refuse(kms.ErrNothingIssued)
		}
		outcome := "OperationFailed"
		if success {
			outcome = "Success"
		}
		return s.audit(tx, actor, "sync-result", slot, nil, outcome, message)
	})
}

// Audit returns audit entries after seq, oldest first, at most limit.
func (s *Store) Audit(ctx context.Context, after int64, limit int) ([]kms.AuditEntry, error) {
	rows, err := s.r.QueryContext(ctx, s.sql[stAuditList], after, limit)
	if err != nil {
		return nil, err
	}
	return scanAuditEntries(rows)
}

// scanAuditEntries reads audit rows (seq, at, actor, action, uid, key_id, counter, outcome,
// message, device, keynumber) and closes them.
func scanAuditEntries(rows *sql.Rows) ([]kms.AuditEntry, error) {
	defer rows.Close()
	var out []kms.AuditEntry
	for rows.Next() {
		var e kms.AuditEntry
		var c, n sql.NullInt64
		if err := rows.Scan(&e.Seq, &e.At, &e.Actor, &e.Action, &e.UID, &e.KeyID, &c, &e.Outcome, &e.Message, &e.Device, &n); err != nil {
			return nil, err
		}
		if c.Valid {
			e.Counter = &c.Int64
		}
		if n.Valid {
			e.KeyNumber = &n.Int64
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Secret returns the stored value called name, storing create()'s result first when there is
// none; servers starting together all get the value that was stored first.
func (s *Store) Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	v, err := create()
	if err != nil {
		return nil, err
	}
	err = s.update(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(tx, stSecretPut, name, v); err != nil {
			return err
		}
		return s.row(tx, stSecretGet, name).Scan(&v)
	})
	return v, err
}

// SetSecret stores value under name, replacing what was there.
func (s *Store) SetSecret(ctx context.Context, name string, value []byte) error {
	return s.update(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(tx, stSecretSet, name, value)
		return err
	})
}

// LookupSecret returns the value stored under name, if any.
func (s *Store) LookupSecret(ctx context.Context, name string) ([]byte, bool, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, s.sql[stSecretGet], name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	return v, err == nil, err
}
