package clm_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

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

// crl fetches the CRL, requires it signed by the CA the store holds, and returns its entries.
func (r *rig) crl(t *testing.T) *x509.RevocationList {
	t.Helper()
	req, _ := http.NewRequest("GET", r.URL+"/SWCLM/v10/crl/ca1", nil)
	req.SetBasicAuth(clm.LicenseUser, license)
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET crl: %d %s", resp.StatusCode, der)
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(storedCA(t, r.store, r.kek))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckSignatureFrom(ca); err != nil {
		t.Fatalf("the CRL is not signed by the stored CA: %v", err)
	}
	return l
}

// lists reports whether l lists the serial (hex).
func lists(l *x509.RevocationList, serial string) bool {
	for _, e := range l.RevokedCertificateEntries {
		if strings.EqualFold(e.SerialNumber.Text(16), strings.TrimLeft(serial, "0")) {
			return true
		}
	}
	return false
}

func (w world) revoke(number string) string {
	return `{"mode":"revoke",` + w.auth() + `,` + w.dev() + `,"keynumber":"` + number + `","catype":"ca1"}`
}

func (w world) getCert(number string) string {
	return `{"mode":"get",` + w.auth() + `,` + w.dev() + `,"keynumber":"` + number + `","catype":"ca1","filepath":"/k"}`
}

// serialOf returns the serial of a certificate, asked for by its key number.
func (r *rig) serialOf(t *testing.T, w world, number string) string {
	return r.mustCall(t, "POST", clm.PathCredInfo, w.getCert(number), 200, 0)["clientserial"].(string)
}

// TestRevokeReachesEveryReplica: a revoke through one replica is in the other's CRL, at once.
func TestRevokeReachesEveryReplica(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		loc := b.fresh(t)
		a := newRigAt(t, b, loc, "ecdsa")
		other := newRigAt(t, b, loc, "ecdsa")
		w := a.world(t)
		s1, s2 := a.serialOf(t, w, w.cert1), a.serialOf(t, w, w.cert2)
		if l := other.crl(t); len(l.RevokedCertificateEntries) != 0 {
			t.Fatalf("a fresh CRL lists %d certificates", len(l.RevokedCertificateEntries))
		}
		a.mustCall(t, "POST", clm.PathCredInfo, w.revoke(w.cert1), 200, 0)
		if l := other.crl(t); !lists(l, s1) || lists(l, s2) {
			t.Fatalf("the other replica's CRL after revoking %s: %v", s1, l.RevokedCertificateEntries)
		}
		other.mustCall(t, "POST", clm.PathCredInfo, w.revoke(w.cert2), 200, 0)
		before := a.crl(t)
		if !lists(before, s1) || !lists(before, s2) {
			t.Fatalf("the first replica's CRL after two revokes: %v", before.RevokedCertificateEntries)
		}
		// A day on, the CRL is signed again, with the next number.
		a.advance(25 * time.Hour)
		after := a.crl(t)
		if after.Number.Cmp(before.Number) <= 0 || !after.ThisUpdate.After(before.ThisUpdate) || len(after.RevokedCertificateEntries) != 2 {
			t.Fatalf("CRL a day on: number %v thisUpdate %v, %d entries; before: number %v thisUpdate %v",
				after.Number, after.ThisUpdate, len(after.RevokedCertificateEntries), before.Number, before.ThisUpdate)
		}
	})
}

// TestRevokeAndCRLAreOneOutcome: when the CRL cannot be signed, the revoke is refused (1602) and
// the certificate stays valid.
func TestRevokeAndCRLAreOneOutcome(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newRig(t, b, "ecdsa")
		w := r.world(t)
		serial := r.serialOf(t, w, w.cert1)
		r.store.failSeq.Store("crl")
		r.mustCall(t, "POST", clm.PathCredInfo, w.revoke(w.cert1), 500, 1602)
		r.store.failSeq.Store("")
		r.mustCall(t, "POST", clm.PathCredInfo, w.getCert(w.cert1), 200, 0)
		if lists(r.crl(t), serial) {
			t.Fatal("the CRL lists a certificate whose revoke was refused")
		}
	})
}

