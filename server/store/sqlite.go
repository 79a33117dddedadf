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

// maxBatch bounds how many changes one SQLite commit carries.
const maxBatch = 512

// sqliteWriter is SQLite's single writer: it commits queued changes in batches, each change in
// its own savepoint, with statements prepared once on its connection (parsing SQL is otherwise
// the largest cost of a small change).
type sqliteWriter struct {
	s    *Store
	db   *sql.DB
	stmt map[string]*sql.Stmt
	ops  chan *op
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
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
	if _, err := w.Exec(sqliteSchema + clmSchema); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: create schema: %w", err)
	}
	r, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&mode=ro")
	if err != nil {
		w.Close()
		return nil, err
	}
	text := map[string]string{}
	for name, q := range queries {
		text[name] = strings.ReplaceAll(q, "MAX2(", "max(")
	}
	for name, q := range map[string]string{"savepoint": `SAVEPOINT change`, "rollback-to": `ROLLBACK TO change`, "release": `RELEASE change`} {
		text[name] = q
	}
	wr := &sqliteWriter{db: w, stmt: map[string]*sql.Stmt{}, ops: make(chan *op, 4*maxBatch), stop: make(chan struct{})}
	for name, q := range text {
		if wr.stmt[name], err = w.Prepare(q); err != nil {
			w.Close()
			r.Close()
			return nil, fmt.Errorf("store: prepare %s: %w", name, err)
		}
	}
	s := &Store{r: r, sql: text, change: wr.change, close: func() error { return wr.close(r) },
		stmt: func(tx *sql.Tx, name string) *sql.Stmt { return tx.Stmt(wr.stmt[name]) }}
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
func (w *sqliteWriter) exec(tx *sql.Tx, name string) error {
	_, err := tx.Stmt(w.stmt[name]).Exec()
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
		if err := w.exec(tx, "savepoint"); err != nil {
			results[i] = err
			continue
		}
		if err := o.fn(tx); err != nil {
			results[i] = err
			if rerr := w.exec(tx, "rollback-to"); rerr != nil {
				results[i] = errors.Join(err, rerr)
			}
		}
		if err := w.exec(tx, "release"); err != nil && results[i] == nil {
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
