package clm_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shekit/shekit/server/clm"
)

// openssl runs the real openssl command and returns its output.
func openssl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestOpenSSLReadsWhatTheCLMIssues: every client certificate verifies against the CA with
// `openssl verify`, every PKCS#12 opens with `openssl pkcs12` (OpenSSL 3, without -legacy),
// every DER certificate reads with `openssl x509 -inform der`, and the CRL lists a revoked serial.
func TestOpenSSLReadsWhatTheCLMIssues(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		if _, err := exec.LookPath("openssl"); err != nil {
			t.Fatal("openssl is needed for this test (a Debian package on these machines)")
		}
		for _, algo := range []string{"rsa", "ecdsa"} {
			t.Run(algo, func(t *testing.T) {
				dir := t.TempDir()
				write := func(name, data string) string {
					p := filepath.Join(dir, name)
					os.WriteFile(p, []byte(data), 0o600)
					return p
				}
				r := newRig(t, b, algo)
				keyid, key := r.newID(t, "tenant01")
				create := func(format string) map[string]any {
					body := `{"mode":"create","keyid":"` + keyid + `","key":"` + key + `","devicename":"dev-` + format +
						`","certmode":"client","catype":"ca1","clientsubject":"/C=JP/O=NEC/CN=AP1-` + format +
						`","keyfilepath":"/tmp/key","cafilepath":"/c.pem","clientfilepath":"/k.pem","clientcerttype":"` + format +
						`","passphrase":"p12-secret"}`
					return r.mustCall(t, "POST", clm.PathCredInfo, body, 201, 0)
				}
				pemOut := create("pem")
				ca := write("ca.pem", pemOut["cacert"].(string))
				client := write("client.pem", pemOut["clientcert"].(string))
				if out := openssl(t, "verify", "-CAfile", ca, client); !strings.Contains(out, ": OK") {
					t.Fatalf("verify: %s", out)
				}
				write("key.pem", pemOut["privatekey"].(string))
				openssl(t, "pkey", "-in", filepath.Join(dir, "key.pem"), "-noout")

				derOut := create("der")
				der, err := base64.StdEncoding.DecodeString(derOut["clientcert"].(string))
				if err != nil {
					t.Fatal(err)
				}
				derFile := write("client.der", string(der))
				if out := openssl(t, "x509", "-inform", "der", "-in", derFile, "-noout", "-subject"); !strings.Contains(out, "AP1-der") {
					t.Fatalf("x509 -inform der: %s", out)
				}
				pemFromDER := write("client-der.pem", openssl(t, "x509", "-inform", "der", "-in", derFile))
				openssl(t, "verify", "-CAfile", ca, pemFromDER)

				p12Out := create("p12")
				if _, ok := p12Out["privatekey"]; ok {
					t.Fatal("a PKCS#12 answer repeats the private key it carries")
				}
				p12, err := base64.StdEncoding.DecodeString(p12Out["clientcert"].(string))
				if err != nil {
					t.Fatal(err)
				}
				p12File := write("client.p12", string(p12))
				if out := openssl(t, "pkcs12", "-info", "-nokeys", "-in", p12File, "-passin", "pass:p12-secret"); !strings.Contains(out, "AP1-p12") {
					t.Fatalf("pkcs12: %s", out)
				}

				// Revoke the pem certificate; the CRL lists its serial.
				serial := pemOut["clientserial"].(string)
				r.mustCall(t, "POST", clm.PathCredInfo, `{"mode":"revoke","keyid":"`+keyid+`","key":"`+key+`","deviceid":"`+
					pemOut["deviceid"].(string)+`","devicename":"dev-pem","keynumber":"`+pemOut["clientkeynumber"].(string)+`","catype":"ca1"}`, 200, 0)
				req, _ := http.NewRequest("GET", r.URL+"/SWCLM/v10/crl/ca1", nil)
				req.SetBasicAuth(clm.LicenseUser, license)
				resp, err := r.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				crl, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				out := openssl(t, "crl", "-inform", "der", "-in", write("ca.crl", string(crl)), "-noout", "-text", "-CAfile", ca)
				if !strings.Contains(strings.ToUpper(out), serial) || !strings.Contains(out, "Next Update") {
					t.Fatalf("CRL does not list %s:\n%s", serial, out)
				}
				// A revoked certificate answers 1306 afterwards.
				r.mustCall(t, "POST", clm.PathCredInfo, `{"mode":"get","keyid":"`+keyid+`","key":"`+key+`","deviceid":"`+
					pemOut["deviceid"].(string)+`","devicename":"dev-pem","keynumber":"`+pemOut["clientkeynumber"].(string)+
					`","catype":"ca1","filepath":"/k.pem"}`, 403, 1306)
			})
		}
	})
}
