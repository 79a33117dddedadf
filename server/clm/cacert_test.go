package clm_test

import (
	"bytes"
	"encoding/base64"
	"encoding/pem"
	"testing"

	"github.com/shekit/shekit/server/clm"
)

// TestCACertInEachFormat: the CA certificate a CredInfo create or get answers is the CLM's CA,
// in PEM (the default) and in DER (base64), on a new store and on the same store opened again.
func TestCACertInEachFormat(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newRig(t, b, "ecdsa")
		again := newRigAt(t, b, r.loc, "ecdsa")
		for _, r := range []*rig{r, again} {
			want := r.svc.CACert().Raw
			keyid, key := r.newID(t, "t")
			auth := `"keyid":"` + keyid + `","key":"` + key + `"`
			for _, format := range []string{"pem", "der"} {
				out := r.mustCall(t, "POST", clm.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"d-`+format+`","certmode":"caonly","catype":"CA","cacerttype":"`+format+`","keyfilepath":"/tmp/key","cafilepath":"/c"}`, 201, 0)
				get := r.mustCall(t, "POST", clm.PathCredInfo, `{"mode":"get",`+auth+`,"deviceid":"`+out["deviceid"].(string)+`","devicename":"d-`+format+`","certserial":"`+out["caserial"].(string)+`","catype":"CA","certtype":"`+format+`","filepath":"/c"}`, 200, 0)
				for _, a := range []map[string]any{out, get} {
					var der []byte
					if format == "pem" {
						if block, _ := pem.Decode([]byte(a["cacert"].(string))); block != nil && block.Type == "CERTIFICATE" {
							der = block.Bytes
						}
					} else {
						der, _ = base64.StdEncoding.DecodeString(a["cacert"].(string))
					}
					if !bytes.Equal(der, want) || a["cacerttype"] != format {
						t.Errorf("%s: cacert %.60q (%v), want the CA's certificate", format, a["cacert"], a["cacerttype"])
					}
				}
			}
		}
	})
}
