package store

import (
	"strconv"
	"strings"
)

// statement names one of the store's SQL statements.
type statement int

// The store's statements.
const (
	stSlot statement = iota
	stIssue
	stInject
	stDropPending
	stSync
	stSyncDone
	stAudit
	stAuditList
	stSecretGet
	stSecretPut
	stSecretSet
	stObjGet
	stObjByAlt
	stObjGetLocked
	stObjByAltLocked
	stDeviceByName
	stDeviceByNameLocked
	stObjHold
	stObjPut
	stObjAdd
	stObjDel
	stObjOwned
	stObjList
	stObjPage
	stSeqNext
	stCLMAudit
	stCLMAudit2
	statementCount
)

// portable are the store's statements in a portable form: ? placeholders, MAX2 for the greater
// of two values, LOCKED for a row lock until the transaction ends (FOR UPDATE on PostgreSQL,
// nothing on SQLite, whose one writer already excludes every other change), SHARED for a shared
// one (FOR SHARE; nothing on SQLite). A dialect writes
// them for its database.
var portable = [statementCount]string{
	stSlot: `SELECT last_counter, pending_counter, pending_type, pending_phase, injected_counter, injected_phase, sync_pending
		FROM slots WHERE uid = ? AND key_id = ?`,
	// The counter is computed inside the upsert, under the row's lock, so that concurrent
	// servers can never hand out one counter twice. It refuses to pass 2^28-1 (she.MaxCounter):
	// no row then comes back and nothing is written. It returns the counter and the key the
	// ECU's MASTER_ECU_KEY slot holds (arguments 7 and 8: the UID again); the upsert changes no
	// slot's injected key, so it does not matter whether these see the slot before or after it.
	stIssue: `INSERT INTO slots (uid, key_id, last_counter, pending_counter, pending_type, pending_phase)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (uid, key_id) DO UPDATE SET
		last_counter = MAX2(slots.last_counter + 1, excluded.last_counter),
		pending_counter = MAX2(slots.last_counter + 1, excluded.last_counter),
		pending_type = excluded.pending_type, pending_phase = excluded.pending_phase
		WHERE MAX2(slots.last_counter + 1, excluded.last_counter) <= 268435455
		RETURNING last_counter,
			(SELECT m.injected_counter FROM slots m WHERE m.uid = ? AND m.key_id = 1),
			(SELECT m.injected_phase FROM slots m WHERE m.uid = ? AND m.key_id = 1)`,
	stInject: `UPDATE slots SET injected_counter = pending_counter, injected_phase = pending_phase,
		pending_counter = NULL, pending_type = NULL, pending_phase = NULL WHERE uid = ? AND key_id = ?`,
	stDropPending: `UPDATE slots SET pending_counter = NULL, pending_type = NULL, pending_phase = NULL WHERE uid = ? AND key_id = ?`,
	stSync:        `UPDATE slots SET sync_pending = 1 WHERE uid = ? AND key_id = ?`,
	stSyncDone:    `UPDATE slots SET sync_pending = 0 WHERE uid = ? AND key_id = ? AND sync_pending = 1`,
	// An audit entry is the KMS's (uid, key_id, counter) or the CLM's (device, keynumber).
	stAudit: `INSERT INTO audit (at, actor, action, uid, key_id, counter, outcome, message, device, keynumber)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
	stAuditList: `SELECT seq, at, actor, action, uid, key_id, counter, COALESCE(outcome, ''), COALESCE(message, ''),
		COALESCE(device, ''), keynumber FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`,
	stSecretGet: `SELECT value FROM secrets WHERE name = ?`,
	stSecretPut: `INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
	stSecretSet: `INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
	stObjGet:    `SELECT owner, alt, value FROM clm_objects WHERE kind = ? AND id = ?`,
	stObjByAlt:  `SELECT id, owner, value FROM clm_objects WHERE kind = ? AND alt = ?`,
	// A change reads what it may write back under the row's lock: a concurrent change of the
	// same object waits for it to end, then reads what it committed (no lost update).
	stObjGetLocked:   `SELECT owner, alt, value FROM clm_objects WHERE kind = ? AND id = ? LOCKED`,
	stObjByAltLocked: `SELECT id, owner, value FROM clm_objects WHERE kind = ? AND alt = ? LOCKED`,
	// A device by its owner and name names its kind in the text: with the kind as a parameter,
	// SQLite's planner weighs the partial index clm_objects_device_name against the bound value
	// and so prepares the statement again at every run.
	stDeviceByName:       `SELECT id, owner, value FROM clm_objects WHERE kind = 'device' AND alt = ?`,
	stDeviceByNameLocked: `SELECT id, owner, value FROM clm_objects WHERE kind = 'device' AND alt = ? LOCKED`,
	// A change that must not outlive an object (a certificate's ID) holds it with a shared lock.
	stObjHold: `SELECT owner, alt, value FROM clm_objects WHERE kind = ? AND id = ? SHARED`,
	stObjPut: `INSERT INTO clm_objects (kind, id, alt, owner, value) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (kind, id) DO UPDATE SET alt = excluded.alt, owner = excluded.owner, value = excluded.value`,
	stObjAdd: `INSERT INTO clm_objects (kind, id, alt, owner, value) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (kind, id) DO NOTHING`,
	stObjDel:   `DELETE FROM clm_objects WHERE kind = ? AND id = ?`,
	stObjOwned: `SELECT id, owner, alt, value FROM clm_objects WHERE kind = ? AND owner = ? ORDER BY id`,
	stObjList:  `SELECT id, owner, alt, value FROM clm_objects WHERE kind = ? ORDER BY id`,
	stObjPage:  `SELECT id, owner, alt, value FROM clm_objects WHERE kind = ? AND id > ? ORDER BY id LIMIT ?`,
	stSeqNext:  `INSERT INTO clm_seq (name, value) VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET value = clm_seq.value + 1 RETURNING value`,
	// The CLM's audit entries, one or two at a time: at, actor, action, message, device,
	// keynumber each (the KMS's uid, key slot and counter stay empty).
	stCLMAudit: `INSERT INTO audit (at, actor, action, uid, key_id, counter, outcome, message, device, keynumber)
		VALUES (?, ?, ?, '', 0, NULL, 'done', ?, ?, ?)`,
	stCLMAudit2: `INSERT INTO audit (at, actor, action, uid, key_id, counter, outcome, message, device, keynumber)
		VALUES (?, ?, ?, '', 0, NULL, 'done', ?, ?, ?), (?, ?, ?, '', 0, NULL, 'done', ?, ?, ?)`,
}

// dialect is what differs between the databases the store runs on.
type dialect interface {
	// schema returns the statements that create (or bring up to date) the tables.
	schema() string
	// write returns a portable statement as the database reads it.
	write(q string) string
}

// written returns every statement as d writes it.
func written(d dialect) [statementCount]string {
	var out [statementCount]string
	for i, q := range portable {
		out[i] = d.write(q)
	}
	return out
}

// sqliteDialect is SQLite's.
type sqliteDialect struct{}

func (sqliteDialect) schema() string {
	return sqliteSchema + clmSchema + sqliteMigrations + consoleIndexes
}

func (sqliteDialect) write(q string) string {
	return strings.NewReplacer("MAX2(", "max(", " LOCKED", "", " SHARED", "").Replace(q)
}

// postgresDialect is PostgreSQL's: $n placeholders, GREATEST, FOR UPDATE, FOR SHARE, BYTEA, and the schema
// created under an advisory lock (servers starting together).
type postgresDialect struct{}

func (postgresDialect) schema() string {
	return strings.Replace(postgresSchema, "5348454b", strconv.Itoa(0x5348454b), 1) + strings.ReplaceAll(clmSchema, "BLOB", "BYTEA") + consoleIndexes
}

func (postgresDialect) write(q string) string {
	return dollarPlaceholders(strings.NewReplacer("MAX2(", "GREATEST(", " LOCKED", " FOR UPDATE", " SHARED", " FOR SHARE").Replace(q))
}

// dollarPlaceholders rewrites ? placeholders as $1, $2, … (none of the statements has a ? in a
// string literal).
func dollarPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
