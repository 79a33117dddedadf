package clm

import (
	"context"
	"errors"
)

// ErrNameTaken is what Put and Insert return (wrapped) when the store refuses a device whose
// owner and name (its Alt) another stored device has: a store keeps a device's Alt unique, so that
// two registrations of one name at once cannot both commit.
var ErrNameTaken = errors.New("clm: device name taken")

// Object is one stored CLM record: an ID (password), a device, a certificate, a symmetric key or
// the CA. Value is the record, sealed by the CLM; Alt is a second key to find it by (a
// certificate's serial, a device's name), Owner the keyid it was created through.
type Object struct {
	Kind, ID, Alt, Owner string
	Value                []byte
}

// Tx is one transaction on the store.
type Tx interface {
	Get(kind, id string) (Object, bool, error)
	ByAlt(kind, alt string) (Object, bool, error)
	// Hold reads an object as Get does but, in a change, keeps it from being changed or deleted
	// until the change ends; changes holding one object may run side by side, one that reads it
	// with Get waits for them.
	Hold(kind, id string) (Object, bool, error)
	// Put stores o, replacing the object of its kind and ID; ErrNameTaken for a device whose
	// Alt another device has.
	Put(o Object) error
	// Insert stores o unless an object of its kind and ID is stored (by this or any other
	// transaction: one that commits first wins), and reports whether it did.
	Insert(o Object) (bool, error)
	Delete(kind, id string) error
	List(kind string) ([]Object, error)
	// Page returns at most limit objects of kind whose IDs sort after after, by ID.
	Page(kind, after string, limit int) ([]Object, error)
	// Owned returns the objects of kind that owner holds.
	Owned(kind, owner string) ([]Object, error)
	// Next returns the next value of a sequence, starting at 1.
	Next(seq string) (int64, error)
	// Audit appends an entry to the audit log the KMS also writes, in the same transaction.
	Audit(e AuditEntry) error
}

// AuditEntry is one change of the CLM in the audit log: which ID did what to which device and
// key number. It never holds a password, device key, private key or symmetric key.
type AuditEntry struct {
	Actor   string // "clm:" and the keyid the change was made through
	Action  string // "clm:" and id-create, id-delete, device-register, cert-create, cert-update, cert-revoke, key-create, key-update or key-delete
	Device  string // the deviceid, if any
	Number  int64  // the certificate's or key's keynumber, 0 for none
	Message string // what else identifies the change: a serial, a key type, the number replaced
}

// Store runs CLM transactions. Every change is durable when CLM returns nil. View runs fn in a
// read-only transaction (fn must not change anything), which may run beside the changes. CLM may
// run fn more than once (after a conflict or a failure of the batch it was in): fn must leave
// nothing behind but the transaction's effects and what its next run overwrites.
type Store interface {
	CLM(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error
	// Lookup reads one object (as Tx.Get in a View) without a transaction of its own.
	Lookup(ctx context.Context, kind, id string) (Object, bool, error)
	Ping(ctx context.Context) error
}
