package clm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
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

// memStore is an in-memory clm.Store: a transaction works on a copy that replaces the data when
// it succeeds. down makes every call fail (a store that cannot be reached).
type memStore struct {
	mu    sync.Mutex
	objs  map[[2]string]clm.Object
	seq   map[string]int64
	audit []clm.AuditEntry
	down  bool
}

func newMemStore() *memStore {
	return &memStore{objs: map[[2]string]clm.Object{}, seq: map[string]int64{}}
}

var errDown = errors.New("store unreachable")

func (m *memStore) Ping(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	return nil
}

func (m *memStore) CLM(_ context.Context, fn func(clm.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	tx := &memTx{objs: maps.Clone(m.objs), seq: maps.Clone(m.seq)}
	if err := fn(tx); err != nil {
		return err
	}
	m.objs, m.seq = tx.objs, tx.seq
	m.audit = append(m.audit, tx.audit...)
	return nil
}

// auditLog returns the audit entries of the committed changes.
func (m *memStore) auditLog() []clm.AuditEntry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.audit)
}

// View runs fn like a change that is then thrown away.
func (m *memStore) View(ctx context.Context, fn func(clm.Tx) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errDown
	}
	return fn(&memTx{objs: maps.Clone(m.objs), seq: maps.Clone(m.seq)})
}

type memTx struct {
	objs  map[[2]string]clm.Object
	seq   map[string]int64
	audit []clm.AuditEntry
}

func (t *memTx) Audit(e clm.AuditEntry) error {
	t.audit = append(t.audit, e)
	return nil
}

func (t *memTx) Get(kind, id string) (clm.Object, bool, error) {
	o, ok := t.objs[[2]string{kind, id}]
	return o, ok, nil
}

func (t *memTx) ByAlt(kind, alt string) (clm.Object, bool, error) {
	for k, o := range t.objs {
		if k[0] == kind && o.Alt == alt {
			return o, true, nil
		}
	}
	return clm.Object{}, false, nil
}

func (t *memTx) Put(o clm.Object) error {
	t.objs[[2]string{o.Kind, o.ID}] = o
	return nil
}

func (t *memTx) Delete(kind, id string) error {
	delete(t.objs, [2]string{kind, id})
	return nil
}

func (t *memTx) List(kind string) ([]clm.Object, error) {
	var out []clm.Object
	for k, o := range t.objs {
		if k[0] == kind {
			out = append(out, o)
		}
	}
	return out, nil
}

func (t *memTx) Next(seq string) (int64, error) {
	t.seq[seq]++
	return t.seq[seq], nil
}

const license = "test-license"

// rig is a CLM on an in-memory store behind an httptest server. Its client checks every
// answer against openapi/clm.yaml (requests too, in call: every request the server accepts).
type rig struct {
	*httptest.Server
	client *http.Client
	spec   *openapi.Spec
	store  *memStore
	kek    *kek.KEK
	svc    *clm.Service
	now    time.Time
	mu     sync.Mutex
}

func newRig(t testing.TB, algo string) *rig {
	t.Helper()
	r := &rig{store: newMemStore(), kek: kek.New([32]byte{7}), now: time.Now(), spec: loadContract(t)}
	r.client, _ = openapitest.NewClient(t, r.spec, true)
	svc, err := clm.New(context.Background(), r.store, r.kek, clm.Config{License: license, KeyAlgorithm: algo, PoolSize: -1,
		Now: func() time.Time { r.mu.Lock(); defer r.mu.Unlock(); return r.now }}, nil)
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
