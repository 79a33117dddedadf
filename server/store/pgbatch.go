package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/shekit/shekit/server/kms"
)

// pgBatchers is how many batches of issues one server has in flight on PostgreSQL at once, and
// pgBatchTimeout how long one may take.
const (
	pgBatchers     = 4
	pgBatchTimeout = 10 * time.Second
)

// pgIssuer groups the issues waiting at one moment into one pgx batch: one round trip and one
// implicit transaction (one commit, one WAL flush) for all of them, pgIssue each. Within a
// batch the issues run in slot order, as in every batch of every server, so that two batches
// locking the same slots wait for each other instead of deadlocking.
type pgIssuer struct {
	s    *Store
	db   *sql.DB
	ops  chan *pgIssueOp
	stop chan struct{}
	// closed is closed once every batcher has returned: an issue still waiting is not answered.
	closed chan struct{}
	wg     sync.WaitGroup
}

// pgIssueOp is one issue waiting for a batch.
type pgIssueOp struct {
	is    kms.Issue
	floor int64
	actor string
	at    string
	res   chan pgIssueResult
}

type pgIssueResult struct {
	counter uint32
	master  kms.SlotState
	err     error
}

func newPgIssuer(s *Store, db *sql.DB) *pgIssuer {
	p := &pgIssuer{s: s, db: db, ops: make(chan *pgIssueOp, 4*maxBatch), stop: make(chan struct{}), closed: make(chan struct{})}
	for range pgBatchers {
		p.wg.Add(1)
		go p.run()
	}
	return p
}

// issue queues an issue and waits for its batch to commit (or ctx to end: the issue may still
// commit, and its counter is then skipped).
func (p *pgIssuer) issue(ctx context.Context, is kms.Issue, min uint32, actor string) (uint32, kms.SlotState, error) {
	o := &pgIssueOp{is: is, floor: max(int64(min), 1), actor: actor, at: now(), res: make(chan pgIssueResult, 1)}
	select {
	case p.ops <- o:
	case <-ctx.Done():
		return 0, kms.SlotState{}, ctx.Err()
	case <-p.stop:
		return 0, kms.SlotState{}, errors.New("store: closed")
	}
	select {
	case r := <-o.res:
		return r.counter, r.master, r.err
	case <-ctx.Done():
		return 0, kms.SlotState{}, ctx.Err()
	case <-p.closed:
		select {
		case r := <-o.res:
			return r.counter, r.master, r.err
		default:
			return 0, kms.SlotState{}, errors.New("store: closed")
		}
	}
}

// close stops the batchers after the batches under way.
func (p *pgIssuer) close() {
	close(p.stop)
	p.wg.Wait()
	close(p.closed)
}

func (p *pgIssuer) run() {
	defer p.wg.Done()
	for {
		var first *pgIssueOp
		select {
		case first = <-p.ops:
		case <-p.stop:
			return
		}
		batch := []*pgIssueOp{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case o := <-p.ops:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		p.commit(batch)
	}
}

// commit runs a batch; when the batch fails as a whole, each issue runs again alone, so that
// one issue's failure is its own.
func (p *pgIssuer) commit(batch []*pgIssueOp) {
	slices.SortFunc(batch, func(a, b *pgIssueOp) int {
		if c := bytes.Compare(a.is.UID[:], b.is.UID[:]); c != 0 {
			return c
		}
		return int(a.is.KeyID) - int(b.is.KeyID)
	})
	ctx, cancel := context.WithTimeout(context.Background(), pgBatchTimeout)
	defer cancel()
	start := time.Now()
	results, err := p.send(ctx, batch)
	if err != nil && len(batch) > 1 {
		for _, o := range batch {
			p.commit([]*pgIssueOp{o})
		}
		return
	}
	if err == nil && p.s.OnCommit != nil {
		p.s.OnCommit(len(batch), time.Since(start))
	}
	for i, o := range batch {
		if err != nil {
			o.res <- pgIssueResult{err: fmt.Errorf("store: issue: %w", err)}
			continue
		}
		o.res <- results[i]
	}
}

// send runs the batch on one connection of the pool and returns each issue's result once the
// batch's implicit transaction has committed.
func (p *pgIssuer) send(ctx context.Context, batch []*pgIssueOp) ([]pgIssueResult, error) {
	conn, err := p.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	results := make([]pgIssueResult, len(batch))
	err = conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		b := &pgx.Batch{}
		for _, o := range batch {
			is := o.is
			b.Queue(pgIssue, is.UID[:], int(is.KeyID), o.floor, string(is.Type), string(is.Phase),
				o.at, o.actor, "issue:"+string(is.Type), is.UID.String())
		}
		br := c.SendBatch(ctx, b)
		for i := range batch {
			var c int64
			var ic sql.NullInt64
			var ip sql.NullString
			err := br.QueryRow().Scan(&c, &ic, &ip)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				results[i].err = kms.ErrCounterExhausted
			case err != nil:
				br.Close()
				return err
			default:
				results[i].counter = uint32(c)
				if ic.Valid {
					results[i].master.Injected = &kms.Injected{Counter: uint32(ic.Int64), Phase: kms.Phase(ip.String)}
				}
			}
		}
		return br.Close() // the implicit transaction's commit
	})
	return results, err
}
