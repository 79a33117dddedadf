package kms

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/shekit/shekit/server/kek"
)

// SecretStore keeps sealed secrets: Secret returns the value called name, storing create()'s
// result first when there is none, so that servers starting together agree on one value.
type SecretStore interface {
	Secret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error)
}

// RootKeys returns the root key of each phase, created at random on the first start and stored
// sealed under k.
func RootKeys(ctx context.Context, st SecretStore, k *kek.KEK) (map[Phase][16]byte, error) {
	roots := map[Phase][16]byte{}
	for _, p := range []Phase{Prod, Dev} {
		name := "kms-root:" + string(p)
		sealed, err := st.Secret(ctx, name, func() ([]byte, error) {
			var key [16]byte
			rand.Read(key[:])
			return k.Seal(name, key[:]), nil
		})
		if err != nil {
			return nil, fmt.Errorf("kms: root key %s: %w", p, err)
		}
		key, err := k.Open(name, sealed)
		if err != nil {
			return nil, fmt.Errorf("kms: root key %s: %w", p, err)
		}
		if len(key) != 16 {
			return nil, fmt.Errorf("kms: root key %s has %d bytes", p, len(key))
		}
		roots[p] = [16]byte(key)
	}
	return roots, nil
}
