package kms_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shekit/shekit/openapi"
	"github.com/shekit/shekit/openapi/openapitest"
	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vectors"
)

// The document's EcuIDs, corrected to 54 characters: ClusterID 0102030405060708, Model 01020304,
// then the UID (EcuType 0003 of supplier 0001, and EcuType 0001 of supplier 001D).
const (
	masterExampleEcuID   = "010203040506070801020304000300010000000000000000000002"
	supplierExampleEcuID = "0102030405060708010203040001001D0102030405060708090A0B"
)

type testServer struct {
	*httptest.Server
	ref    *reference.Server
	dir    string
	client *http.Client
}

// contract checks every exchange of the tests against openapi/kms.yaml.
var contract = openapi.KMS

// validatingClient returns a client whose exchanges must keep the contract: every violation of a
// response fails t, and of a request too unless badRequests (a test sending invalid requests on
// purpose).
func validatingClient(t *testing.T, badRequests bool) *http.Client {
	spec, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	c, _ := openapitest.NewClient(t, spec, badRequests)
	return c
}

func newServer(t *testing.T, dir string) *testServer {
	t.Helper()
	return newServerWith(t, reference.Config{DataDir: dir, CLMKeys: "ecdsa"})
}

func newServerWith(t *testing.T, cfg reference.Config) *testServer {
	t.Helper()
	if cfg.CLMKeys == "" {
		cfg.CLMKeys = "ecdsa" // these tests are about the KMS: a P-256 CA is made in a millisecond
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	dir := cfg.DataDir
	ref, err := reference.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: httptest.NewServer(ref.Handler()), ref: ref, dir: dir, client: validatingClient(t, false)}
	t.Cleanup(func() { ts.Close(); ref.Close() })
	return ts
}

func (ts *testServer) call(t *testing.T, method, path string, body map[string]string) (int, kms.Envelope) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, ts.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env kms.Envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, env
}

// provision POSTs and requires Success.
func (ts *testServer) provision(t *testing.T, body map[string]string) *kms.Records {
	t.Helper()
	status, env := ts.call(t, "POST", kms.PathProvisioning, body)
	if status != 200 || env.ResultStatus != "Success" || env.ResultReason != "" || env.ResultMessage != "" || env.Records == nil {
		t.Fatalf("POST %v: %d %+v", body, status, env)
	}
	return env.Records
}

func (ts *testServer) report(t *testing.T, path string, body map[string]string) {
	t.Helper()
	if status, env := ts.call(t, "PUT", path, body); status != 200 || env.ResultStatus != "Success" {
		t.Fatalf("PUT %v: %d %+v", body, status, env)
	}
}

func messages(t *testing.T, r *kms.Records) she.Messages {
	t.Helper()
	h := func(s string, n int) []byte {
		b, err := hex.DecodeString(s)
		if err != nil || len(b) != n || s != strings.ToLower(s) {
			t.Fatalf("%q is not %d bytes of lowercase hex", s, n)
		}
		return b
	}
	return she.Messages{M1: [16]byte(h(r.M1, 16)), M2: [32]byte(h(r.M2, 32)), M3: [16]byte(h(r.M3, 16)),
		M4: [32]byte(h(r.M4, 32)), M5: [16]byte(h(r.M5, 16))}
}

// open opens M1-M3 with authKey, requires a valid M3 and the expected fields, checks M4/M5 with
// the new key, and returns it.
func open(t *testing.T, r *kms.Records, authKey [16]byte, uid she.UID, keyID she.KeyID, counter uint32, flags string) [16]byte {
	t.Helper()
	m := messages(t, r)
	o := she.OpenM1M3(authKey, m.M1, m.M2, m.M3)
	wantFlags, _ := she.ParseFlags(flags)
	if !o.M3Valid || o.UID != uid || o.KeyID != keyID || o.AuthID != she.MasterECUKey || o.Counter != counter || o.Flags != wantFlags {
		t.Fatalf("opened %+v; want UID %v KeyID %v AuthID 1 counter %d flags %s and a valid M3", o, uid, keyID, counter, flags)
	}
	if p := she.VerifyM4M5(o.NewKey, m.M4, m.M5); !p.M4Valid || !p.M5Valid || p.Counter != counter || p.UID != uid {
		t.Fatalf("M4/M5 do not verify with the new key: %+v", p)
	}
	return o.NewKey
}

