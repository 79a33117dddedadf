package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/server/kms"
)

// TestRegistryChangesReachEveryReplica: two servers on one PostgreSQL, both started with the same
// registry file. A token rotated and then a supplier deleted through replica A's admin API are in
// force on replica B within a second (the refresh is every 500 ms; the test waits up to 10 s on
// a loaded machine and reports what it measured).
func TestRegistryChangesReachEveryReplica(t *testing.T) {
	base := os.Getenv("SHEKIT_TEST_POSTGRES")
	if base == "" {
		t.Skip("SHEKIT_TEST_POSTGRES is not set (.ci/run starts a PostgreSQL and sets it)")
	}
	const admin = "5d0b7c2e9a41f3866e1c0d4b72a9f35e"
	db := freshPostgresDatabase(t, base)
	dir := t.TempDir()
	supplier := func(token string) string {
		return `{"id":"001D","phase":"Dev","secretKey":"` + strings.Repeat("1d", 16) + `","token":"` + token +
			`","ecuTypes":[{"type":"0001","keyIds":["1","D"]}]}`
	}
	regFile := filepath.Join(dir, "registry.json")
	os.WriteFile(regFile, []byte(`{"suppliers":[`+supplier("token-one-001d")+`]}`), 0o600)
	args := []string{"-db", db, "-auth", "bearer", "-admin-token", admin, "-registry", regFile}
	a, urlA := startServer(t, dir, args...)
	b, urlB := startServer(t, dir, args...)
	defer func() { a.Process.Kill(); b.Process.Kill(); a.Wait(); b.Wait() }()

	client := &http.Client{Timeout: 30 * time.Second}
	provision := func(url, token string) int {
		req, _ := http.NewRequest("POST", url+kms.PathProvisioning, strings.NewReader(
			`{"ProvisioningType":"SupplierSymmKey","KeyID":"D","EcuID":"0102030405060708010203040001001D0102030405060708090A0B"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env kms.Envelope
		json.NewDecoder(resp.Body).Decode(&env)
		if resp.StatusCode == 200 && env.ResultStatus != "Success" {
			t.Fatalf("%+v", env)
		}
		return resp.StatusCode
	}
	adminCall := func(method, path, body string) {
		req, _ := http.NewRequest(method, urlA+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("admin %s %s on replica A: %v %v", method, path, resp, err)
		}
		resp.Body.Close()
	}
	// waitFor polls replica B until token gets want, and returns how long that took.
	waitFor := func(token string, want int) time.Duration {
		start := time.Now()
		for {
			if provision(urlB, token) == want {
				return time.Since(start)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("replica B still does not answer %d for the token 10 s after the change on replica A", want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if code := provision(urlB, "token-one-001d"); code != 200 {
		t.Fatalf("before the change: %d", code)
	}
	adminCall("PUT", "/admin/suppliers/001D", supplier("token-two-001d"))
	rotated := waitFor("token-one-001d", 401)
	if code := provision(urlB, "token-two-001d"); code != 200 {
		t.Fatalf("the new token on replica B: %d", code)
	}
	adminCall("DELETE", "/admin/suppliers/001D", "")
	deleted := waitFor("token-two-001d", 401)
	t.Logf("replica B refused the old token %v after the rotation and the deleted supplier %v after the delete", rotated.Round(time.Millisecond), deleted.Round(time.Millisecond))
}

// TestAdminEditsOnTwoReplicasBuildOnEachOther: supplier 00AA added through replica A, then 00BB
// through replica B at once: B's edit starts from the registry A saved, not from the one B had
// in use, so both suppliers stay. The periodic refresh is off here (1 h): only the refresh
// before an edit can have brought 00AA to B.
func TestAdminEditsOnTwoReplicasBuildOnEachOther(t *testing.T) {
	base := os.Getenv("SHEKIT_TEST_POSTGRES")
	if base == "" {
		t.Skip("SHEKIT_TEST_POSTGRES is not set (.ci/run starts a PostgreSQL and sets it)")
	}
	const admin = "5d0b7c2e9a41f3866e1c0d4b72a9f35e"
	db := freshPostgresDatabase(t, base)
	dir := t.TempDir()
	args := []string{"-db", db, "-admin-token", admin, "-registry-refresh", "1h"}
	a, urlA := startServer(t, dir, args...)
	b, urlB := startServer(t, dir, args...)
	defer func() { a.Process.Kill(); b.Process.Kill(); a.Wait(); b.Wait() }()
	client := &http.Client{Timeout: 30 * time.Second}
	adminCall := func(url, method, path, body string) map[string][]map[string]any {
		req, _ := http.NewRequest(method, url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("admin %s %s: %v %v", method, path, resp, err)
		}
		defer resp.Body.Close()
		var reg map[string][]map[string]any
		json.NewDecoder(resp.Body).Decode(&reg)
		return reg
	}
	supplier := func(id string) string {
		return `{"id":"` + id + `","phase":"Dev","secretKey":"` + strings.Repeat("ab", 16) + `","ecuTypes":[{"type":"0001","keyIds":["1"]}]}`
	}
	adminCall(urlA, "PUT", "/admin/suppliers/00AA", supplier("00AA"))
	adminCall(urlB, "PUT", "/admin/suppliers/00BB", supplier("00BB"))
	ids := map[string]bool{}
	for _, s := range adminCall(urlB, "GET", "/admin/registry", "")["suppliers"] {
		ids[s["id"].(string)] = true
	}
	if !ids["00AA"] || !ids["00BB"] || !ids["001D"] {
		t.Fatalf("replica B's registry after both edits: %v; want 001D, 0001, 00AA and 00BB", ids)
	}
}
