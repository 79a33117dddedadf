package kms

import (
	"context"
	"errors"

	"github.com/shekit/shekit/simulator/she"
)

// Slot names one key slot of one ECU.
type Slot struct {
	UID   she.UID
	KeyID she.KeyID
}

// Issue is one set of M1-M5 handed out.
type Issue struct {
	Slot
	Type    ProvisioningType
	Phase   Phase
	Counter uint32
}

// Injected is what the KMS knows is in a slot: the issue the station reported as injected.
type Injected struct {
	Counter uint32
	Phase   Phase
}

// SlotState is what the KMS knows of a slot.
type SlotState struct {
	LastCounter uint32    // highest counter handed out (0: none)
	Pending     *Issue    // issued, not yet reported
	Injected    *Injected // last issue reported as injected
	SyncPending bool      // a KeySyncValue was handed out and not yet reported
}

// Errors of a Store.
var (
	ErrCounterExhausted = errors.New("kms: counter would exceed 28 bits")
	ErrNothingIssued    = errors.New("kms: nothing issued for the slot")
)

// Store keeps counters, provisioning state and the audit log. Every method that changes state
// commits durably before it returns.
type Store interface {
	// Issue allocates counter max(last+1, min) for the issue's slot, records the issue as the
	// slot's pending one (superseding any), and logs it, in one transaction. It returns the
	// counter and the key the ECU's MASTER_ECU_KEY slot then held (master.Injected; nothing
	// else of master is filled).
	Issue(ctx context.Context, is Issue, min uint32, actor string) (counter uint32, master SlotState, err error)
	// Report records the outcome of the slot's pending issue (ErrNothingIssued when there is
	// none): on success it becomes the slot's injected key.
	Report(ctx context.Context, slot Slot, success bool, message, actor string) error
	// SlotState returns what the KMS knows of a slot.
	SlotState(ctx context.Context, slot Slot) (SlotState, error)
	// IssueSync records that a KeySyncValue was handed out for the slot.
	IssueSync(ctx context.Context, slot Slot, actor string) error
	// ReportSync records the outcome of the slot's pending sync (ErrNothingIssued without one).
	ReportSync(ctx context.Context, slot Slot, success bool, message, actor string) error
}
