package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/shekit/shekit/server/clm"
)

// clmSchema is the CLM's part of the schema, the same in both dialects but for the BLOB type.
const clmSchema = `
CREATE TABLE IF NOT EXISTS clm_objects (
	kind  TEXT NOT NULL,
	id    TEXT NOT NULL,
	alt   TEXT NOT NULL,
	owner TEXT NOT NULL,
	value BLOB NOT NULL,
	PRIMARY KEY (kind, id)
);
CREATE INDEX IF NOT EXISTS clm_objects_alt ON clm_objects (kind, alt);
CREATE INDEX IF NOT EXISTS clm_objects_owner ON clm_objects (kind, owner);
CREATE TABLE IF NOT EXISTS clm_seq (
	name  TEXT PRIMARY KEY,
	value BIGINT NOT NULL
);`

// deviceNameIndex keeps a device's owner and name (its alt) unique: of two registrations of one
// name at once, the second to commit is refused (clm.ErrNameTaken). The other kinds' alts are
// not unique (an ID's tenant, a key's device) or unique by construction (a serial).
const deviceNameIndex = `CREATE UNIQUE INDEX IF NOT EXISTS clm_objects_device_name ON clm_objects (alt) WHERE kind = 'device'`

// execer runs a statement: a database or a transaction.
type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

// ensureDeviceNameIndex creates deviceNameIndex. A database of an earlier version that already
// holds two devices of one owner and name cannot have it: the store then runs without it and says so in the log, once per
// open, until the duplicates are removed (two registrations of one name at once may then both
// commit).
func ensureDeviceNameIndex(ctx context.Context, db execer, savepoint bool) error {
	if savepoint { // a failed statement otherwise aborts PostgreSQL's whole transaction
		if _, err := db.ExecContext(ctx, `SAVEPOINT device_name_index`); err != nil {
			return fmt.Errorf("store: device name index: %w", err)
		}
	}
	_, err := db.ExecContext(ctx, deviceNameIndex)
	if err == nil || !uniqueViolation(err) {
		if err != nil {
			return fmt.Errorf("store: device name index: %w", err)
		}
		return nil
	}
	slog.Warn("store: two devices share an owner and name; device names are not kept unique until they are removed", "err", err)
	if savepoint {
		if _, err := db.ExecContext(ctx, `ROLLBACK TO SAVEPOINT device_name_index`); err != nil {
			return fmt.Errorf("store: device name index: %w", err)
		}
	}
	return nil
}

// uniqueViolation reports whether err is a database's refusal of a duplicate key.
func uniqueViolation(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return pg.Code == "23505"
	}
	var lite *sqlite.Error
	return errors.As(err, &lite) && lite.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// nameTaken returns clm.ErrNameTaken for a device's unique violation, else err.
func nameTaken(kind string, err error) error {
	if err != nil && kind == "device" && uniqueViolation(err) {
		return fmt.Errorf("%w: %v", clm.ErrNameTaken, err)
	}
	return err
}

var _ clm.Store = (*Store)(nil)

// clmTx is a clm.Tx on one database transaction: the writer's, or a read-only one on the
// reader pool (with the reader's prepared statements, else by their text).
type clmTx struct {
	s    *Store
	tx   *sql.Tx
	read bool
	// wrote: a statement that writes has run (or was tried) in the change.
	wrote bool
	// audit holds the audit entries of the change (clmAuditArgs arguments each), written
	// together when fn has succeeded.
	audit []any
}

