package clm

import "context"

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
	Put(o Object) error
	Delete(kind, id string) error
	List(kind string) ([]Object, error)
	// Next returns the next value of a sequence, starting at 1.
	Next(seq string) (int64, error)
}

// Store runs CLM transactions. Every change is durable when CLM returns nil. View runs fn in a
// read-only transaction (fn must not change anything), which may run beside the changes.
type Store interface {
	CLM(ctx context.Context, fn func(Tx) error) error
	View(ctx context.Context, fn func(Tx) error) error
	Ping(ctx context.Context) error
}
