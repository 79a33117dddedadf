package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/simulator/she"
)

// sqliteIssue is an issue waiting for SQLite's writer, which runs it together with the issues
// queued next to it (issueRun, issueTogether) or, when there are none or the batch runs with
// savepoints, alone (issueAlone).
type sqliteIssue struct {
	is    kms.Issue
	floor int64
	actor string
	// What it got: its counter and the master key slot's injected key; err: its outcome when
	// it ran together with other issues.
	counter uint32
	master  kms.SlotState
	err     error
}

// issue queues an issue (SQLite's Store.issue) and returns once it has committed.
func (w *sqliteWriter) issue(ctx context.Context, is kms.Issue, min uint32, actor string) (uint32, kms.SlotState, error) {
	si := &sqliteIssue{is: is, floor: max(int64(min), 1), actor: actor}
	err := w.enqueue(ctx, &op{fn: func(tx *sql.Tx) error { return w.issueAlone(tx, si) }, issue: si, err: make(chan error, 1)})
	return si.counter, si.master, err
}

// issueAlone runs one issue: its upsert, which also reads the master key slot, and its audit
// entry. Exhausted, it refuses before writing.
func (w *sqliteWriter) issueAlone(tx *sql.Tx, si *sqliteIssue) error {
	var c int64
	var ic sql.NullInt64
	var ip sql.NullString
	is := si.is
	err := w.s.row(tx, stIssue, is.UID[:], int(is.KeyID), si.floor, si.floor, string(is.Type), string(is.Phase), is.UID[:], is.UID[:]).Scan(&c, &ic, &ip)
	if errors.Is(err, sql.ErrNoRows) { // the upsert refused to pass she.MaxCounter: nothing written
		return refuse(kms.ErrCounterExhausted)
	}
	if err != nil {
		return err
	}
	si.got(c, ic, ip)
	return w.auditIssue(tx, si)
}

// got records the counter and the master key slot's injected key an issue's upsert returned.
func (si *sqliteIssue) got(counter int64, injected sql.NullInt64, phase sql.NullString) {
	si.counter, si.master = uint32(counter), kms.SlotState{}
	if injected.Valid {
		si.master.Injected = &kms.Injected{Counter: uint32(injected.Int64), Phase: kms.Phase(phase.String)}
	}
}

// refusedExhausted is the refusal of an issue past she.MaxCounter.
var refusedExhausted = refuse(kms.ErrCounterExhausted)

// issueRun returns the issues at the head of batch that can run together: consecutive, each of
// its own slot, and noted in w.runSlots by slot (none when the batch is guarded: each then runs
// alone in a savepoint). Nothing else in the batch runs between them, so running them together
// keeps the queue's order.
func (w *sqliteWriter) issueRun(batch []*op, guarded bool) []*op {
	clear(w.runSlots)
	if guarded {
		return nil
	}
	n := 0
	for _, o := range batch {
		if o.issue == nil || w.runSlots[o.issue.is.Slot] != nil {
			break
		}
		w.runSlots[o.issue.is.Slot] = o.issue
		n++
	}
	return batch[:n]
}

// issueTogether runs a run of issues of distinct slots (issueRun's) in upserts of 1<<k rows
// each, then keeps their audit entries for the batch's audit insert. An issue whose row did not
// come back was refused (she.MaxCounter) and wrote nothing. An error fails the batch.
func (w *sqliteWriter) issueTogether(tx *sql.Tx, ops []*op) error {
	for _, o := range ops {
		o.issue.err = refusedExhausted
	}
	bySlot := w.runSlots
	err := inRowRuns(len(ops), func(k, first int) error { return w.upsertIssues(tx, k, ops[first:first+1<<k], bySlot) })
	if err != nil {
		return fmt.Errorf("store: issue: %w", err)
	}
	for _, o := range ops {
		if si := o.issue; si.err == nil {
			if err := w.auditIssue(tx, si); err != nil {
				return err
			}
		}
	}
	return nil
}

// auditIssue writes the audit entry of an issue that got its counter.
func (w *sqliteWriter) auditIssue(tx *sql.Tx, si *sqliteIssue) error {
	return w.s.audit(tx, si.actor, "issue:"+string(si.is.Type), si.is.Slot, int64(si.counter), "issued", "")
}

// upsertIssues runs 1<<k issues in one upsert and records what each got.
func (w *sqliteWriter) upsertIssues(tx *sql.Tx, k int, ops []*op, bySlot map[kms.Slot]*sqliteIssue) error {
	args := make([]any, 0, 6*len(ops))
	for _, o := range ops {
		is := o.issue.is
		args = append(args, is.UID[:], int(is.KeyID), o.issue.floor, o.issue.floor, string(is.Type), string(is.Phase))
	}
	rows, err := w.on(tx, boundIssueRows+k, w.issueRows[k]).Query(args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var uid []byte
		var keyID, c int64
		var ic sql.NullInt64
		var ip sql.NullString
		if err := rows.Scan(&uid, &keyID, &c, &ic, &ip); err != nil {
			return err
		}
		slot, err := returnedSlot(uid, keyID)
		if err != nil {
			return err
		}
		si := bySlot[slot]
		if si == nil {
			return fmt.Errorf("an upsert returned slot %x/%d, which it was not given", uid, keyID)
		}
		si.got(c, ic, ip)
		si.err = nil
	}
	return rows.Err()
}

// returnedSlot is the slot of an upsert's returned row. The row's UID is one the upsert was
// given (15 bytes); anything else is an error, not a panic of the writer.
func returnedSlot(uid []byte, keyID int64) (kms.Slot, error) {
	if len(uid) != len(she.UID{}) || keyID < 0 || keyID > 0xff {
		return kms.Slot{}, fmt.Errorf("an upsert returned slot %x/%d, which is none", uid, keyID)
	}
	return kms.Slot{UID: she.UID(uid), KeyID: she.KeyID(keyID)}, nil
}

// issueRowsInsert is stIssue (as SQLite reads it) for n issues: n rows of values, and each row's
// slot returned with what stIssue returns, the master key slot read by the row's UID (a master
// key slot's row is that slot: the upsert leaves its injected key as it was).
func issueRowsInsert(n int) string {
	head, rest, _ := strings.Cut(written(sqliteDialect{})[stIssue], "VALUES (?, ?, ?, ?, ?, ?)")
	upsert, _, _ := strings.Cut(rest, "RETURNING")
	return head + "VALUES " + strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?), ", n), ", ") + upsert +
		`RETURNING uid, key_id, last_counter,
			CASE WHEN key_id = 1 THEN injected_counter ELSE (SELECT m.injected_counter FROM slots m WHERE m.uid = slots.uid AND m.key_id = 1) END,
			CASE WHEN key_id = 1 THEN injected_phase ELSE (SELECT m.injected_phase FROM slots m WHERE m.uid = slots.uid AND m.key_id = 1) END`
}
