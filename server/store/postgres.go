package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

const postgresSchema = `
SELECT pg_advisory_xact_lock(5348454b);
CREATE TABLE IF NOT EXISTS slots (
	uid              BYTEA   NOT NULL,
	key_id           INTEGER NOT NULL,
	last_counter     BIGINT  NOT NULL DEFAULT 0,
	pending_counter  BIGINT,
	pending_type     TEXT,
	pending_phase    TEXT,
	injected_counter BIGINT,
	injected_phase   TEXT,
	sync_pending     INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (uid, key_id)
);
CREATE TABLE IF NOT EXISTS audit (
	seq     BIGSERIAL PRIMARY KEY,
	at      TEXT    NOT NULL,
	actor   TEXT    NOT NULL,
	action  TEXT    NOT NULL,
	uid     TEXT    NOT NULL,
	key_id  INTEGER NOT NULL,
	counter BIGINT,
	outcome TEXT,
	message TEXT
);
ALTER TABLE audit ADD COLUMN IF NOT EXISTS device TEXT;
ALTER TABLE audit ADD COLUMN IF NOT EXISTS keynumber BIGINT;
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
	$$ BEGIN RAISE EXCEPTION 'audit is append-only'; END $$;
DROP TRIGGER IF EXISTS audit_append_only ON audit;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TABLE IF NOT EXISTS secrets (
	name  TEXT  PRIMARY KEY,
	value BYTEA NOT NULL
);`

// pgIssue allocates a counter, records the pending issue, appends the audit entry and reads the
// master key slot in one statement; pgIssuer sends the issues waiting together in one batch. The update refuses to pass 2^28-1 (no row then comes back). Arguments:
// uid, key_id, floor, type, phase, at, actor, action, uid text.
const pgIssue = `
WITH up AS (
	INSERT INTO slots (uid, key_id, last_counter, pending_counter, pending_type, pending_phase)
	VALUES ($1, $2, $3, $3, $4, $5) ON CONFLICT (uid, key_id) DO UPDATE SET
		last_counter = GREATEST(slots.last_counter + 1, excluded.last_counter),
		pending_counter = GREATEST(slots.last_counter + 1, excluded.last_counter),
		pending_type = excluded.pending_type, pending_phase = excluded.pending_phase
	WHERE GREATEST(slots.last_counter + 1, excluded.last_counter) <= 268435455
	RETURNING last_counter
), au AS (
	INSERT INTO audit (at, actor, action, uid, key_id, counter, outcome, message)
	SELECT $6, $7, $8, $9, $2, last_counter, 'issued', '' FROM up
)
SELECT up.last_counter, m.injected_counter, m.injected_phase
FROM up LEFT JOIN slots m ON m.uid = $1 AND m.key_id = 1`

// OpenPostgres opens the PostgreSQL database at url (postgres://…) and creates the schema.
func OpenPostgres(ctx context.Context, url string) (*Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	var d postgresDialect
	tx, err := db.BeginTx(ctx, nil)
	if err == nil {
		_, err = tx.ExecContext(ctx, d.schema())
		if err == nil {
			err = ensureDeviceNameIndex(ctx, tx, true)
		}
		if err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: create schema: %w", err)
	}
	s := &Store{r: db, sql: written(d), stmt: func(*sql.Tx, statement) *sql.Stmt { return nil }, dollar: true}
	issuer := newPgIssuer(s, db)
	s.issue = issuer.issue
	var once sync.Once
	s.close = func() error {
		var err error
		once.Do(func() { issuer.close(); err = db.Close() })
		return err
	}
	s.update = func(ctx context.Context, fn func(*sql.Tx) error) error { return s.pgChange(ctx, db, fn) }
	return s, nil
}

// pgChange runs fn in a transaction of its own, again when PostgreSQL reports a serialization
// failure or a deadlock.
func (s *Store) pgChange(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		start := time.Now()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err = fn(tx); err == nil {
			err = tx.Commit()
		} else {
			tx.Rollback()
			err = unrefused(err)
		}
		var pg *pgconn.PgError
		if err != nil && errors.As(err, &pg) && (pg.Code == "40001" || pg.Code == "40P01") && attempt < 5 {
			continue
		}
		if err == nil && s.OnCommit != nil {
			s.OnCommit(1, time.Since(start))
		}
		return err
	}
}
