package clm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/shekit/shekit/server/clm"
)

// races is how many certificates (and keys) each race test contends for.
const races = 30

// post sends body with the license and decodes the answer; safe to call from any goroutine.
func (r *rig) post(path, body string) (int, map[string]any, error) {
	req, _ := http.NewRequest("POST", r.URL+path, strings.NewReader(body))
	req.SetBasicAuth(clm.LicenseUser, license)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, nil, fmt.Errorf("answer is not JSON: %w", err)
	}
	return resp.StatusCode, out, nil
}

// outcome is one request of a race: its status, errorcode and answer, or why it got none.
type outcome struct {
	status int
	code   float64
	answer map[string]any
	err    error
}

// together sends the two requests at once (through two replicas) and returns their outcomes.
func together(a, b *rig, path, bodyA, bodyB string) (outcome, outcome) {
	var start, done sync.WaitGroup
	var oa, ob outcome
	send := func(r *rig, body string, o *outcome) {
		defer done.Done()
		start.Wait()
		o.status, o.answer, o.err = r.post(path, body)
		if o.err == nil && o.answer["errorcode"] != nil {
			o.code, _ = o.answer["errorcode"].(float64)
		}
	}
	start.Add(1)
	done.Add(2)
	go send(a, bodyA, &oa)
	go send(b, bodyB, &ob)
	start.Done()
	done.Wait()
	return oa, ob
}

