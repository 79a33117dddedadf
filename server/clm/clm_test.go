package clm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shekit/shekit/openapi"
	"github.com/shekit/shekit/openapi/openapitest"
	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/kek"
)

// contract is openapi/clm.yaml, loaded once.
var contract = openapi.CLM

// loadContract returns the contract or ends the test.
func loadContract(t testing.TB) *openapi.Spec {
	t.Helper()
	spec, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

const license = "test-license"

// rig is a CLM on a store of a backend behind an httptest server. Its client checks every
// answer against openapi/clm.yaml (requests too, in call: every request the server accepts).
type rig struct {
	*httptest.Server
	client  *http.Client
	spec    *openapi.Spec
	backend backend
	loc     string // where the store's database is
	store   *faultyStore
	kek     *kek.KEK
	svc     *clm.Service
	now     time.Time
	mu      sync.Mutex
}

func newRig(t testing.TB, b backend, algo string, opts ...func(*clm.Config)) *rig {
	t.Helper()
	return newRigAt(t, b, b.fresh(t), algo, opts...)
}

// newRigAt is newRig on the database at loc, which another rig may share (a replica); opts
// change the CLM's configuration.
func newRigAt(t testing.TB, b backend, loc string, algo string, opts ...func(*clm.Config)) *rig {
	t.Helper()
	r := &rig{backend: b, loc: loc, store: &faultyStore{Store: b.open(t, loc)}, kek: kek.New([32]byte{7}), now: time.Now(), spec: loadContract(t)}
	r.client, _ = openapitest.NewClient(t, r.spec, true)
	cfg := clm.Config{License: license, KeyAlgorithm: algo, PoolSize: -1,
		Now: func() time.Time { r.mu.Lock(); defer r.mu.Unlock(); return r.now }}
	for _, o := range opts {
		o(&cfg)
	}
	svc, err := clm.New(context.Background(), r.store, r.kek, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.svc = svc
	mux := http.NewServeMux()
	svc.Register(mux)
	r.Server = httptest.NewServer(mux)
	t.Cleanup(func() { r.Close(); svc.Close() })
	return r
}

// auditLog returns the CLM's entries of the store's audit log, oldest first.
func (r *rig) auditLog(t testing.TB) []clm.AuditEntry {
	t.Helper()
	all, err := r.store.Audit(context.Background(), 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var out []clm.AuditEntry
	for _, e := range all {
		var n int64
		if e.KeyNumber != nil {
			n = *e.KeyNumber
		}
		if e.UID != "" || e.Counter != nil {
			t.Fatalf("a CLM audit entry in the KMS's columns: %+v", e)
		}
		out = append(out, clm.AuditEntry{Actor: e.Actor, Action: e.Action, Device: e.Device, Number: n, Message: e.Message})
	}
	return out
}

// advance moves the CLM's clock.
func (r *rig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

// call sends body (a JSON text, or nil for GET) with the license and decodes the answer.
func (r *rig) call(t testing.TB, method, path string, body string) (int, map[string]any) {
	t.Helper()
	var rd *strings.Reader
	if body != "" {
		rd = strings.NewReader(body)
	} else {
		rd = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, r.URL+path, rd)
	req.SetBasicAuth(clm.LicenseUser, license)
	req.Header.Set("Content-Type", "application/json")
	_, contractErr := r.spec.CheckRequest(req, []byte(body))
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode < 300 && contractErr != nil {
		t.Errorf("%s %s %s: accepted, but the request breaks openapi/clm.yaml: %v", method, path, body, contractErr)
	}
	defer resp.Body.Close()
	var out map[string]any
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %q", method, path, buf.String())
	}
	return resp.StatusCode, out
}

// mustCall requires the answer's status and errorcode.
func (r *rig) mustCall(t testing.TB, method, path, body string, status int, code float64) map[string]any {
	t.Helper()
	got, out := r.call(t, method, path, body)
	if got != status || out["errorcode"] != code {
		t.Fatalf("%s %s %s: status %d errorcode %v, want %d and %v (%v)", method, path, body, got, out["errorcode"], status, code, out)
	}
	return out
}

// newID issues an ID and returns keyid and key.
func (r *rig) newID(t testing.TB, tenant string) (string, string) {
	t.Helper()
	out := r.mustCall(t, "POST", clm.PathIDInfo, `{"mode":"create","tenantid":"`+tenant+`","alias":"DemoKey1"}`, 201, 0)
	return out["keyid"].(string), out["key"].(string)
}

// printed substitutes the document's example ID and password with issued ones.
func printed(example, keyid, key string) string {
	for _, id := range []string{`"00000000001"`, `"0000000001"`} {
		example = strings.ReplaceAll(example, `"keyid": `+id, `"keyid": "`+keyid+`"`)
	}
	return strings.ReplaceAll(example, `"cGFzc3dv"`, `"`+key+`"`)
}

// hasFields requires the answer to carry exactly the fields the document's example shows.
func hasFields(t *testing.T, what string, out map[string]any, fields ...string) {
	t.Helper()
	if len(out) != len(fields) {
		t.Errorf("%s: %d fields %v, want %v", what, len(out), keys(out), fields)
	}
	for _, f := range fields {
		if _, ok := out[f]; !ok {
			t.Errorf("%s: no field %s in %v", what, f, keys(out))
		}
	}
}

func keys(m map[string]any) []string {
	var k []string
	for f := range m {
		k = append(k, f)
	}
	return k
}
