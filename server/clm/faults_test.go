package clm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/vectors"
)

// edit changes a stored record: opens it with the KEK, lets fn change its fields, seals it again.
func (r *rig) edit(t *testing.T, kind, id string, fn func(map[string]any)) {
	t.Helper()
	err := r.store.CLM(context.Background(), func(tx clm.Tx) error {
		o, ok, err := tx.Get(kind, id)
		if err != nil || !ok {
			return fmt.Errorf("no %s %s: %v", kind, id, err)
		}
		data, err := r.kek.Open("clm:"+kind+":"+id, o.Value)
		if err != nil {
			return err
		}
		var m map[string]any
		json.Unmarshal(data, &m)
		fn(m)
		data, _ = json.Marshal(m)
		o.Value = r.kek.Seal("clm:"+kind+":"+id, data)
		return tx.Put(o)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// corrupt flips a bit of a stored record's sealed value.
func (r *rig) corrupt(t *testing.T, kind, id string) {
	t.Helper()
	err := r.store.CLM(context.Background(), func(tx clm.Tx) error {
		o, ok, err := tx.Get(kind, id)
		if err != nil || !ok {
			return fmt.Errorf("no %s %s: %v", kind, id, err)
		}
		o.Value[len(o.Value)-1] ^= 1
		return tx.Put(o)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// setSequence sets a sequence of the store, behind the store's back.
func (r *rig) setSequence(t *testing.T, name string, value int64) {
	t.Helper()
	_, err := r.backend.raw(t, r.loc).Exec(fmt.Sprintf(`INSERT INTO clm_seq (name, value) VALUES ('%s', %d)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value))
	if err != nil {
		t.Fatal(err)
	}
}

// world is an ID with a device holding two certificates and two keys.
type world struct {
	keyid, key, device, name string
	cert1, cert2, key1, key2 string
}

func (r *rig) world(t testing.TB) world {
	w := world{name: "edge"}
	w.keyid, w.key = r.newID(t, "t")
	cert := func() map[string]any {
		dev := `"devicename":"edge"`
		if w.device != "" {
			dev += `,"deviceid":"` + w.device + `"`
		}
		return r.mustCall(t, "POST", clm.PathCredInfo, `{"mode":"create","keyid":"`+w.keyid+`","key":"`+w.key+`",`+dev+
			`,"certmode":"client","catype":"ca1","clientsubject":"/CN=edge","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`, 201, 0)
	}
	out := cert()
	w.device, w.cert1 = out["deviceid"].(string), out["clientkeynumber"].(string)
	w.cert2 = cert()["clientkeynumber"].(string)
	key := func() string {
		return r.mustCall(t, "POST", clm.PathKeyInfo, `{"mode":"create","keyid":"`+w.keyid+`","key":"`+w.key+`","deviceid":"`+w.device+
			`","devicename":"edge","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, 201, 0)["keynumber"].(string)
	}
	w.key1, w.key2 = key(), key()
	return w
}

func (w world) auth() string { return `"keyid":"` + w.keyid + `","key":"` + w.key + `"` }

func (w world) dev() string { return `"deviceid":"` + w.device + `","devicename":"` + w.name + `"` }

// TestFaultCodes provokes every errorcode that only an internal fault, an edited record or the
// passing of time can cause ("fault" in vectors/clm-errorcodes.json), each with the HTTP status
// the document's table gives it.
func TestFaultCodes(t *testing.T) {
	provoke := map[int]func(t *testing.T, r *rig, w world) (string, string, string){
		1202: func(t *testing.T, r *rig, w world) (string, string, string) {
			r.edit(t, "id", w.keyid, func(m map[string]any) { m["status"] = "suspended" })
			return "POST", clm.PathIDInfo, `{"mode":"auth",` + w.auth() + `}`
		},
		1203: func(t *testing.T, r *rig, w world) (string, string, string) {
			r.advance(101 * 365 * 24 * time.Hour)
			return "POST", clm.PathIDInfo, `{"mode":"auth",` + w.auth() + `}`
		},
		1205: func(t *testing.T, r *rig, w world) (string, string, string) {
			r.setSequence(t, "keyid", 9999999999)
			return "POST", clm.PathIDInfo, `{"mode":"create","tenantid":"t","alias":"a"}`
		},
		1304: func(t *testing.T, r *rig, w world) (string, string, string) {
			r.edit(t, "cert", w.cert1, func(m map[string]any) { m["status"] = "suspended" })
			return "POST", clm.PathCredInfo, `{"mode":"get",` + w.auth() + `,` + w.dev() + `,"keynumber":"` + w.cert1 + `","catype":"ca1","filepath":"/k"}`
		},
		1305: func(t *testing.T, r *rig, w world) (string, string, string) {
			r.advance(400 * 24 * time.Hour)
			return "POST", clm.PathCredInfo, `{"mode":"get",` + w.auth() + `,` + w.dev() + `,"keynumber":"` + w.cert1 + `","catype":"ca1","filepath":"/k"}`
		},
		1308: func(t *testing.T, r *rig, w world) (string, string, string) {
			r.edit(t, "cert", w.cert2, func(m map[string]any) { m["notafter"] = 1 })
			return "POST", clm.PathCredInfo, `{"mode":"update",` + w.auth() + `,` + w.dev() + `,"keynumber":"` + w.cert1 + `","newkeynumber":"` + w.cert2 + `","catype":"ca1","filepath":"/k"}`
		},
		1506: func(t *testing.T, r *rig, w world) (string, string, string) {
			r.edit(t, "key", w.key2, func(m map[string]any) { m["expiration"] = 1 })
			return "POST", clm.PathKeyInfo, `{"mode":"update",` + w.auth() + `,` + w.dev() + `,"keynumber":"` + w.key1 + `","newkeynumber":"` + w.key2 + `","filepath":"/f"}`
		},
		1601: func(t *testing.T, r *rig, w world) (string, string, string) {
			r.store.down.Store(true)
			return "GET", clm.PathSystemStatus, ""
		},
		1602: func(t *testing.T, r *rig, w world) (string, string, string) {
			r.store.down.Store(true)
			return "POST", clm.PathIDInfo, `{"mode":"auth",` + w.auth() + `}`
		},
		1704: func(t *testing.T, r *rig, w world) (string, string, string) {
			r.edit(t, "device", w.device, func(m map[string]any) { m["status"] = "disabled" })
			return "POST", clm.PathKeyInfo, `{"mode":"get",` + w.auth() + `,` + w.dev() + `,"keynumber":"` + w.key1 + `","filepath":"/f"}`
		},
		1705: func(t *testing.T, r *rig, w world) (string, string, string) {
			r.edit(t, "device", w.device, func(m map[string]any) { m["expiration"] = 1 })
			return "POST", clm.PathKeyInfo, `{"mode":"get",` + w.auth() + `,` + w.dev() + `,"keynumber":"` + w.key1 + `","filepath":"/f"}`
		},
		2003: func(t *testing.T, r *rig, w world) (string, string, string) {
			r.corrupt(t, "id", w.keyid)
			return "POST", clm.PathIDInfo, `{"mode":"auth",` + w.auth() + `}`
		},
	}
	f, err := vectors.Load("clm-errorcodes.json")
	if err != nil {
		t.Fatal(err)
	}
	faults := 0
	for _, rec := range f.Records {
		var v struct {
			Errorcode int
			HTTP      int `json:"http"`
			Provoked  string
		}
		rec.Decode(&v)
		if v.Provoked != "fault" {
			continue
		}
		faults++
		fn, ok := provoke[v.Errorcode]
		if !ok {
			t.Errorf("errorcode %d is marked fault, but nothing here provokes it", v.Errorcode)
			continue
		}
		t.Run(strconv.Itoa(v.Errorcode), func(t *testing.T) {
			eachBackend(t, func(t *testing.T, b backend) {
				r := newRig(t, b, "ecdsa")
				w := r.world(t)
				method, path, body := fn(t, r, w)
				r.mustCall(t, method, path, body, v.HTTP, float64(v.Errorcode))
			})
		})
	}
	if faults != len(provoke) {
		t.Errorf("%d fault codes in the vector file, %d provoked here", faults, len(provoke))
	}
}
