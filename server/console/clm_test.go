package console_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/shekit/shekit/openapi/clmwire"
	"github.com/shekit/shekit/server/reference"
)

// clmCall sends a CLM API request with the demo license and returns the answer's fields.
func clmCall(t *testing.T, base, path, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	req.SetBasicAuth(clmwire.LicenseUser, reference.DemoLicense)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("CLM %s: %s, %v (%v)", path, resp.Status, out, err)
	}
	return out
}

// pemBody returns the base64 lines of a PEM block, joined (a secret to look for in pages).
func pemBody(p string) string {
	lines := strings.Split(strings.TrimSpace(p), "\n")
	if len(lines) < 3 {
		return p
	}
	return lines[1]
}

// TestCLMPagesInChromium: the CLM's IDs, devices and certificates are listed without their
// passwords, device keys or private keys; a certificate is revoked after a confirmation and
// is then in the CRL the console shows.
func TestCLMPagesInChromium(t *testing.T) {
	adminToken := randomHex(32)
	_, ts := consoleServer(t, adminToken)
	id := clmCall(t, ts.URL, clmwire.PathIDInfo, `{"mode":"create","tenantid":"tenant01","alias":"Line 3"}`)
	auth := `"keyid":"` + id["keyid"].(string) + `","key":"` + id["key"].(string) + `"`
	cert := clmCall(t, ts.URL, clmwire.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"edge","certmode":"client","catype":"ca1","clientsubject":"/CN=edge","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`)
	b := newBrowser(t, ts.URL, 1280)
	b.secrets = append([]string{adminToken, id["key"].(string), cert["devicekey"].(string), pemBody(cert["privatekey"].(string))}, demoSecrets...)
	b.visit("/console/login")
	b.run("sign in", chromedp.SendKeys(chromedp.CSS("#token"), adminToken), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#add-supplier")))

	if html := b.visit("/console/clm/ids"); !strings.Contains(html, "tenant01") || !strings.Contains(html, "Line 3") {
		t.Fatal("the IDs page lacks the ID")
	}
	if html := b.visit("/console/clm/devices"); !strings.Contains(html, ">edge<") {
		t.Fatal("the devices page lacks the device")
	}
	html := b.visit("/console/clm/certs")
	serial := cert["clientserial"].(string)
	if !strings.Contains(html, "CN=edge") || !strings.Contains(strings.ToUpper(html), strings.ToUpper(serial)) {
		t.Fatalf("the certificates page lacks the certificate %s", serial)
	}
	b.shot("clm-certs")
	b.visit("/console/clm/keys")
	if crl := b.visit("/console/clm"); strings.Contains(strings.ToUpper(crl), strings.ToUpper(serial)) {
		t.Fatal("the CRL lists the certificate before its revocation")
	}
	b.run("ask to revoke", chromedp.Navigate(ts.URL+"/console/clm/certs"), chromedp.Click(chromedp.CSS("a.revoke")),
		chromedp.WaitVisible(chromedp.CSS("#question")))
	b.page("revoke confirmation")
	b.run("revoke", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#done")))
	b.page("CLM after the revocation")
	crl := b.text("#crl")
	if !strings.Contains(strings.ToUpper(crl), strings.TrimLeft(strings.ToUpper(serial), "0")) {
		t.Fatalf("the CRL %q lacks the revoked serial %s", crl, serial)
	}
	b.shot("clm")
	if html := b.visit("/console/clm/certs"); !strings.Contains(html, "revoked") || strings.Contains(html, `class="revoke"`) {
		t.Fatal("the certificate is not shown revoked (or still offers a revocation)")
	}
	if html := b.visit("/console/audit?action=clm:cert-revoke"); !strings.Contains(html, "clm:console") {
		t.Fatal("the revocation is not in the audit log as the console's")
	}
}
