package clm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"github.com/shekit/shekit/server/clm"
)

// BenchmarkRevoke: one CredInfo revoke (HTTP, authentication, the transaction that revokes and
// signs the next CRL) with the store holding 1,000 or 100,000 certificates of one device,
// populated directly. The revoked set grows by one per revoke.
func BenchmarkRevoke(b *testing.B) {
	for _, be := range backends(b) {
		for _, certs := range []int{1_000, 100_000} {
			b.Run(fmt.Sprintf("%s/certs=%d", be.name, certs), func(b *testing.B) {
				r := newRig(b, be, "ecdsa")
				w := r.world(b)
				first := r.populate(b, w, certs)
				i := 0
				for b.Loop() {
					r.mustCall(b, "POST", clm.PathCredInfo, w.revoke(strconv.Itoa(first+i)), 200, 0)
					i++
				}
			})
		}
	}
}

// populate stores n certificates of w's device, copies of its first with numbers and serials
// of their own, and returns the first number.
func (r *rig) populate(b *testing.B, w world, n int) int {
	b.Helper()
	const first, batch = 1_000_000, 2_000
	ctx := context.Background()
	var tmpl map[string]any
	err := r.store.View(ctx, func(tx clm.Tx) error {
		o, _, err := tx.Get("cert", w.cert1)
		if err != nil {
			return err
		}
		data, err := r.kek.Open("clm:cert:"+w.cert1, o.Value)
		if err != nil {
			return err
		}
		return json.Unmarshal(data, &tmpl)
	})
	if err != nil {
		b.Fatal(err)
	}
	for start := 0; start < n; start += batch {
		err := r.store.CLM(ctx, func(tx clm.Tx) error {
			for i := start; i < min(start+batch, n); i++ {
				id := strconv.Itoa(first + i)
				tmpl["keynumber"], tmpl["serial"] = first+i, fmt.Sprintf("%016X", 0x4000000000000000+i)
				data, _ := json.Marshal(tmpl)
				err := tx.Put(clm.Object{Kind: "cert", ID: id, Alt: tmpl["serial"].(string), Owner: w.keyid, Value: r.kek.Seal("clm:cert:"+id, data)})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return first
}
