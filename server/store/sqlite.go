package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/shekit/shekit/server/kms"
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

// sqliteWriter is SQLite's single writer: it commits queued changes in batches, with statements
// prepared once on its connection (parsing SQL is otherwise the largest cost of a small change)
// and bound to each batch's transaction once. Every change checks before it writes (Store.update):
// it refuses before its first write, so it runs without a savepoint (a refusal leaves nothing to
// undo) unless the batch is guarded (see commit). Consecutive issues of the batch run together
// in upserts of several rows, and its audit entries go in inserts of several rows before the
// commit.
type sqliteWriter struct {
	s    *Store
	db   *sql.DB
	stmt [statementCount]*sql.Stmt
	// savepoint, rollbackTo and release delimit a change that may fail after writing.
	savepoint, rollbackTo, release *sql.Stmt
	ops                            chan *op
	stop                           chan struct{}
	wg                             sync.WaitGroup
	once                           sync.Once

	// auditRows[k] inserts 1<<k audit entries in one statement, issueRows[k] runs 1<<k issues.
	auditRows, issueRows [multiRowMax + 1]*sql.Stmt

	// tx is the transaction of the batch under way and bound the statements bound to it so
	// far (used by the writer's goroutine only).
	tx    *sql.Tx
	bound [boundCount]*sql.Stmt
	// runSlots: the issues of the run of issues under way, by slot.
	runSlots map[kms.Slot]*sqliteIssue
	// audits holds the audit entries of the batch's changes (auditColumns values each),
	// inserted together before the commit; guarded: the batch runs with savepoints, and every
	// entry is inserted where it is made.
	audits  []any
	guarded bool
}

// The writer's statements bound to a batch: the store's, the savepoint's three, the audit
// inserts.
const (
	boundSavepoint = int(statementCount) + iota
	boundRollbackTo
	boundRelease
	boundAuditRows
	boundIssueRows = boundAuditRows + multiRowMax + 1
	boundCount     = boundIssueRows + multiRowMax + 1
)

// multiRowMax: the largest audit insert or issue upsert has 1<<multiRowMax rows (maxBatch).
const multiRowMax = 9

// auditColumns are the values of an audit entry, in the order of stAudit's placeholders.
const auditColumns = 10

// op is one change waiting for the writer.
type op struct {
	// fn refuses (with a refusal) only before its first write, so it needs no savepoint.
	fn func(*sql.Tx) error
	// issue: the change is this issue (fn runs it alone).
	issue *sqliteIssue
	err   chan error
}

// readerIdleConns is how many of the reader pool's connections stay open between reads. With
// database/sql's default (2), concurrent reads beyond it each opened a connection (the file,
// its pragmas, and the read statements prepared again on it) and closed it afterwards.
const readerIdleConns = 32

// readStatements are prepared on SQLite's reader pool as well: a read then parses no SQL.
var readStatements = []statement{stSlot, stObjGet, stObjByAlt, stDeviceByName, stObjOwned, stObjList, stObjPage}

// OpenSQLite opens (creating if needed) the database at path.
func OpenSQLite(path string) (*Store, error) {
	if err := privateFiles(path); err != nil {
		return nil, err
	}
	w, err := openSQLiteWriter(path)
	if err != nil {
		return nil, err
	}
	r, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&mode=ro")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxIdleConns(readerIdleConns)
	wr := &sqliteWriter{db: w, ops: make(chan *op, 4*maxBatch), stop: make(chan struct{}), runSlots: map[kms.Slot]*sqliteIssue{}}
	s := &Store{r: r, sql: written(sqliteDialect{}), close: func() error { return wr.close(r) }, stmt: wr.stmtOn}
	s.update, s.issue, s.auditLater = wr.change, wr.issue, wr.auditLater
	if err := errors.Join(wr.prepare(s.sql), s.prepareReads()); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	wr.s, s.sqlite = s, wr
	wr.wg.Add(1)
	go wr.run()
	return s, nil
}

