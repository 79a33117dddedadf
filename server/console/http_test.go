package console_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// signIn signs a client with a cookie jar in through the sign-in form and returns it.
func signIn(t testing.TB, base, token string, client *http.Client) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	client.Jar = jar
	csrf := formCSRF(t, client, base+"/console/login")
	resp, err := client.PostForm(base+"/console/login", url.Values{"csrf": {csrf}, "token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/console/suppliers" {
		t.Fatalf("sign-in: %s at %s", resp.Status, resp.Request.URL)
	}
	return client
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// formCSRF reads a page and returns the CSRF token of its first form.
func formCSRF(t testing.TB, client *http.Client, u string) string {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := csrfField.FindSubmatch(body)
	if m == nil {
		t.Fatalf("%s: no CSRF field (%s)", u, resp.Status)
	}
	return string(m[1])
}

// TestNoConsoleWithoutAdminToken: without an admin token every console path is 404.
func TestNoConsoleWithoutAdminToken(t *testing.T) {
	_, ts := consoleServer(t, "")
	for _, p := range []string{"/console/", "/console/login", "/console/suppliers", "/console/static/console.css"} {
		resp, err := http.Get(ts.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %s, want 404", p, resp.Status)
		}
	}
}

// TestSignInAndHeaders: the sign-in refuses a form without its CSRF value and a wrong token;
// every answer has the strict CSP; pages need a session; the session cookie is HttpOnly,
// SameSite=Strict and, over TLS, Secure.
func TestSignInAndHeaders(t *testing.T) {
	token := randomHex(32)
	srv, _ := consoleServer(t, token)
	ts := httptest.NewTLSServer(srv.Handler())
	defer ts.Close()
	client := ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Get(ts.URL + "/console/suppliers")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("a page without a session: %s to %q", resp.Status, resp.Header.Get("Location"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	resp, err = client.PostForm(ts.URL+"/console/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a sign-in without the form's CSRF value: %s, want 403", resp.Status)
	}
	signIn(t, ts.URL, token, &http.Client{Transport: client.Transport})
	jar, _ := cookiejar.New(nil)
	client.Jar = jar
	csrf := formCSRF(t, client, ts.URL+"/console/login")
	resp, err = client.PostForm(ts.URL+"/console/login", url.Values{"csrf": {csrf}, "token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "shekit_console" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || !session.Secure || session.SameSite != http.SameSiteStrictMode || session.MaxAge <= 0 {
		t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict, expiring", session)
	}
}

// TestAuditExports: the CSV and JSONL exports hold what the filter selects, newest first, with
// the audit log's fields; a bad filter is a 400.
func TestAuditExports(t *testing.T) {
	token := randomHex(32)
	srv, ts := consoleServer(t, token)
	client := signIn(t, ts.URL, token, &http.Client{})
	seedAudit(t, srv, 3)
	resp, err := client.Get(ts.URL + "/console/audit.jsonl?action=issue:EcuMasterKey")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if resp.StatusCode != http.StatusOK || len(lines) != 3 {
		t.Fatalf("JSONL: %s, %d lines: %s", resp.Status, len(lines), body)
	}
	var first, last struct {
		Seq    int64
		Action string
		UID    string
	}
	json.Unmarshal([]byte(lines[0]), &first)
	json.Unmarshal([]byte(lines[2]), &last)
	if first.Seq <= last.Seq || first.Action != "issue:EcuMasterKey" || first.UID != "000100010000000000000000000003" {
		t.Fatalf("JSONL not newest first or wrong entries: %s", body)
	}
	resp, err = client.Get(ts.URL + "/console/audit.csv?uid=000100010000000000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	rows := strings.Split(strings.TrimSpace(string(body)), "\n")
	if resp.StatusCode != http.StatusOK || len(rows) != 2 || rows[0] != "seq,at,actor,action,uid,keyId,counter,outcome,message,device,keynumber" ||
		!strings.Contains(rows[1], ",issue:EcuMasterKey,000100010000000000000000000001,1,1,issued,") {
		t.Fatalf("CSV: %s\n%s", resp.Status, body)
	}
	resp, err = client.Get(ts.URL + "/console/audit.csv?from=yesterday")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("a bad filter: %s, want 400", resp.Status)
	}
}

// TestSignOut: signing out ends the session server-side: its cookie, replayed, no longer signs in.
func TestSignOut(t *testing.T) {
	token := randomHex(32)
	_, ts := consoleServer(t, token)
	client := signIn(t, ts.URL, token, &http.Client{})
	u, _ := url.Parse(ts.URL + "/console/")
	var session *http.Cookie
	for _, c := range client.Jar.Cookies(u) {
		if c.Name == "shekit_console" {
			session = c
		}
	}
	if session == nil {
		t.Fatal("no session cookie after the sign-in")
	}
	csrf := formCSRF(t, client, ts.URL+"/console/suppliers")
	resp, err := client.PostForm(ts.URL+"/console/logout", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/console/suppliers", nil)
	req.AddCookie(session)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/login" {
		t.Fatalf("the ended session's cookie: %s to %q, want the sign-in", resp.Status, resp.Header.Get("Location"))
	}
}
