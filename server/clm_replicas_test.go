package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/kek"
	"github.com/shekit/shekit/server/reference"
	"github.com/shekit/shekit/server/store"
)

// startServersTogether starts n server processes on dir at once (with extra arguments), and
// returns their URLs once all listen.
func startServersTogether(t *testing.T, n int, dir string, extra ...string) []string {
	t.Helper()
	type launched struct {
		cmd    *exec.Cmd
		out    io.Reader
		stderr *bytes.Buffer
	}
	var all []launched
	t.Cleanup(func() {
		for _, l := range all {
			l.cmd.Process.Kill()
			l.cmd.Wait()
		}
	})
	for range n {
		cmd, out, stderr := launchServer(t, dir, extra...)
		all = append(all, launched{cmd, out, stderr})
	}
	var urls []string
	for _, l := range all {
		urls = append(urls, serverURL(t, l.cmd, l.out, l.stderr))
	}
	return urls
}

// clmCall sends a CLM request with the demo license and decodes the JSON answer.
func clmCall(t *testing.T, method, url, body string, status int) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.SetBasicAuth(clm.LicenseUser, reference.DemoLicense)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != status {
		t.Fatalf("%s %s %s: %d %v (%v), want %d", method, url, body, resp.StatusCode, out, err, status)
	}
	return out
}

// TestTwoServersCLMOnePostgres: two server processes starting together on one fresh PostgreSQL
// database use one CA, the one stored; a certificate created (with a device name) through one and
// revoked through the other is in both servers' CRLs, signed by that CA.
func TestTwoServersCLMOnePostgres(t *testing.T) {
	base := os.Getenv("SHEKIT_TEST_POSTGRES")
	if base == "" {
		t.Skip("SHEKIT_TEST_POSTGRES is not set (.ci/run starts a PostgreSQL and sets it)")
	}
	db := freshPostgresDatabase(t, base)
	dir := t.TempDir()
	k, err := kek.Load(filepath.Join(dir, "kek.key")) // the replicas share one key-encryption key
	if err != nil {
		t.Fatal(err)
	}
	// An RSA-2048 CA takes the longest to make: the two first starts overlap.
	urls := startServersTogether(t, 2, dir, "-db", db, "-clm-key", "ecdsa", "-clm-ca-key", "rsa")
	a, b := urls[0], urls[1]
	ca := storedCLMCA(t, db, k)

	id := clmCall(t, "POST", a+clm.PathIDInfo, `{"mode":"create","tenantid":"t1","alias":"a"}`, 201)
	auth := `"keyid":"` + id["keyid"].(string) + `","key":"` + id["key"].(string) + `"`
	create := func(url, name string) map[string]any {
		return clmCall(t, "POST", url+clm.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"`+name+
			`","certmode":"client","catype":"ca1","clientsubject":"/CN=`+name+`","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`, 201)
	}
	fromA, fromB := create(a, "edge-a"), create(b, "edge-b")
	for _, out := range []map[string]any{fromA, fromB} {
		if got := pemDER(t, out["cacert"].(string)); !bytes.Equal(got, ca.Raw) {
			t.Fatal("a server answers a CA certificate that is not the stored CA")
		}
		cert, err := x509.ParseCertificate(pemDER(t, out["clientcert"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.CheckSignatureFrom(ca); err != nil {
			t.Fatalf("a client certificate is not signed by the stored CA: %v", err)
		}
	}
	clmCall(t, "POST", a+clm.PathCredInfo, `{"mode":"revoke",`+auth+`,"deviceid":"`+fromB["deviceid"].(string)+
		`","devicename":"edge-b","keynumber":"`+fromB["clientkeynumber"].(string)+`","catype":"ca1"}`, 200)
	for _, url := range urls {
		l := fetchCRL(t, url)
		if err := l.CheckSignatureFrom(ca); err != nil {
			t.Fatalf("%s: the CRL is not signed by the stored CA: %v", url, err)
		}
		if len(l.RevokedCertificateEntries) != 1 || !strings.EqualFold(l.RevokedCertificateEntries[0].SerialNumber.Text(16), strings.TrimLeft(fromB["clientserial"].(string), "0")) {
			t.Fatalf("%s: the CRL lists %v, want serial %s", url, l.RevokedCertificateEntries, fromB["clientserial"])
		}
	}
}

// storedCLMCA returns the CLM's CA certificate as the database holds it.
func storedCLMCA(t *testing.T, db string, k *kek.KEK) *x509.Certificate {
	t.Helper()
	st, err := store.OpenPostgres(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var rec struct{ DER []byte }
	err = st.View(context.Background(), func(tx clm.Tx) error {
		o, ok, err := tx.Get("ca", "ca1")
		if err != nil || !ok {
			t.Fatalf("no CA stored: %v", err)
		}
		data, err := k.Open("clm:ca:ca1", o.Value)
		if err != nil {
			return err
		}
		return json.Unmarshal(data, &rec)
	})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func pemDER(t *testing.T, text string) []byte {
	t.Helper()
	b, _ := pem.Decode([]byte(text))
	if b == nil {
		t.Fatalf("not PEM: %q", text)
	}
	return b.Bytes
}

func fetchCRL(t *testing.T, url string) *x509.RevocationList {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/SWCLM/v10/crl/ca1", nil)
	req.SetBasicAuth(clm.LicenseUser, reference.DemoLicense)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("%s: %d %q: %v", url, resp.StatusCode, der, err)
	}
	return l
}