// openSQLiteWriter opens the writer's connection to the database at path, its schema brought up
// to date.
func openSQLiteWriter(path string) (*sql.DB, error) {
	// temp_store(MEMORY): the journal of a savepoint or of a statement is kept in memory, not
	// written to a temporary file page by page.
	w, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=temp_store(MEMORY)&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	if _, err := w.Exec(sqliteDialect{}.schema()); err != nil {
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
	return w, nil
}

// prepare prepares the writer's statements on its connection: the store's (as q writes them),
// the savepoint's, and the audit inserts and issue upserts of 1<<k rows.
func (w *sqliteWriter) prepare(q [statementCount]string) error {
	var err error
	prepare := func(text string) *sql.Stmt {
		st, perr := w.db.Prepare(text)
		if perr != nil && err == nil {
			err = fmt.Errorf("store: prepare %q: %w", text, perr)
		}
		return st
	}
	for i, text := range q {
		w.stmt[i] = prepare(text)
	}
	w.savepoint, w.rollbackTo, w.release = prepare(`SAVEPOINT change`), prepare(`ROLLBACK TO change`), prepare(`RELEASE change`)
	for k := range w.auditRows {
		w.auditRows[k], w.issueRows[k] = prepare(auditInsert(1<<k)), prepare(issueRowsInsert(1<<k))
	}
	return err
}

// prepareReads prepares readStatements on the reader pool.
func (s *Store) prepareReads() error {
	for _, q := range readStatements {
		st, err := s.r.Prepare(s.sql[q])
		if err != nil {
			return fmt.Errorf("store: prepare %q: %w", s.sql[q], err)
		}
		s.read[q] = st
	}
	return nil
}

// change runs fn in a transaction shared with other changes and returns once that transaction
// has committed (or fn's own error, with fn's effects undone). fn returns a refusal only before
// its first write.
func (w *sqliteWriter) change(ctx context.Context, fn func(*sql.Tx) error) error {
	return w.enqueue(ctx, &op{fn: fn, err: make(chan error, 1)})
}

// enqueue queues a change and returns its outcome once its batch has committed.
func (w *sqliteWriter) enqueue(ctx context.Context, o *op) error {
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
					w.commit([]*op{o}, false)
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
		w.commit(batch, false)
	}
}

// stmtOn returns the writer's statement q bound to tx, binding it once per batch.
func (w *sqliteWriter) stmtOn(tx *sql.Tx, q statement) *sql.Stmt {
	return w.on(tx, int(q), w.stmt[q])
}

// on returns st bound to tx; bound slot i keeps it for the rest of the batch.
func (w *sqliteWriter) on(tx *sql.Tx, i int, st *sql.Stmt) *sql.Stmt {
	if tx != w.tx {
		return tx.Stmt(st)
	}
	if w.bound[i] == nil {
		w.bound[i] = tx.Stmt(st)
	}
	return w.bound[i]
}

// exec runs the writer's statement st (bound slot i) in tx.
func (w *sqliteWriter) exec(tx *sql.Tx, i int, st *sql.Stmt) error {
	_, err := w.on(tx, i, st).Exec()
	return err
}

// begin starts a batch's transaction.
func (w *sqliteWriter) begin(guarded bool) (*sql.Tx, error) {
	tx, err := w.db.Begin()
	w.tx, w.bound, w.audits, w.guarded = tx, [len(w.bound)]*sql.Stmt{}, w.audits[:0], guarded
	return tx, err
}

// auditInsert is stAudit for n entries.
func auditInsert(n int) string {
	head, row, _ := strings.Cut(written(sqliteDialect{})[stAudit], "VALUES")
	return head + "VALUES" + strings.TrimSuffix(strings.Repeat(row+",", n), ",")
}

