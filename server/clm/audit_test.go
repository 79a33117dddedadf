package clm_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shekit/shekit/server/clm"
)

// TestAudit: every change of a device's life is in the audit log, in order, with the ID that made
// it, and no secret the answers carried is in any entry; a refused change leaves none.
func TestAudit(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newRig(t, b, "ecdsa")
		keyid, key := r.newID(t, "tenant01")
		auth := `"keyid":"` + keyid + `","key":"` + key + `"`
		cert := r.mustCall(t, "POST", clm.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"edge","certmode":"client","catype":"ca1","clientsubject":"/CN=edge","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`, 201, 0)
		dev := `"deviceid":"` + cert["deviceid"].(string) + `","devicename":"edge"`
		before := len(r.auditLog(t))
		r.mustCall(t, "POST", clm.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"edge","certmode":"client","catype":"ca1","clientsubject":"/CN=edge","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`, 400, 1702)
		if len(r.auditLog(t)) != before {
			t.Fatalf("a refused change was audited: %+v", r.auditLog(t)[before:])
		}
		updated := r.mustCall(t, "POST", clm.PathCredInfo, `{"mode":"update",`+auth+`,`+dev+`,"keynumber":"`+cert["clientkeynumber"].(string)+`","catype":"ca1","passphrase":"p","filepath":"/k"}`, 200, 0)
		r.mustCall(t, "POST", clm.PathCredInfo, `{"mode":"revoke",`+auth+`,`+dev+`,"keynumber":"`+updated["clientkeynumber"].(string)+`","catype":"ca1"}`, 200, 0)
		k := r.mustCall(t, "POST", clm.PathKeyInfo, `{"mode":"create",`+auth+`,`+dev+`,"alias":"k","keytype":"TWINE","keylength":"80","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, 201, 0)
		k2 := r.mustCall(t, "POST", clm.PathKeyInfo, `{"mode":"update",`+auth+`,`+dev+`,"keynumber":"`+k["keynumber"].(string)+`","filepath":"/f"}`, 200, 0)
		r.mustCall(t, "POST", clm.PathKeyInfo, `{"mode":"delete",`+auth+`,`+dev+`,"keynumber":"`+k2["keynumber"].(string)+`","filepath":"/f","commonkey":"`+k2["commonkey"].(string)+`"}`, 200, 0)
		r.mustCall(t, "POST", clm.PathIDInfo, `{"mode":"delete",`+auth+`}`, 200, 0)

		device := cert["deviceid"].(string)
		want := []clm.AuditEntry{
			{Action: "clm:id-create", Message: "tenant tenant01"},
			{Action: "clm:device-register", Device: device},
			{Action: "clm:cert-create", Device: device, Number: number(t, cert["clientkeynumber"]), Message: "serial " + cert["clientserial"].(string)},
			{Action: "clm:cert-update", Device: device, Number: number(t, updated["clientkeynumber"]),
				Message: "serial " + updated["clientserial"].(string) + " replaces " + cert["clientserial"].(string)},
			{Action: "clm:cert-revoke", Device: device, Number: number(t, updated["clientkeynumber"]), Message: "serial " + updated["clientserial"].(string)},
			{Action: "clm:key-create", Device: device, Number: number(t, k["keynumber"]), Message: "TWINE-80"},
			{Action: "clm:key-update", Device: device, Number: number(t, k2["keynumber"]), Message: "replaces " + k["keynumber"].(string)},
			{Action: "clm:key-delete", Device: device, Number: number(t, k2["keynumber"])},
			{Action: "clm:id-delete"},
		}
		got := r.auditLog(t)
		if len(got) != len(want) {
			t.Fatalf("%d entries, want %d: %+v", len(got), len(want), got)
		}
		for i := range want {
			want[i].Actor = "clm:" + keyid
			if got[i] != want[i] {
				t.Errorf("entry %d: %+v, want %+v", i, got[i], want[i])
			}
		}
		secrets := []string{key, cert["devicekey"].(string), cert["privatekey"].(string), k["commonkey"].(string), k2["commonkey"].(string), `"p"`}
		log, _ := json.Marshal(got)
		for _, s := range secrets {
			if strings.Contains(string(log), s) {
				t.Errorf("the audit log holds the secret %q", s)
			}
		}
	})
}

// number reads a key number answered as a decimal string.
func number(t *testing.T, v any) int64 {
	t.Helper()
	var n int64
	if err := json.Unmarshal([]byte(v.(string)), &n); err != nil {
		t.Fatalf("keynumber %v: %v", v, err)
	}
	return n
}