// TestDeleteIDRevokesItsCertificates: deleting an ID revokes its valid certificates (and only
// its own), each audited.
func TestDeleteIDRevokesItsCertificates(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newRig(t, b, "ecdsa")
		w := r.world(t)
		mine := []string{r.serialOf(t, w, w.cert1), r.serialOf(t, w, w.cert2)}
		keep := r.world(t)
		kept := r.serialOf(t, keep, keep.cert1)
		r.mustCall(t, "POST", clm.PathCredInfo, w.revoke(w.cert1), 200, 0)
		before := len(r.auditLog(t))
		r.mustCall(t, "POST", clm.PathIDInfo, `{"mode":"delete",`+w.auth()+`}`, 200, 0)
		l := r.crl(t)
		if !lists(l, mine[0]) || !lists(l, mine[1]) || lists(l, kept) || len(l.RevokedCertificateEntries) != 2 {
			t.Fatalf("CRL after deleting the ID: %v", l.RevokedCertificateEntries)
		}
		got := r.auditLog(t)[before:]
		if len(got) != 2 || got[0].Action != "clm:cert-revoke" || got[0].Message != "serial "+mine[1] || got[1].Action != "clm:id-delete" {
			t.Fatalf("audit of the delete: %+v", got)
		}
		r.mustCall(t, "POST", clm.PathCredInfo, keep.getCert(keep.cert1), 200, 0)
	})
}

// TestConcurrentRevokesAllInTheCRL: revokes running at once through two replicas each sign a
// CRL; the one stored last lists every revoked certificate.
func TestConcurrentRevokesAllInTheCRL(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		loc := b.fresh(t)
		rigs := []*rig{newRigAt(t, b, loc, "ecdsa"), newRigAt(t, b, loc, "ecdsa")}
		w := rigs[0].world(t)
		const n = 16
		numbers, serials := make([]string, n), make([]string, n)
		for i := range n {
			out := rigs[0].mustCall(t, "POST", clm.PathCredInfo, `{"mode":"create",`+w.auth()+`,`+w.dev()+
				`,"certmode":"client","catype":"ca1","clientsubject":"/CN=c","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`, 201, 0)
			numbers[i], serials[i] = out["clientkeynumber"].(string), out["clientserial"].(string)
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, out := rigs[i%2].call(t, "POST", clm.PathCredInfo, w.revoke(numbers[i]))
				if status != 200 {
					t.Errorf("revoke %s: %d %v", numbers[i], status, out)
				}
			}()
		}
		wg.Wait()
		for _, r := range rigs {
			l := r.crl(t)
			for _, s := range serials {
				if !lists(l, s) {
					t.Fatalf("the CRL lacks %s of %d revoked at once (it lists %d)", s, n, len(l.RevokedCertificateEntries))
				}
			}
		}
	})
}

// TestCRLOfAnEarlierVersion: a database of an earlier version (revoked certificates, but no
// revoked index and no stored CRL) gets both on the next start, listing those certificates.
func TestCRLOfAnEarlierVersion(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		loc := b.fresh(t)
		r := newRigAt(t, b, loc, "ecdsa")
		w := r.world(t)
		serial := r.serialOf(t, w, w.cert1)
		r.mustCall(t, "POST", clm.PathCredInfo, w.revoke(w.cert1), 200, 0)
		if _, err := b.raw(t, loc).Exec(`DELETE FROM clm_objects WHERE kind IN ('revoked', 'crl')`); err != nil {
			t.Fatal(err)
		}
		again := newRigAt(t, b, loc, "ecdsa")
		if l := again.crl(t); len(l.RevokedCertificateEntries) != 1 || !lists(l, serial) {
			t.Fatalf("CRL after the upgrade: %v, want %s", l.RevokedCertificateEntries, serial)
		}
		// The index is rebuilt too: the next revoke's CRL lists both.
		second := again.serialOf(t, w, w.cert2)
		again.mustCall(t, "POST", clm.PathCredInfo, w.revoke(w.cert2), 200, 0)
		if l := r.crl(t); !lists(l, serial) || !lists(l, second) {
			t.Fatalf("CRL after the next revoke: %v", l.RevokedCertificateEntries)
		}
	})
}