func uidOf(ecuID string) she.UID {
	id, _ := kms.ParseEcuID(ecuID)
	return id.UID
}

// TestDocumentMasterKeyExample sends the document's MasterECUKey request as printed (EcuID
// corrected): the all-zero initial master key opens M1-M3, counter 1, flags 01101; after PUT
// Success the SupplierSymmKey of the same ECU is authorized by the new master key.
func TestDocumentMasterKeyExample(t *testing.T) {
	ts := newServer(t, "")
	uid := uidOf(masterExampleEcuID)
	rec := ts.provision(t, map[string]string{"ProvisioningType": "EcuMasterKey", "KeyID": "1", "EcuID": masterExampleEcuID})
	if rec.KeyID != "1" || rec.KeySyncValue != "" {
		t.Fatalf("records %+v", rec)
	}
	master := open(t, rec, [16]byte{}, uid, she.MasterECUKey, 1, "01101")
	ts.report(t, kms.PathProvisioning, map[string]string{"ProvisioningType": "EcuMasterKey", "EcuID": masterExampleEcuID,
		"ResultMessage": "", "ResultStatus": "Success"})

	rec = ts.provision(t, map[string]string{"ProvisioningType": "SupplierSymmKey", "KeyID": "D", "EcuID": masterExampleEcuID})
	if rec.KeyID != "D" {
		t.Fatalf("KeyID %q", rec.KeyID)
	}
	supplier := open(t, rec, master, uid, she.Key10, 1, "01111")
	ts.report(t, kms.PathProvisioning, map[string]string{"ProvisioningType": "SupplierSymmKey", "EcuID": masterExampleEcuID,
		"ResultMessage": "", "ResultStatus": "Success"})

	// Key sync: a fresh challenge and CMAC(key in the slot, challenge).
	status, env := ts.call(t, "POST", kms.PathKeySync, map[string]string{"ProvisioningType": "SupplierSymmKey", "KeyID": "D", "EcuID": masterExampleEcuID})
	if status != 200 || env.Records == nil || env.Records.KeyID != "D" {
		t.Fatalf("sync: %d %+v", status, env)
	}
	challenge, _ := hex.DecodeString(env.Records.Challenge)
	if want := she.CMAC(supplier, challenge); env.Records.KeySyncValue != hex.EncodeToString(want[:]) {
		t.Fatal("KeySyncValue is not CMAC(supplier key, challenge)")
	}
	ts.report(t, kms.PathKeySync, map[string]string{"ProvisioningType": "SupplierSymmKey", "EcuID": masterExampleEcuID,
		"ResultMessage": "", "ResultStatus": "Success"})
	// The master key's sync value is the GET_ID MAC of an ECU that booted securely.
	_, env = ts.call(t, "POST", kms.PathKeySync, map[string]string{"ProvisioningType": "EcuMasterKey", "EcuID": masterExampleEcuID})
	challenge, _ = hex.DecodeString(env.Records.Challenge)
	if want := she.GetIDMAC(master, [16]byte(challenge), uid, 0x1E); env.Records.KeySyncValue != hex.EncodeToString(want[:]) {
		t.Fatal("master KeySyncValue is not the GET_ID MAC with SREG 0x1E")
	}
}

