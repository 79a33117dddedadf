// Package store keeps the reference server's state: SQLite (pure Go, WAL, synchronous=FULL) as
// the embedded default. Every change is a transaction; concurrent changes are committed together
// (group commit), so that durability costs one fsync per batch, not per request.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/simulator/she"
)

const schema = `
CREATE TABLE IF NOT EXISTS slots (
	uid              BLOB    NOT NULL,
	key_id           INTEGER NOT NULL,
	last_counter     INTEGER NOT NULL DEFAULT 0,
	pending_counter  INTEGER,
	pending_type     TEXT,
	pending_phase    TEXT,
	injected_counter INTEGER,
	injected_phase   TEXT,
	sync_pending     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (uid, key_id)
);
CREATE TABLE IF NOT EXISTS audit (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	at      TEXT    NOT NULL,
	actor   TEXT    NOT NULL,
	action  TEXT    NOT NULL,
	uid     TEXT    NOT NULL,
	key_id  INTEGER NOT NULL,
	counter INTEGER,
	outcome TEXT,
	message TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'audit is append-only'); END;
CREATE TABLE IF NOT EXISTS clusters (
	cluster_id BLOB    NOT NULL,
	key_id     INTEGER NOT NULL,
	generation INTEGER NOT NULL,
	PRIMARY KEY (cluster_id, key_id)
);
CREATE TABLE IF NOT EXISTS secrets (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);`

// maxBatch bounds how many changes one commit carries.
const maxBatch = 512

// The statements of the writer, prepared once on its connection (parsing SQL is the largest cost
// of a small change otherwise).
var writerSQL = map[string]string{
	"savepoint":   `SAVEPOINT change`,
	"rollback-to": `ROLLBACK TO change`,
	"release":     `RELEASE change`,
	"slot": `SELECT last_counter, pending_counter, pending_type, pending_phase, injected_counter, injected_phase, sync_pending
		FROM slots WHERE uid = ? AND key_id = ?`,
	"issue": `INSERT INTO slots (uid, key_id, last_counter, pending_counter, pending_type, pending_phase)
		VALUES (?,?,?,?,?,?) ON CONFLICT (uid, key_id) DO UPDATE SET last_counter = excluded.last_counter,
		pending_counter = excluded.pending_counter, pending_type = excluded.pending_type, pending_phase = excluded.pending_phase`,
	"inject": `UPDATE slots SET injected_counter = pending_counter, injected_phase = pending_phase,
		pending_counter = NULL, pending_type = NULL, pending_phase = NULL WHERE uid = ? AND key_id = ?`,
	"drop-pending": `UPDATE slots SET pending_counter = NULL, pending_type = NULL, pending_phase = NULL WHERE uid = ? AND key_id = ?`,
	"sync":         `UPDATE slots SET sync_pending = 1 WHERE uid = ? AND key_id = ?`,
	"sync-done":    `UPDATE slots SET sync_pending = 0 WHERE uid = ? AND key_id = ? AND sync_pending = 1`,
	"audit":        `INSERT INTO audit (at, actor, action, uid, key_id, counter, outcome, message) VALUES (?,?,?,?,?,?,?,?)`,
	"secret-get":   `SELECT value FROM secrets WHERE name = ?`,
	"secret-put":   `INSERT INTO secrets (name, value) VALUES (?, ?)`,
}

// SQLite is the embedded store.
type SQLite struct {
	w, r      *sql.DB              // one writer connection, a pool of readers
	stmt      map[string]*sql.Stmt // writerSQL, prepared on w
	ops       chan *op
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error

	// OnCommit, when set before use, is called after every commit with the batch size and the
	// commit's duration.
	OnCommit func(changes int, d time.Duration)
}

var _ kms.Store = (*SQLite)(nil)

// op is one change waiting for the writer.
type op struct {
	fn  func(*sql.Tx) error
	err chan error
	ctx context.Context
}

// OpenSQLite opens (creating if needed) the database at path.
func OpenSQLite(path string) (*SQLite, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	if _, err := w.Exec(schema); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: create schema: %w", err)
	}
	r, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&mode=ro")
	if err != nil {
		w.Close()
		return nil, err
	}
	s := &SQLite{w: w, r: r, ops: make(chan *op, 4*maxBatch), stop: make(chan struct{}), stmt: map[string]*sql.Stmt{}}
	for name, q := range writerSQL {
		if s.stmt[name], err = w.Prepare(q); err != nil {
			w.Close()
			r.Close()
			return nil, fmt.Errorf("store: prepare %s: %w", name, err)
		}
	}
	s.wg.Add(1)
	go s.writer()
	return s, nil
}

