package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

const sqliteSchema = `
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
CREATE TABLE IF NOT EXISTS secrets (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);`

// sqliteMigrations bring a database of an earlier version up to date: a device was found by
// its owner and name joined by a NUL (which PostgreSQL's text refuses), now by a slash.
const sqliteMigrations = `
UPDATE clm_objects SET alt = CAST(substr(CAST(alt AS BLOB), 1, 10) || '/' || substr(CAST(alt AS BLOB), 12) AS TEXT)
	WHERE kind = 'device' AND substr(CAST(alt AS BLOB), 11, 1) = x'00';`

// addColumns adds the columns ("name TYPE") a table of an earlier version lacks, in one
// transaction (SQLite has no ADD COLUMN IF NOT EXISTS).
func addColumns(db *sql.DB, table string, columns ...string) error {
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, c := range columns {
		name, _, _ := strings.Cut(c, " ")
		var n int
		if err := tx.QueryRow(`SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?`, table, name).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if _, err := tx.Exec("ALTER TABLE " + table + " ADD COLUMN " + c); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// maxBatch bounds how many changes one SQLite commit carries.
const maxBatch = 512

// sqliteWriter is SQLite's single writer: it commits queued changes in batches, each change in
// its own savepoint, with statements prepared once on its connection (parsing SQL is otherwise
// the largest cost of a small change).
type sqliteWriter struct {
	s    *Store
	db   *sql.DB
	stmt [statementCount]*sql.Stmt
	// savepoint, rollbackTo and release delimit each change of a batch.
	savepoint, rollbackTo, release *sql.Stmt
	ops                            chan *op
	stop                           chan struct{}
	wg                             sync.WaitGroup
	once                           sync.Once
}

// op is one change waiting for the writer.
type op struct {
	fn  func(*sql.Tx) error
	err chan error
}

// OpenSQLite opens (creating if needed) the database at path.
func OpenSQLite(path string) (*Store, error) {
	if err := privateFiles(path); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	var d sqliteDialect
	if _, err := w.Exec(d.schema()); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: create schema: %w", err)
	}
	if err := addColumns(w, "audit", "device TEXT", "keynumber INTEGER"); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: update schema: %w", err)
	}
	if err := ensureDeviceNameIndex(context.Background(), w, false); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&mode=ro")
	if err != nil {
		w.Close()
		return nil, err
	}
	wr := &sqliteWriter{db: w, ops: make(chan *op, 4*maxBatch), stop: make(chan struct{})}
	s := &Store{r: r, sql: written(d), change: wr.change, close: func() error { return wr.close(r) },
		stmt: func(tx *sql.Tx, q statement) *sql.Stmt { return tx.Stmt(wr.stmt[q]) }}
	s.issue = s.issueInChange
	prepare := func(q string) *sql.Stmt {
		st, perr := w.Prepare(q)
		if perr != nil && err == nil {
			err = fmt.Errorf("store: prepare %q: %w", q, perr)
		}
		return st
	}
	for i, q := range s.sql {
		wr.stmt[i] = prepare(q)
	}
	wr.savepoint, wr.rollbackTo, wr.release = prepare(`SAVEPOINT change`), prepare(`ROLLBACK TO change`), prepare(`RELEASE change`)
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	wr.s = s
	wr.wg.Add(1)
	go wr.run()
	return s, nil
}

// change runs fn in a transaction shared with other changes and returns once that transaction
// has committed (or fn's own error, with fn's effects undone).
func (w *sqliteWriter) change(ctx context.Context, fn func(*sql.Tx) error) error {
	o := &op{fn: fn, err: make(chan error, 1)}
	select {
	case w.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.stop:
		return errors.New("store: closed")
	}
	return <-o.err // once queued, a change is always answered: it may commit after ctx ends
}

func (w *sqliteWriter) close(r *sql.DB) error {
	var err error
	w.once.Do(func() {
		close(w.stop)
		w.wg.Wait()
		err = errors.Join(w.db.Close(), r.Close())
	})
	return err
}

func (w *sqliteWriter) run() {
	defer w.wg.Done()
	for {
		var first *op
		select {
		case first = <-w.ops:
		case <-w.stop:
			for {
				select {
				case o := <-w.ops:
					w.commit([]*op{o})
				default:
					return
				}
			}
		}
		batch := []*op{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case o := <-w.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		w.commit(batch)
	}
}

// exec runs a prepared statement of the writer.
func exec(tx *sql.Tx, st *sql.Stmt) error {
	_, err := tx.Stmt(st).Exec()
	return err
}

// commit runs a batch in one transaction, each change inside its own savepoint.
func (w *sqliteWriter) commit(batch []*op) {
	start := time.Now()
	results := make([]error, len(batch))
	tx, err := w.db.Begin()
	if err != nil {
		for _, o := range batch {
			o.err <- fmt.Errorf("store: begin: %w", err)
		}
		return
	}
	for i, o := range batch {
		if err := exec(tx, w.savepoint); err != nil {
			results[i] = err
			continue
		}
		if err := o.fn(tx); err != nil {
			results[i] = err
			if rerr := exec(tx, w.rollbackTo); rerr != nil {
				results[i] = errors.Join(err, rerr)
			}
		}
		if err := exec(tx, w.release); err != nil && results[i] == nil {
			results[i] = err
		}
	}
	if err := tx.Commit(); err != nil {
		for _, o := range batch {
			o.err <- fmt.Errorf("store: commit: %w", err)
		}
		return
	}
	if w.s.OnCommit != nil {
		w.s.OnCommit(len(batch), time.Since(start))
	}
	for i, o := range batch {
		o.err <- results[i]
	}
}