// owned counts the objects of kind the ID holds in the store.
func (r *rig) owned(t *testing.T, kind, keyid string) int {
	t.Helper()
	n := 0
	err := r.store.View(context.Background(), func(tx clm.Tx) error {
		objs, err := tx.Owned(kind, keyid)
		n = len(objs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUpdateRacingRevoke: an update and a revoke of one certificate sent at once through two
// replicas never both succeed (a lost update): one does, the other is refused with 1306, and the
// store holds the winner's outcome.
func TestUpdateRacingRevoke(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		loc := b.fresh(t)
		a, other := newRigAt(t, b, loc, "ecdsa"), newRigAt(t, b, loc, "ecdsa")
		w := a.world(t)
		certs := []string{w.cert1, w.cert2}
		for len(certs) < races {
			out := a.mustCall(t, "POST", clm.PathCredInfo, `{"mode":"create",`+w.auth()+`,`+w.dev()+
				`,"certmode":"client","catype":"ca1","clientsubject":"/CN=edge","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`, 201, 0)
			certs = append(certs, out["clientkeynumber"].(string))
		}
		serials := map[string]string{}
		for _, c := range certs {
			serials[c] = a.serialOf(t, w, c)
		}
		updates := 0
		for _, c := range certs {
			up, rev := together(a, other, clm.PathCredInfo,
				`{"mode":"update",`+w.auth()+`,`+w.dev()+`,"keynumber":"`+c+`","catype":"ca1","passphrase":"p","filepath":"/k"}`,
				w.revoke(c))
			if up.err != nil || rev.err != nil {
				t.Fatalf("certificate %s: update %v, revoke %v", c, up.err, rev.err)
			}
			switch {
			case up.status == 200 && rev.status == 403 && rev.code == 1306:
				updates++
				next := up.answer["clientkeynumber"].(string)
				a.mustCall(t, "POST", clm.PathCredInfo, w.getCert(c), 403, 1306)
				a.mustCall(t, "POST", clm.PathCredInfo, w.getCert(next), 200, 0)
			case rev.status == 200 && up.status == 403 && up.code == 1306:
				a.mustCall(t, "POST", clm.PathCredInfo, w.getCert(c), 403, 1306)
			default:
				t.Fatalf("certificate %s: update %d errorcode %v, revoke %d errorcode %v; want one 200 and one 403 1306",
					c, up.status, up.code, rev.status, rev.code)
			}
		}
		if got := a.owned(t, "cert", w.keyid); got != races+updates {
			t.Errorf("%d certificates stored after %d updates of %d, want %d", got, updates, races, races+updates)
		}
		l := a.crl(t)
		revoked := 0
		for _, c := range certs {
			if lists(l, serials[c]) {
				revoked++
			}
		}
		if len(l.RevokedCertificateEntries) != races-updates || revoked != races-updates {
			t.Errorf("the CRL lists %d certificates (%d of the raced ones) after %d revokes", len(l.RevokedCertificateEntries), revoked, races-updates)
		}
		t.Logf("%d updates and %d revokes won", updates, races-updates)
	})
}

// TestKeyUpdateRacingDelete: an update and a delete of one key sent at once through two
// replicas never both succeed: the delete refused with 1504 after an update, the update with
// 1501 after a delete, and the store holds the winner's outcome.
func TestKeyUpdateRacingDelete(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		loc := b.fresh(t)
		a, other := newRigAt(t, b, loc, "ecdsa"), newRigAt(t, b, loc, "ecdsa")
		w := a.world(t)
		keys := map[string]string{} // keynumber → commonkey
		for len(keys) < races {
			out := a.mustCall(t, "POST", clm.PathKeyInfo, `{"mode":"create",`+w.auth()+`,`+w.dev()+
				`,"alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, 201, 0)
			keys[out["keynumber"].(string)] = out["commonkey"].(string)
		}
		getKey := func(k string) string {
			return `{"mode":"get",` + w.auth() + `,` + w.dev() + `,"keynumber":"` + k + `","filepath":"/f"}`
		}
		updates := 0
		for k, value := range keys {
			up, del := together(a, other, clm.PathKeyInfo,
				`{"mode":"update",`+w.auth()+`,`+w.dev()+`,"keynumber":"`+k+`","filepath":"/f"}`,
				`{"mode":"delete",`+w.auth()+`,`+w.dev()+`,"keynumber":"`+k+`","filepath":"/f","commonkey":"`+value+`"}`)
			if up.err != nil || del.err != nil {
				t.Fatalf("key %s: update %v, delete %v", k, up.err, del.err)
			}
			switch {
			case up.status == 200 && del.status == 403 && del.code == 1504:
				updates++
				a.mustCall(t, "POST", clm.PathKeyInfo, getKey(k), 403, 1504)
				a.mustCall(t, "POST", clm.PathKeyInfo, getKey(up.answer["keynumber"].(string)), 200, 0)
			case del.status == 200 && up.status == 404 && up.code == 1501:
				a.mustCall(t, "POST", clm.PathKeyInfo, getKey(k), 404, 1501)
			default:
				t.Fatalf("key %s: update %d errorcode %v, delete %d errorcode %v; want one 200 and the other 403 1504 or 404 1501",
					k, up.status, up.code, del.status, del.code)
			}
		}
		// world's two keys, the raced ones less the deleted, plus one per update.
		if got, want := a.owned(t, "key", w.keyid), 2+races-(races-updates)+updates; got != want {
			t.Errorf("%d keys stored after %d updates and %d deletes, want %d", got, updates, races-updates, want)
		}
		t.Logf("%d updates and %d deletes won", updates, races-updates)
	})
}

// TestRegisterRacingRegister: two key creates that register one new device name at once through
// two replicas never both register it: one answers 201, the other 400 1702 (the name is
// registered), and the store holds one device of that name.
func TestRegisterRacingRegister(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		loc := b.fresh(t)
		a, other := newRigAt(t, b, loc, "ecdsa"), newRigAt(t, b, loc, "ecdsa")
		w := a.world(t)
		before := a.owned(t, "device", w.keyid)
		for i := 0; i < races; i++ {
			body := `{"mode":"create",` + w.auth() + `,"devicename":"twin` + fmt.Sprint(i) +
				`","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`
			x, y := together(a, other, clm.PathKeyInfo, body, body)
			if x.err != nil || y.err != nil {
				t.Fatalf("device twin%d: %v, %v", i, x.err, y.err)
			}
			if x.status == 400 && x.code == 1702 {
				x, y = y, x
			}
			if x.status != 201 || y.status != 400 || y.code != 1702 {
				t.Fatalf("device twin%d: %d errorcode %v and %d errorcode %v; want one 201 and one 400 1702",
					i, x.status, x.code, y.status, y.code)
			}
		}
		if got := a.owned(t, "device", w.keyid); got != before+races {
			t.Errorf("%d devices stored after %d registrations, want %d", got, races, before+races)
		}
	})
}

// TestDeleteIDRacingCertChanges: an ID's delete sent at once with updates and a create of its
// certificates through another replica never leaves one of its certificates valid: after the
// delete, every certificate stored for the ID is in the CRL, and a change that answered 201 or
// 200 committed before the delete (its certificate is in the CRL too).
func TestDeleteIDRacingCertChanges(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		loc := b.fresh(t)
		a, other := newRigAt(t, b, loc, "ecdsa"), newRigAt(t, b, loc, "ecdsa")
		changed := 0
		for round := 0; round < races; round++ {
			w := a.world(t)
			update := func(c string) string {
				return `{"mode":"update",` + w.auth() + `,` + w.dev() + `,"keynumber":"` + c + `","catype":"ca1","passphrase":"p","filepath":"/k"}`
			}
			create := `{"mode":"create",` + w.auth() + `,` + w.dev() +
				`,"certmode":"client","catype":"ca1","clientsubject":"/CN=edge","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`
			// the certificates that stay valid unless revoked: the raced ones until replaced
			valid := []string{a.serialOf(t, w, w.cert1), a.serialOf(t, w, w.cert2)}
			var start, done sync.WaitGroup
			outs := make([]outcome, 4)
			send := func(r *rig, path, body string, o *outcome) {
				defer done.Done()
				start.Wait()
				o.status, o.answer, o.err = r.post(path, body)
			}
			start.Add(1)
			done.Add(len(outs))
			go send(a, clm.PathIDInfo, `{"mode":"delete",`+w.auth()+`}`, &outs[0])
			go send(other, clm.PathCredInfo, update(w.cert1), &outs[1])
			go send(other, clm.PathCredInfo, update(w.cert2), &outs[2])
			go send(other, clm.PathCredInfo, create, &outs[3])
			start.Done()
			done.Wait()
			stored := 2
			for i, o := range outs {
				if o.err != nil || o.status >= 500 || (i == 0 && o.status != 200) {
					t.Fatalf("round %d, request %d: %d %v %v", round, i, o.status, o.answer, o.err)
				}
				if i == 0 || o.status/100 != 2 {
					continue
				}
				changed++
				stored++
				if i < 3 {
					valid[i-1] = "" // updated: superseded, not revoked
				}
				valid = append(valid, o.answer["clientserial"].(string))
			}
			l := a.crl(t)
			for _, serial := range valid {
				if serial != "" && !lists(l, serial) {
					t.Errorf("round %d: certificate %s of the deleted ID is not in the CRL", round, serial)
				}
			}
			if got := a.owned(t, "cert", w.keyid); got != stored {
				t.Errorf("round %d: %d certificates stored for the ID, want %d (2 and %d changes answered)", round, got, stored, stored-2)
			}
		}
		t.Logf("%d of %d certificate changes committed before the delete", changed, 3*races)
	})
}