// TestMasterSyncChecksTheReportedGetID: a master key's sync reported Success with the ECU's GET_ID
// answer is checked over the SREG the ECU returned, so an ECU whose RNG was initialized at boot
// (SREG 0x3E, not the 0x1E the KeySyncValue assumes) syncs; a MAC the key does not give is
// refused, KEYSYNC_MISMATCH, and changes nothing.
func TestMasterSyncChecksTheReportedGetID(t *testing.T) {
	ts := newServer(t, "")
	uid := uidOf(masterExampleEcuID)
	master := open(t, ts.provision(t, map[string]string{"ProvisioningType": "EcuMasterKey", "KeyID": "1", "EcuID": masterExampleEcuID}),
		[16]byte{}, uid, she.MasterECUKey, 1, "01101")
	ts.report(t, kms.PathProvisioning, map[string]string{"ProvisioningType": "EcuMasterKey", "EcuID": masterExampleEcuID,
		"ResultMessage": "", "ResultStatus": "Success"})
	_, env := ts.call(t, "POST", kms.PathKeySync, map[string]string{"ProvisioningType": "EcuMasterKey", "EcuID": masterExampleEcuID})
	challenge, _ := hex.DecodeString(env.Records.Challenge)
	answer := func(sreg byte, mac [16]byte) map[string]string {
		msg := fmt.Sprintf("GET_ID Challenge=%x SREG=%02x MAC=%x", challenge, sreg, mac)
		return map[string]string{"ProvisioningType": "EcuMasterKey", "EcuID": masterExampleEcuID, "ResultStatus": "Success", "ResultMessage": msg}
	}
	// The MAC of SREG 0x1E reported with SREG 0x3E: refused.
	status, env := ts.call(t, "PUT", kms.PathKeySync, answer(0x3E, she.GetIDMAC(master, [16]byte(challenge), uid, 0x1E)))
	if status != 200 || env.ResultReason != "KEYSYNC_MISMATCH" || env.ResultMessage != "The GET_ID MAC does not match the EcuMasterKey of KeyID 1." {
		t.Fatalf("wrong GET_ID MAC: %d %+v", status, env)
	}
	// The ECU's real answer, SREG 0x3E: accepted (the refusal above recorded nothing).
	ts.report(t, kms.PathKeySync, answer(0x3E, she.GetIDMAC(master, [16]byte(challenge), uid, 0x3E)))
	if status, env := ts.call(t, "PUT", kms.PathKeySync, answer(0x3E, she.GetIDMAC(master, [16]byte(challenge), uid, 0x3E))); env.ResultReason != "NOTHING_ISSUED" {
		t.Fatalf("second report of one sync: %d %+v", status, env)
	}
}

// TestFailedInjectionKeepsTheOldMaster: OperationFailed does not advance the master key; a new
// POST supersedes a pending issue with the next counter.
func TestFailedInjectionKeepsTheOldMaster(t *testing.T) {
	ts := newServer(t, "")
	uid := uidOf(masterExampleEcuID)
	req := map[string]string{"ProvisioningType": "EcuMasterKey", "KeyID": "1", "EcuID": masterExampleEcuID}
	open(t, ts.provision(t, req), [16]byte{}, uid, she.MasterECUKey, 1, "01101")
	open(t, ts.provision(t, req), [16]byte{}, uid, she.MasterECUKey, 2, "01101") // supersedes
	ts.report(t, kms.PathProvisioning, map[string]string{"ProvisioningType": "EcuMasterKey", "EcuID": masterExampleEcuID,
		"ResultMessage": "ERC_KEY_UPDATE_ERROR", "ResultStatus": "OperationFailed"})
	// Still authorized by the all-zero key, counter 3.
	open(t, ts.provision(t, req), [16]byte{}, uid, she.MasterECUKey, 3, "01101")
}

// TestSecOCClusterKeys: SecOC keys of two ECUs of one ClusterID are equal; of another cluster,
// different. The Counter field raises the counter.
func TestSecOCClusterKeys(t *testing.T) {
	ts := newServer(t, "")
	secret := strings.Repeat("1d", 16)
	ecu := func(cluster, serial string) string { return cluster + "01020304" + "0001001D" + serial }
	a, b := ecu("0102030405060708", "0102030405060708090A0B"), ecu("0102030405060708", "0102030405060708090A0C")
	c := ecu("1112131415161718", "0102030405060708090A0D")
	keys := map[string][16]byte{}
	for i, id := range []string{a, b, c} {
		body := map[string]string{"ProvisioningType": "SecOCKey", "EcuID": id, "KeyID": "5", "SupplierSecretKey": secret}
		counter := uint32(1)
		if i == 1 {
			body["Counter"], counter = "41", 41
		}
		keys[id] = open(t, ts.provision(t, body), [16]byte{}, uidOf(id), 5, counter, "01111")
	}
	if keys[a] != keys[b] {
		t.Fatal("two ECUs of one cluster got different SecOC keys")
	}
	if keys[a] == keys[c] {
		t.Fatal("two clusters got the same SecOC key")
	}
}

