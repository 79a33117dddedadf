package clm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/kek"
)

// TestOneCAForReplicasStartingTogether: CLMs starting at once on one empty database (each with
// a store of its own, as replicas have) all use one CA, the one the store holds.
func TestOneCAForReplicasStartingTogether(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		loc := b.fresh(t)
		k := kek.New([32]byte{7})
		const replicas = 4
		stores := make([]*faultyStore, replicas)
		for i := range stores {
			stores[i] = &faultyStore{Store: b.open(t, loc)}
		}
		svcs := make([]*clm.Service, replicas)
		errs := make([]error, replicas)
		var start, done sync.WaitGroup
		start.Add(1)
		for i := range svcs {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				// An RSA CA key takes long to make: the replicas overlap.
				svcs[i], errs[i] = clm.New(context.Background(), stores[i], k, clm.Config{License: license, KeyAlgorithm: "ecdsa", CAAlgorithm: "rsa", PoolSize: -1}, nil)
			}()
		}
		start.Done()
		done.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("replica %d: %v", i, err)
			}
			defer svcs[i].Close()
		}
		stored := storedCA(t, stores[0], k)
		for i, s := range svcs {
			if !bytes.Equal(s.CACert().Raw, stored) {
				t.Errorf("replica %d uses a CA that is not the stored one", i)
			}
		}
	})
}

// storedCA returns the DER of the CA certificate the store holds.
func storedCA(t *testing.T, st clm.Store, k *kek.KEK) []byte {
	t.Helper()
	var der []byte
	err := st.View(context.Background(), func(tx clm.Tx) error {
		o, ok, err := tx.Get("ca", "ca1")
		if err != nil || !ok {
			t.Fatalf("no stored CA: %v", err)
		}
		data, err := k.Open("clm:ca:ca1", o.Value)
		if err != nil {
			return err
		}
		var rec struct{ DER []byte }
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
		der = rec.DER
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return der
}