// View runs fn in a read-only transaction on the reader pool.
func (s *Store) View(ctx context.Context, fn func(clm.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(&clmTx{s: s, tx: tx, read: true})
}

// Lookup reads one object by its kind and ID, outside any transaction: one statement, prepared
// on SQLite's reader pool.
func (s *Store) Lookup(ctx context.Context, kind, id string) (clm.Object, bool, error) {
	o := clm.Object{Kind: kind, ID: id}
	var row *sql.Row
	if st := s.read[stObjGet]; st != nil {
		row = st.QueryRowContext(ctx, kind, id)
	} else {
		row = s.r.QueryRowContext(ctx, s.sql[stObjGet], kind, id)
	}
	err := row.Scan(&o.Owner, &o.Alt, &o.Value)
	if errors.Is(err, sql.ErrNoRows) {
		return o, false, nil
	}
	return o, err == nil, err
}

func (t *clmTx) row(q statement, args ...any) *sql.Row {
	if t.read {
		if st := t.s.read[q]; st != nil {
			return t.tx.Stmt(st).QueryRow(args...)
		}
		return t.tx.QueryRow(t.s.sql[q], args...)
	}
	return t.s.row(t.tx, q, args...)
}

// CLM runs fn in one transaction (committed with the other changes of its batch on SQLite). A
// change that the CLM refuses (a *clm.Error) before its first write has nothing to undo, so
// SQLite's writer runs CLM changes without a savepoint of their own. Any other failure (one after
// a write, or the database's) makes the writer undo its batch and run it again with a savepoint
// for every change: fn may run twice, as it may on PostgreSQL after a serialization failure.
func (s *Store) CLM(ctx context.Context, fn func(clm.Tx) error) error {
	return s.update(ctx, func(tx *sql.Tx) error {
		t := &clmTx{s: s, tx: tx}
		err := fn(t)
		if err == nil {
			err = t.writeAudit()
		}
		var refused *clm.Error
		if err != nil && !t.wrote && errors.As(err, &refused) {
			return refuse(err)
		}
		return err
	})
}

// write runs a statement that writes, and marks the change as having written.
func (t *clmTx) write(q statement, args ...any) (sql.Result, error) {
	if t.read {
		return nil, errReadOnly
	}
	t.wrote = true
	return t.s.exec(t.tx, q, args...)
}

// Get reads an object; in a change, under its row's lock until the change ends, so that what
// the change writes back was not changed meanwhile (on PostgreSQL, whose READ COMMITTED changes
// run side by side; SQLite's one writer runs one change at a time).
func (t *clmTx) Get(kind, id string) (clm.Object, bool, error) {
	o := clm.Object{Kind: kind, ID: id}
	q := stObjGet
	if !t.read { // FOR UPDATE fails in a read-only transaction
		q = stObjGetLocked
	}
	err := t.row(q, kind, id).Scan(&o.Owner, &o.Alt, &o.Value)
	if errors.Is(err, sql.ErrNoRows) {
		return o, false, nil
	}
	return o, err == nil, err
}

// Hold reads an object; in a change, it keeps the object from being changed or deleted until
// the change ends (a shared lock on PostgreSQL: changes that hold the same object run side by
// side, one that locks it with Get waits for them all).
func (t *clmTx) Hold(kind, id string) (clm.Object, bool, error) {
	o := clm.Object{Kind: kind, ID: id}
	q := stObjGet
	if !t.read { // FOR SHARE fails in a read-only transaction
		q = stObjHold
	}
	err := t.row(q, kind, id).Scan(&o.Owner, &o.Alt, &o.Value)
	if errors.Is(err, sql.ErrNoRows) {
		return o, false, nil
	}
	return o, err == nil, err
}

// ByAlt reads an object by its second key, locked in a change as Get's.
func (t *clmTx) ByAlt(kind, alt string) (clm.Object, bool, error) {
	o := clm.Object{Kind: kind, Alt: alt}
	q, args := stObjByAlt, []any{kind, alt}
	switch {
	case kind == "device" && t.read:
		q, args = stDeviceByName, args[1:]
	case kind == "device":
		q, args = stDeviceByNameLocked, args[1:]
	case !t.read:
		q = stObjByAltLocked
	}
	err := t.row(q, args...).Scan(&o.ID, &o.Owner, &o.Value)
	if errors.Is(err, sql.ErrNoRows) {
		return o, false, nil
	}
	return o, err == nil, err
}

var errReadOnly = errors.New("store: change in a read-only transaction")

func (t *clmTx) Put(o clm.Object) error {
	_, err := t.write(stObjPut, o.Kind, o.ID, o.Alt, o.Owner, o.Value)
	return nameTaken(o.Kind, err)
}

// Insert stores o unless an object of its kind and ID is stored, and reports whether it did.
func (t *clmTx) Insert(o clm.Object) (bool, error) {
	res, err := t.write(stObjAdd, o.Kind, o.ID, o.Alt, o.Owner, o.Value)
	if err != nil {
		return false, nameTaken(o.Kind, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (t *clmTx) Delete(kind, id string) error {
	_, err := t.write(stObjDel, kind, id)
	return err
}

func (t *clmTx) List(kind string) ([]clm.Object, error) {
	return t.objects(kind, stObjList, kind)
}

// Page returns at most limit objects of kind with IDs after after, by ID.
func (t *clmTx) Page(kind, after string, limit int) ([]clm.Object, error) {
	return t.objects(kind, stObjPage, kind, after, limit)
}

// Owned returns the objects of kind that owner holds, by ID.
func (t *clmTx) Owned(kind, owner string) ([]clm.Object, error) {
	return t.objects(kind, stObjOwned, kind, owner)
}

// objects runs the listing statement q.
func (t *clmTx) objects(kind string, q statement, args ...any) ([]clm.Object, error) {
	var rows *sql.Rows
	var err error
	var st *sql.Stmt
	if !t.read {
		st = t.s.stmt(t.tx, q)
	} else if rs := t.s.read[q]; rs != nil {
		st = t.tx.Stmt(rs)
	}
	if st != nil {
		rows, err = st.Query(args...)
	} else {
		rows, err = t.tx.Query(t.s.sql[q], args...)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []clm.Object
	for rows.Next() {
		o := clm.Object{Kind: kind}
		if err := rows.Scan(&o.ID, &o.Owner, &o.Alt, &o.Value); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// clmAuditArgs is how many arguments an entry of stCLMAudit takes.
const clmAuditArgs = 6

// Audit appends e to the audit log, with the change: the device and the key number in columns of
// their own (the KMS's uid, key slot and counter stay empty).
func (t *clmTx) Audit(e clm.AuditEntry) error {
	if t.read {
		return errReadOnly
	}
	var number any
	if e.Number != 0 {
		number = e.Number
	}
	t.wrote = true
	t.audit = append(t.audit, now(), e.Actor, e.Action, e.Message, e.Device, number)
	return nil
}

// writeAudit writes the change's audit entries, in order, two to a statement, or leaves them to
// the batch's audit insert (Store.auditLater: SQLite's writer inserts a batch's entries in the
// order of its changes).
func (t *clmTx) writeAudit() error {
	for len(t.audit) > 0 && t.s.auditLater != nil {
		a := t.audit // stCLMAudit's arguments; auditLater takes stAudit's
		if !t.s.auditLater(t.tx, a[0], a[1], a[2], "", 0, nil, "done", a[3], a[4], a[5]) {
			break
		}
		t.audit = a[clmAuditArgs:]
	}
	for len(t.audit) > 0 {
		q, n := stCLMAudit2, 2*clmAuditArgs
		if len(t.audit) < n {
			q, n = stCLMAudit, clmAuditArgs
		}
		if _, err := t.s.exec(t.tx, q, t.audit[:n]...); err != nil {
			return err
		}
		t.audit = t.audit[n:]
	}
	return nil
}

func (t *clmTx) Next(seq string) (int64, error) {
	if t.read {
		return 0, errReadOnly
	}
	t.wrote = true
	var v int64
	err := t.s.row(t.tx, stSeqNext, seq).Scan(&v)
	return v, err
}