// TestCounterSurvivesRestart: a counter is committed before it is answered.
func TestCounterSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ts := newServer(t, dir)
	uid := uidOf(masterExampleEcuID)
	req := map[string]string{"ProvisioningType": "EcuMasterKey", "KeyID": "1", "EcuID": masterExampleEcuID}
	ts.provision(t, req)
	ts.provision(t, req)
	ts.Close()
	ts.ref.Close()
	again := newServer(t, dir)
	open(t, again.provision(t, req), [16]byte{}, uid, she.MasterECUKey, 3, "01101")
}

// TestEveryReasonHasAVector: each ResultReason of the message table is exercised by
// vectors/kms-errors.json, but INTERNAL, which needs a failing store (TestInternalError).
func TestEveryReasonHasAVector(t *testing.T) {
	f, err := vectors.Load("kms-errors.json")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[kms.Reason]bool{}
	for _, r := range f.Records {
		var v struct{ Expect struct{ ResultReason string } }
		if err := r.Decode(&v); err != nil {
			t.Fatal(err)
		}
		seen[kms.Reason(v.Expect.ResultReason)] = true
	}
	for _, r := range kms.Reasons() {
		if !seen[r] && r != "INTERNAL" {
			t.Errorf("no vector answers %s", r)
		}
	}
}

// failingStore fails every operation.
type failingStore struct{ kms.Store }

var errDown = errors.New("database down")

func (failingStore) Issue(context.Context, kms.Issue, uint32, string) (uint32, kms.SlotState, error) {
	return 0, kms.SlotState{}, errDown
}

