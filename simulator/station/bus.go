package station

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Bus priorities: a LoadKey waiting for the bus goes before a sync, so that the last key's
// LoadKey, whose report and sync are the end of the ECU's critical path, is not held up.
const (
	loadKeyFirst = iota
	syncAfter
	priorities
)

// busLock serializes an ECU's UDS conversations (one at a time), handing the bus to the
// longest-waiting conversation of the highest priority.
type busLock struct {
	mu      sync.Mutex
	busy    bool
	waiting [priorities][]chan struct{}
	used    time.Time // when the last conversation ended
}

// acquireIdle takes the bus if it is free and has been since at least idle ago.
func (b *busLock) acquireIdle(idle time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.busy || time.Since(b.used) < idle {
		return false
	}
	b.busy = true
	return true
}

// acquire waits for the bus; it fails only when ctx ends first.
func (b *busLock) acquire(ctx context.Context, prio int) error {
	b.mu.Lock()
	if !b.busy {
		b.busy = true
		b.mu.Unlock()
		return nil
	}
	turn := make(chan struct{})
	b.waiting[prio] = append(b.waiting[prio], turn)
	b.mu.Unlock()
	select {
	case <-turn:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	i := slices.Index(b.waiting[prio], turn)
	if i >= 0 {
		b.waiting[prio] = slices.Delete(b.waiting[prio], i, i+1)
	}
	b.mu.Unlock()
	if i < 0 { // handed the bus as ctx ended: pass it on
		b.release()
	}
	return ctx.Err()
}

// release hands the bus to the next waiting conversation, or frees it.
func (b *busLock) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used = time.Now()
	for p := range b.waiting {
		if len(b.waiting[p]) > 0 {
			turn := b.waiting[p][0]
			b.waiting[p] = b.waiting[p][1:]
			close(turn)
			return
		}
	}
	b.busy = false
}