// Close stops the writer after the changes already queued and closes the database. Closing
// again does nothing.
func (s *SQLite) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.closeErr = errors.Join(s.w.Close(), s.r.Close())
	})
	return s.closeErr
}

// Ping checks that the database answers.
func (s *SQLite) Ping(ctx context.Context) error { return s.r.PingContext(ctx) }

// change runs fn in a transaction shared with other changes and returns once that transaction
// has committed (or fn's own error, with fn's effects undone).
func (s *SQLite) change(ctx context.Context, fn func(*sql.Tx) error) error {
	o := &op{fn: fn, err: make(chan error, 1), ctx: ctx}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stop:
		return errors.New("store: closed")
	}
	return <-o.err // once queued, a change is always answered: it may commit after ctx ends
}

// writer commits queued changes in batches.
func (s *SQLite) writer() {
	defer s.wg.Done()
	for {
		var first *op
		select {
		case first = <-s.ops:
		case <-s.stop:
			for {
				select {
				case o := <-s.ops:
					s.commit([]*op{o})
				default:
					return
				}
			}
		}
		batch := []*op{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

// commit runs a batch in one transaction, each change inside its own savepoint.
func (s *SQLite) commit(batch []*op) {
	start := time.Now()
	results := make([]error, len(batch))
	tx, err := s.w.Begin()
	if err != nil {
		for _, o := range batch {
			o.err <- fmt.Errorf("store: begin: %w", err)
		}
		return
	}
	for i, o := range batch {
		if _, err := s.exec(tx, "savepoint"); err != nil {
			results[i] = err
			continue
		}
		if err := o.fn(tx); err != nil {
			results[i] = err
			if _, rerr := s.exec(tx, "rollback-to"); rerr != nil {
				results[i] = errors.Join(err, rerr)
			}
		}
		if _, err := s.exec(tx, "release"); err != nil && results[i] == nil {
			results[i] = err
		}
	}
	if err := tx.Commit(); err != nil {
		for _, o := range batch {
			o.err <- fmt.Errorf("store: commit: %w", err)
		}
		return
	}
	if s.OnCommit != nil {
		s.OnCommit(len(batch), time.Since(start))
	}
	for i, o := range batch {
		o.err <- results[i]
	}
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// bg is the context of statements inside the shared transaction: a change, once the writer runs
// it, runs to the end whatever happens to its request (canceling a statement would disturb the
// connection every change of the batch shares).
var bg = context.Background()

// exec runs the writer's prepared statement name in tx.
func (s *SQLite) exec(tx *sql.Tx, name string, args ...any) (sql.Result, error) {
	return tx.Stmt(s.stmt[name]).Exec(args...)
}

// audit appends an entry; it never holds a key.
func (s *SQLite) audit(tx *sql.Tx, actor, action string, slot kms.Slot, counter any, outcome, message string) error {
	_, err := s.exec(tx, "audit", now(), actor, action, slot.UID.String(), int(slot.KeyID), counter, outcome, message)
	return err
}

// txQuerier runs the writer's prepared slot query inside a transaction.
type txQuerier struct {
	s  *SQLite
	tx *sql.Tx
}

func (q txQuerier) QueryRowContext(ctx context.Context, _ string, args ...any) *sql.Row {
	return q.tx.Stmt(q.s.stmt["slot"]).QueryRowContext(ctx, args...)
}

// querier is what reads need: a transaction or the reader pool.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func slotState(ctx context.Context, q querier, slot kms.Slot) (kms.SlotState, error) {
	var st kms.SlotState
	var pc, ic sql.NullInt64
	var pt, pp, ip sql.NullString
	var sync int
	err := q.QueryRowContext(ctx, writerSQL["slot"], slot.UID[:], int(slot.KeyID)).Scan(&st.LastCounter, &pc, &pt, &pp, &ic, &ip, &sync)
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
func (s *SQLite) SlotState(ctx context.Context, slot kms.Slot) (kms.SlotState, error) {
	return slotState(ctx, s.r, slot)
}

// Issue implements kms.Store.
func (s *SQLite) Issue(ctx context.Context, is kms.Issue, min uint32, actor string) (counter uint32, master kms.SlotState, err error) {
	err = s.change(ctx, func(tx *sql.Tx) error {
		st, err := slotState(bg, txQuerier{s, tx}, is.Slot)
		if err != nil {
			return err
		}
		c := max(uint64(st.LastCounter)+1, uint64(min))
		if c > she.MaxCounter {
			return kms.ErrCounterExhausted
		}
		m := st
		if is.KeyID != she.MasterECUKey {
			if m, err = slotState(bg, txQuerier{s, tx}, kms.Slot{UID: is.UID, KeyID: she.MasterECUKey}); err != nil {
				return err
			}
		}
		if _, err := s.exec(tx, "issue", is.UID[:], int(is.KeyID), c, c, string(is.Type), string(is.Phase)); err != nil {
			return err
		}
		if err := s.audit(tx, actor, "issue:"+string(is.Type), is.Slot, c, "issued", ""); err != nil {
			return err
		}
		counter, master = uint32(c), m
		return nil
	})
	return counter, master, err
}

// Report implements kms.Store.
func (s *SQLite) Report(ctx context.Context, slot kms.Slot, success bool, message, actor string) error {
	return s.change(ctx, func(tx *sql.Tx) error {
		st, err := slotState(bg, txQuerier{s, tx}, slot)
		if err != nil {
			return err
		}
		if st.Pending == nil {
			return kms.ErrNothingIssued
		}
		outcome := "OperationFailed"
		if success {
			outcome = "Success"
			_, err = s.exec(tx, "inject", slot.UID[:], int(slot.KeyID))
		} else {
			_, err = s.exec(tx, "drop-pending", slot.UID[:], int(slot.KeyID))
		}
		if err != nil {
			return err
		}
		return s.audit(tx, actor, "result:"+string(st.Pending.Type), slot, st.Pending.Counter, outcome, message)
	})
}

// IssueSync implements kms.Store.
func (s *SQLite) IssueSync(ctx context.Context, slot kms.Slot, actor string) error {
	return s.change(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(tx, "sync", slot.UID[:], int(slot.KeyID)); err != nil {
			return err
		}
		return s.audit(tx, actor, "sync", slot, nil, "issued", "")
	})
}

// ReportSync implements kms.Store.
func (s *SQLite) ReportSync(ctx context.Context, slot kms.Slot, success bool, message, actor string) error {
	return s.change(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(tx, "sync-done", slot.UID[:], int(slot.KeyID))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return kms.ErrNothingIssued
		}
		outcome := "OperationFailed"
		if success {
			outcome = "Success"
		}
		return s.audit(tx, actor, "sync-result", slot, nil, outcome, message)
	})
}

// ClusterGeneration implements kms.Store.
func (s *SQLite) ClusterGeneration(ctx context.Context, cluster [8]byte, keyID she.KeyID) (uint32, error) {
	var g uint32
	err := s.r.QueryRowContext(ctx, `SELECT generation FROM clusters WHERE cluster_id = ? AND key_id = ?`, cluster[:], int(keyID)).Scan(&g)
	if errors.Is(err, sql.ErrNoRows) {
		return 1, nil
	}
	return g, err
}

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	Seq     int64
	At      string
	Actor   string
	Action  string
	UID     string
	KeyID   int
	Counter *int64
	Outcome string
	Message string
}

// Audit returns audit entries after seq, oldest first, at most limit.
func (s *SQLite) Audit(ctx context.Context, after int64, limit int) ([]AuditEntry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, at, actor, action, uid, key_id, counter, coalesce(outcome,''), coalesce(message,'')
		FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		var c sql.NullInt64
		if err := rows.Scan(&e.Seq, &e.At, &e.Actor, &e.Action, &e.UID, &e.KeyID, &c, &e.Outcome, &e.Message); err != nil {
			return nil, err
		}
		if c.Valid {
			e.Counter = &c.Int64
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Secret returns the stored value called name, creating it with create() when it does not exist
// yet (so that concurrent first starts agree on one value).
func (s *SQLite) Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	var v []byte
	err := s.change(ctx, func(tx *sql.Tx) error {
		err := tx.Stmt(s.stmt["secret-get"]).QueryRowContext(bg, name).Scan(&v)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if v, err = create(); err != nil {
			return err
		}
		_, err = s.exec(tx, "secret-put", name, v)
		return err
	})
	return v, err
}