// auditLater keeps an audit entry of a change in the batch's transaction for the batch's audit
// insert, and reports whether it did (else the entry is inserted at once). It keeps none in a
// guarded batch: there a change runs in a savepoint, which must undo its entry if it fails; in
// another batch a change that fails undoes the batch, its kept entries with it.
func (w *sqliteWriter) auditLater(tx *sql.Tx, values ...any) bool {
	if tx != w.tx || w.guarded {
		return false
	}
	w.audits = append(w.audits, values...)
	return true
}

// insertAudits inserts the batch's kept audit entries, oldest first, in statements of 1<<k rows.
func (w *sqliteWriter) insertAudits(tx *sql.Tx) error {
	rows := w.audits
	err := inRowRuns(len(rows)/auditColumns, func(k, first int) error {
		_, err := w.on(tx, boundAuditRows+k, w.auditRows[k]).Exec(rows[first*auditColumns : (first+1<<k)*auditColumns]...)
		return err
	})
	clear(w.audits)
	w.audits = w.audits[:0]
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

// inRowRuns cuts n rows into runs of 1<<k rows (k at most multiRowMax), largest first, and calls
// run with each one's k and its first row, in the rows' order, until run fails.
func inRowRuns(n int, run func(k, first int) error) error {
	first := 0
	for k := multiRowMax; k >= 0; k-- {
		for size := 1 << k; n-first >= size; first += size {
			if err := run(k, first); err != nil {
				return err
			}
		}
	}
	return nil
}

// commit runs a batch in one transaction, its changes in the order they were queued, as they
// are (a run of consecutive issues of distinct slots together). A change that fails other than
// by a refusal (the database failed under it, after it may have written) undoes the batch, which
// runs again with a savepoint for every change (guarded): one slow batch instead of a savepoint
// per change in every batch.
func (w *sqliteWriter) commit(batch []*op, guarded bool) {
	start := time.Now()
	results := make([]error, len(batch))
	tx, err := w.begin(guarded)
	if err != nil {
		w.answer(batch, nil, fmt.Errorf("store: begin: %w", err))
		return
	}
	for i := 0; i < len(batch); i++ {
		o := batch[i]
		if run := w.issueRun(batch[i:], guarded); len(run) > 1 {
			if err := w.issueTogether(tx, run); err != nil {
				tx.Rollback()
				w.commit(batch, true)
				return
			}
			for j, o := range run {
				results[i+j] = o.issue.err
			}
			i += len(run) - 1
			continue
		}
		if !guarded {
			err := o.fn(tx)
			if err != nil && !errors.As(err, new(refusal)) {
				tx.Rollback()
				w.commit(batch, true)
				return
			}
			results[i] = err
			continue
		}
		results[i] = w.inSavepoint(tx, o.fn)
	}
	if err := w.insertAudits(tx); err != nil {
		tx.Rollback()
		w.commit(batch, true)
		return
	}
	if err := tx.Commit(); err != nil {
		w.answer(batch, nil, fmt.Errorf("store: commit: %w", err))
		return
	}
	if w.s.OnCommit != nil {
		w.s.OnCommit(len(batch), time.Since(start))
	}
	w.answer(batch, results, nil)
}

// inSavepoint runs fn in a savepoint of tx, rolled back to when fn fails.
func (w *sqliteWriter) inSavepoint(tx *sql.Tx, fn func(*sql.Tx) error) error {
	const sp, rb, rel = boundSavepoint, boundRollbackTo, boundRelease
	if err := w.exec(tx, sp, w.savepoint); err != nil {
		return err
	}
	err := fn(tx)
	if err != nil {
		if rerr := w.exec(tx, rb, w.rollbackTo); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	if rerr := w.exec(tx, rel, w.release); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// answer gives each change of the batch its result, or all of them err.
func (w *sqliteWriter) answer(batch []*op, results []error, err error) {
	for i, o := range batch {
		if err == nil {
			err := results[i]
			if r, ok := err.(refusal); ok {
				err = r.err
			}
			o.err <- err
			continue
		}
		o.err <- err
	}
}
