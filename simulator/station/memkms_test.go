package station

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"sync"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/simulator/she"
)

// memStore is a kms.Store in memory, without an audit log: a KMS whose own time is next to
// nothing, so that a benchmark measures the station and the network, not the KMS's database.
type memStore struct {
	mu    sync.Mutex
	slots map[kms.Slot]*kms.SlotState
}

// slot returns the slot's state, creating it; the caller holds mu.
func (m *memStore) slot(s kms.Slot) *kms.SlotState {
	st := m.slots[s]
	if st == nil {
		st = &kms.SlotState{}
		m.slots[s] = st
	}
	return st
}

func (m *memStore) Issue(_ context.Context, is kms.Issue, min uint32, _ string) (uint32, kms.SlotState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.slot(is.Slot)
	c := max(st.LastCounter+1, min, 1)
	if c > she.MaxCounter {
		return 0, kms.SlotState{}, kms.ErrCounterExhausted
	}
	is.Counter = c
	st.LastCounter, st.Pending = c, &is
	return c, *m.slot(kms.Slot{UID: is.UID, KeyID: she.MasterECUKey}), nil
}

func (m *memStore) Report(_ context.Context, s kms.Slot, success bool, _, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.slot(s)
	if st.Pending == nil {
		return kms.ErrNothingIssued
	}
	if success {
		st.Injected = &kms.Injected{Counter: st.Pending.Counter, Phase: st.Pending.Phase}
	}
	st.Pending = nil
	return nil
}

func (m *memStore) SlotState(_ context.Context, s kms.Slot) (kms.SlotState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return *m.slot(s), nil
}

func (m *memStore) IssueSync(_ context.Context, s kms.Slot, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.slot(s).SyncPending = true
	return nil
}

func (m *memStore) ReportSync(_ context.Context, s kms.Slot, _ bool, _, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.slot(s)
	if !st.SyncPending {
		return kms.ErrNothingIssued
	}
	st.SyncPending = false
	return nil
}

// memKMS is the reference KMS's service and handler over a memStore, with the demo registry
// and random root keys.
func memKMS() http.Handler {
	roots := map[kms.Phase][16]byte{}
	for _, p := range []kms.Phase{kms.Prod, kms.Dev} {
		var k [16]byte
		rand.Read(k[:])
		roots[p] = k
	}
	log := slog.New(slog.DiscardHandler)
	svc := kms.NewService(&memStore{slots: map[kms.Slot]*kms.SlotState{}}, roots, kms.DemoRegistry(), log)
	mux := http.NewServeMux()
	kms.NewHandler(svc, kms.AuthNone, log).Register(mux)
	return mux
}