func TestInternalError(t *testing.T) {
	svc := kms.NewService(failingStore{}, map[kms.Phase][16]byte{}, kms.DemoRegistry(), nil)
	mux := http.NewServeMux()
	kms.NewHandler(svc, kms.AuthNone, nil).Register(mux)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	body := strings.NewReader(`{"ProvisioningType":"EcuMasterKey","KeyID":"1","EcuID":"` + masterExampleEcuID + `"}`)
	resp, err := validatingClient(t, false).Post(ts.URL+kms.PathProvisioning, "application/json", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var env kms.Envelope
	json.NewDecoder(resp.Body).Decode(&env)
	if resp.StatusCode != 500 || env != (kms.Envelope{ResultStatus: "OperationFailed", ResultReason: "INTERNAL", ResultMessage: "Internal error."}) {
		t.Fatalf("%d %+v", resp.StatusCode, env)
	}
}

func TestRegistryFiles(t *testing.T) {
	dir := t.TempDir()
	yaml := "suppliers:\n  - id: 001D\n    name: Yaml supplier\n    phase: Prod\n    secretKey: " + strings.Repeat("ab", 16) +
		"\n    ecuTypes:\n      - type: \"0001\"\n        keyIds: [\"1\", D, \"4\"]\n        flags: {SecOCKey: \"11111\"}\n"
	path := filepath.Join(dir, "registry.yaml")
	os.WriteFile(path, []byte(yaml), 0o600)
	r, err := kms.LoadRegistry(path)
	if err != nil {
		t.Fatal(err)
	}
	s, et := r.Suppliers[0x001D], r.EcuTypes[[2]uint16{0x001D, 0x0001}]
	if s == nil || s.Phase != kms.Prod || s.SecretKey[0] != 0xab || et == nil || !et.AllowedKeyIDs[0xD] || et.AllowedKeyIDs[5] ||
		et.Flags[kms.SecOCKey] != 0x1F || et.Flags[kms.EcuMasterKey] != 0x0D {
		t.Fatalf("registry %+v %+v", s, et)
	}
	for _, bad := range []string{
		`{"suppliers":[{"id":"xyz","phase":"Dev","secretKey":"` + strings.Repeat("00", 16) + `"}]}`,
		`{"suppliers":[{"id":"0001","phase":"Test","secretKey":"` + strings.Repeat("00", 16) + `"}]}`,
		`{"suppliers":[{"id":"0001","phase":"Dev","secretKey":"00"}]}`,
		`{"suppliers":[{"id":"0001","phase":"Dev","secretKey":"` + strings.Repeat("00", 16) + `","ecuTypes":[{"type":"0001","keyIds":["E"]}]}]}`,
	} {
		if _, err := kms.ParseRegistry([]byte(bad), "json"); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// TestMetrics: after a success and a refusal, /metrics counts both by endpoint and reason, the
// issued counter, and the store's commits.
func TestMetrics(t *testing.T) {
	ts := newServer(t, "")
	ts.provision(t, map[string]string{"ProvisioningType": "EcuMasterKey", "KeyID": "1", "EcuID": masterExampleEcuID})
	strict := ts.client
	ts.client = validatingClient(t, true) // the refusal's request is invalid on purpose
	ts.call(t, "POST", kms.PathProvisioning, map[string]string{"ProvisioningType": "EcuMasterKey", "KeyID": "", "EcuID": masterExampleEcuID})
	ts.client = strict
	resp, err := ts.client.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	io.Copy(&b, resp.Body)
	for _, want := range []string{
		`kms_requests_total{endpoint="provision",reason=""} 1`,
		`kms_requests_total{endpoint="provision",reason="FIELD_REQUIRED"} 1`,
		`kms_counters_issued_total 1`,
		`kms_request_duration_seconds_count{endpoint="provision",reason=""} 1`,
		`store_commit_duration_seconds_count`,
		`store_commit_changes_bucket`,
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// admin sends an admin request with token and decodes the JSON answer into out.
func (ts *testServer) admin(t *testing.T, method, path, token, body string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

func TestAdminAPI(t *testing.T) {
	dir := t.TempDir()
	off := newServer(t, "")
	if code := off.admin(t, "GET", "/admin/registry", "anything", "", nil); code != 403 {
		t.Fatalf("admin API without a token configured: %d", code)
	}
	ts := newServerWith(t, reference.Config{DataDir: dir, AdminToken: "admin-secret"})
	if code := ts.admin(t, "GET", "/admin/registry", "wrong", "", nil); code != 401 {
		t.Fatalf("wrong admin token: %d", code)
	}
	var reg map[string][]map[string]any
	if code := ts.admin(t, "GET", "/admin/registry", "admin-secret", "", &reg); code != 200 || len(reg["suppliers"]) != 2 {
		t.Fatalf("registry: %d %v", code, reg)
	}
	for _, s := range reg["suppliers"] {
		if s["secretKey"] != "(set)" {
			t.Fatalf("secret key shown: %v", s)
		}
	}

	// A new supplier 00AA with EcuType 0005, then a request for one of its ECUs.
	supplier := `{"id":"00AA","name":"New supplier","phase":"Prod","secretKey":"` + strings.Repeat("aa", 16) +
		`","ecuTypes":[{"type":"0005","keyIds":["1","D","4"]}]}`
	if code := ts.admin(t, "PUT", "/admin/suppliers/00AA", "admin-secret", supplier, &reg); code != 200 || len(reg["suppliers"]) != 3 {
		t.Fatalf("add supplier: %d %v", code, reg)
	}
	newECU := "0102030405060708" + "01020304" + "000500AA0000000000000000000001"
	open(t, ts.provision(t, map[string]string{"ProvisioningType": "EcuMasterKey", "KeyID": "1", "EcuID": newECU}),
		[16]byte{}, uidOf(newECU), she.MasterECUKey, 1, "01101")
	if code := ts.admin(t, "PUT", "/admin/suppliers/00AB", "admin-secret", supplier, nil); code != 400 {
		t.Fatalf("path and body ids differ: %d", code)
	}
	strict := ts.client
	ts.client = validatingClient(t, true) // invalid requests on purpose
	if code := ts.admin(t, "PUT", "/admin/registry", "admin-secret", `{"suppliers":[{"id":"zz"}]}`, nil); code != 400 {
		t.Fatalf("invalid registry: %d", code)
	}
	if code := ts.admin(t, "GET", "/admin/audit?limit=5000", "admin-secret", "", nil); code != 400 {
		t.Fatalf("limit 5000: %d", code)
	}
	ts.client = strict

	// The audit log shows the issue, and holds no key.
	var audit struct{ Entries []kms.AuditEntry }
	if code := ts.admin(t, "GET", "/admin/audit?after=0&limit=10", "admin-secret", "", &audit); code != 200 ||
		len(audit.Entries) != 1 || audit.Entries[0].Action != "issue:EcuMasterKey" || *audit.Entries[0].Counter != 1 {
		t.Fatalf("audit: %d %+v", code, audit)
	}

	// The edit survives a restart; an explicit registry file wins over it.
	ts.Close()
	ts.ref.Close()
	again := newServerWith(t, reference.Config{DataDir: dir, AdminToken: "admin-secret"})
	again.provision(t, map[string]string{"ProvisioningType": "EcuMasterKey", "KeyID": "1", "EcuID": newECU})
	again.Close()
	again.ref.Close()
	fromFile := newServerWith(t, reference.Config{DataDir: dir, Registry: kms.DemoRegistry()})
	fromFile.client = validatingClient(t, true)
	if _, env := fromFile.call(t, "POST", kms.PathProvisioning, map[string]string{"ProvisioningType": "EcuMasterKey", "KeyID": "1", "EcuID": newECU}); env.ResultReason != "NOT_REGISTERED" {
		t.Fatalf("an explicit registry file must win over the stored one: %+v", env)
	}
	fromFile.Close()
	fromFile.ref.Close()
	again = newServerWith(t, reference.Config{DataDir: dir, AdminToken: "admin-secret"})
	if code := again.admin(t, "DELETE", "/admin/suppliers/00AA", "admin-secret", "", &reg); code != 200 || len(reg["suppliers"]) != 2 {
		t.Fatalf("delete: %d %v", code, reg)
	}
	if code := again.admin(t, "DELETE", "/admin/suppliers/00AA", "admin-secret", "", nil); code != 404 {
		t.Fatalf("delete twice: %d", code)
	}
	again.client = validatingClient(t, true)
	if _, env := again.call(t, "POST", kms.PathProvisioning, map[string]string{"ProvisioningType": "EcuMasterKey", "KeyID": "1", "EcuID": newECU}); env.ResultMessage != "The SupplierID is not registerd." {
		t.Fatalf("after delete: %+v", env)
	}
}

func TestRecordsMessages(t *testing.T) {
	u, err := vectors.LoadMemoryUpdate("oem-doc-a-master-ecu-key")
	if err != nil {
		t.Fatal(err)
	}
	h := hex.EncodeToString
	rec := kms.Records{M1: h(u.M1[:]), M2: h(u.M2[:]), M3: h(u.M3[:]), M4: h(u.M4[:]), M5: h(u.M5[:])}
	m, err := rec.Messages()
	if err != nil || m.M1 != u.M1 || m.M2 != u.M2 || m.M3 != u.M3 || m.M4 != u.M4 || m.M5 != u.M5 {
		t.Fatalf("%+v %v", m, err)
	}
	for _, bad := range []func(*kms.Records){
		func(r *kms.Records) { r.M2 = r.M2[:62] },
		func(r *kms.Records) { r.M5 = "zz" + r.M5[2:] },
		func(r *kms.Records) { r.M1 = "" },
	} {
		r := rec
		bad(&r)
		if _, err := r.Messages(); err == nil {
			t.Errorf("%+v: no error", r)
		}
	}
}
