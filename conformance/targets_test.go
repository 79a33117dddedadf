package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shekit/shekit/conformance/report"
	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
)

// answerRewrite changes a JSON answer of the reference before a target sends it: req is the
// request, with its JSON body decoded (nil if it is not an object); env the answer's decoded body
// (numbers as json.Number), which the rewrite may change, as it may the header.
type answerRewrite func(req *http.Request, body map[string]any, header http.Header, env map[string]any)

// startTarget starts a reference server (KMS and CLM) with registry reg (nil: the demo registry)
// on loopback, its JSON answers passed through rewrite (nil: as they are): a target the suites
// know only by its URL, as a vendor's would be. It returns the URL.
func startTarget(t *testing.T, reg *kms.Registry, rewrite answerRewrite) string {
	t.Helper()
	srv, err := reference.New(context.Background(), reference.Config{DataDir: t.TempDir(), Registry: reg, CLMKeys: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(raw))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		out := rec.Body.Bytes()
		var body, env map[string]any
		json.Unmarshal(raw, &body)
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		if rewrite != nil && dec.Decode(&env) == nil {
			rewrite(req, body, rec.Header(), env)
			out, _ = json.Marshal(env)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		w.Write(out)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// runKMSSuite runs the kms suite against url (empty: the one env names) with the extra CONF_* settings env and returns the
// tests that did not pass (name: outcome), the observations (by test) and the run's output.
func runKMSSuite(t *testing.T, url string, env ...string) (map[string]report.Outcome, map[string][]string, []byte) {
	t.Helper()
	if url != "" {
		env = append([]string{"CONF_KMS_URL=" + url}, env...)
	}
	res, out, _ := runSuites(t, append([]string{"CONF_SUITES=kms"}, env...)...)
	bad := map[string]report.Outcome{}
	observed := map[string][]string{}
	passed := 0
	for _, tr := range res.Tests {
		if len(tr.Observations) > 0 {
			observed[tr.Name] = tr.Observations
		}
		switch {
		case tr.Suite != "kms":
		case tr.Outcome == report.Pass:
			passed++
		default:
			bad[tr.Name] = tr.Outcome
		}
	}
	if passed+len(bad) == 0 {
		t.Fatalf("no kms test ran:\n%s", out)
	}
	return bad, observed, out
}

// TestKMSSuiteReruns: the kms suite passes twice in a row against one KMS it did not start (the
// reference, as an external server): every run draws fresh UIDs, the message replays included.
func TestKMSSuiteReruns(t *testing.T) {
	t.Parallel()
	env := kmsTarget(kmsTargetOptions{})(t)
	for run := 1; run <= 2; run++ {
		if bad, _, out := runKMSSuite(t, "", env...); len(bad) > 0 {
			t.Fatalf("run %d: %v\n%s", run, bad, out)
		}
	}
}

// otherRegistry has supplier 00AB, with EcuType 0042, its own SupplierSecretKey, token, a
// non-zero initial master key and two SecOC clusters (otherClusterIDs), and EcuType 0043 that
// allows only KeyIDs 1 and D; and supplier 00AC with EcuType 0044: nothing of the demo registry.
// EcuTypes 0043 and 0044 take any cluster.
const otherRegistry = `{"suppliers": [{"id": "00AB", "name": "Other supplier", "phase": "Prod",
	"secretKey": "a0b1c2d3e4f5061728394a5b6c7d8e9f", "token": "token-00ab", "ecuTypes": [{"type": "0042",
	"keyIds": ["1", "D", "4", "5", "6", "7", "8", "9", "A", "B", "C"], "initialMasterKey": "42424242424242424242424242424242",
	"clusters": ["00AB004200000001", "00AB004200000002"]}, {"type": "0043", "keyIds": ["1", "D"], "clusters": ["*"]}]},
	{"id": "00AC", "name": "Third supplier", "phase": "Dev", "secretKey": "acacacacacacacacacacacacacacacac", "token": "token-00ac",
	"ecuTypes": [{"type": "0044", "keyIds": ["1", "D", "4"], "clusters": ["*"]}]}]}`

// otherClusterIDs are the SecOC clusters of EcuType 0042 of otherRegistry.
const otherClusterIDs = "00ab004200000001, 00AB004200000002"

// TestKMSSuiteOtherSupplier: the kms suite passes against a KMS whose registry knows only another
// supplier, configured through CONF_SUPPLIER_ID, CONF_ECU_TYPE, CONF_SUPPLIER_SECRET_KEY and
// CONF_INITIAL_MASTER_KEY, with its own SecOC clusters (CONF_CLUSTER_IDS).
func TestKMSSuiteOtherSupplier(t *testing.T) {
	t.Parallel()
	env := kmsTarget(kmsTargetOptions{registry: otherRegistry})(t)
	bad, _, out := runKMSSuite(t, "", append(env, "CONF_SUPPLIER_ID=00AB", "CONF_ECU_TYPE=0042", "CONF_KMS_TOKEN=token-00ab",
		"CONF_SUPPLIER_SECRET_KEY=a0b1c2d3e4f5061728394a5b6c7d8e9f", "CONF_INITIAL_MASTER_KEY=42424242424242424242424242424242",
		"CONF_RESTRICTED_ECU_TYPE=0043", "CONF_REFUSED_KEY_IDS=4,5,6,7,8,9,a,b,c", "CONF_OTHER_SUPPLIER_ID=00AC", "CONF_OTHER_ECU_TYPE=0044",
		"CONF_CLUSTER_IDS="+otherClusterIDs)...)
	if len(bad) > 0 {
		t.Fatalf("%v\n%s", bad, out)
	}
}

// Legal KMS variants: behaviours the documents allow although the reference does not show them
// (rows of the teeth table).
var (
	// legalCharset answers with a charset parameter.
	legalCharset answerRewrite = func(_ *http.Request, _ map[string]any, h http.Header, _ map[string]any) {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	// legalExtraFields answers with fields the contract does not name.
	legalExtraFields answerRewrite = func(_ *http.Request, _ map[string]any, _ http.Header, env map[string]any) {
		env["RequestID"] = "7f3a"
		if r, ok := env["Records"].(map[string]any); ok {
			r["IssuedAt"] = "2026-01-01T00:00:00Z"
		}
	}
	// legalDocumentRecords answers Records as the document's examples: no KeyID for a
	// SupplierSymmKey, an empty one for a sync.
	legalDocumentRecords answerRewrite = func(req *http.Request, body map[string]any, _ http.Header, env map[string]any) {
		r, ok := env["Records"].(map[string]any)
		switch {
		case !ok:
		case strings.HasSuffix(req.URL.Path, kms.PathKeySync):
			r["KeyID"] = "" // the document's supplierKeySyncValue example
		case body["ProvisioningType"] == "SupplierSymmKey":
			delete(r, "KeyID") // the document's SupplierSymmKey example
		}
	}
	// legalRequiredFirst checks the fields the document marks required before anything else.
	legalRequiredFirst answerRewrite = func(req *http.Request, body map[string]any, _ http.Header, env map[string]any) {
		if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, kms.PathProvisioning) || body["ProvisioningType"] != "SecOCKey" {
			return
		}
		for _, f := range []string{"SupplierSecretKey", "Counter", "Challenge"} { // the document marks them required
			if s, _ := body[f].(string); s == "" {
				clear(env)
				env["ResultStatus"], env["ResultReason"], env["ResultMessage"] = "OperationFailed", "FIELD_REQUIRED", "The "+f+" is required."
				return
			}
		}
	}
)

// idempotentPUT answers Success to a PUT that repeats one already answered Success.
func idempotentPUT() answerRewrite {
	var mu sync.Mutex
	done := map[string]bool{}
	return func(req *http.Request, body map[string]any, _ http.Header, env map[string]any) {
		if req.Method != http.MethodPut || body["ResultStatus"] != "Success" {
			return
		}
		key := req.URL.Path + "|" + strings.ToUpper(fmtField(body, "EcuID")) + "|" + fmtField(body, "ProvisioningType") + "|" + fmtField(body, "KeyID")
		mu.Lock()
		defer mu.Unlock()
		switch {
		case env["ResultStatus"] == "Success":
			done[key] = true
		case env["ResultReason"] == "NOTHING_ISSUED" && done[key]:
			env["ResultStatus"], env["ResultReason"], env["ResultMessage"] = "Success", "", ""
		}
	}
}

// fmtField is a body's field as a string ("" when absent).
func fmtField(body map[string]any, name string) string {
	s, _ := body[name].(string)
	return s
}

// TestKMSSuiteNamesMissingSettings: against a KMS declared with its URL and supplier only, the
// tests that need a restart command, a registry restriction, the EcuType's clusters or a token
// do not pass silently: each is not-applicable with a message naming the declaration field it
// needs, and a certification of target kms says so in its verdict. Certifying with a required
// field missing runs no test and names the field.
func TestKMSSuiteNamesMissingSettings(t *testing.T) {
	t.Parallel()
	url := startTarget(t, nil, nil)
	supplier := []string{"CONF_KMS_URL=" + url, "CONF_SUPPLIER_ID=001D", "CONF_ECU_TYPE=0001",
		"CONF_SUPPLIER_SECRET_KEY=1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d", "CONF_INITIAL_MASTER_KEY=00000000000000000000000000000000"}
	want := map[string]string{tRestart: "kms.restart", tNotAllowed: "kms.refused_key_ids", tNoToken: "kms.token",
		tWrongToken: "kms.token", tOtherECU: "kms.token", tForeignCluster: "kms.cluster_ids"}
	res, out, err := runSuites(t, append([]string{"CONF_TARGETS=kms"}, supplier...)...)
	if err != nil {
		t.Errorf("the certification failed:\n%s", out)
	}
	for part, field := range want {
		found := false
		for _, tr := range res.Tests {
			if strings.Contains(tr.Name, part) {
				found = true
				if tr.Outcome != report.NotApplicable || !strings.Contains(tr.Message, field) {
					t.Errorf("%s: %s %q, want not-applicable naming %s", tr.Name, tr.Outcome, tr.Message, field)
				}
			}
		}
		if !found {
			t.Errorf("no test %q ran:\n%s", part, out)
		}
	}
	for _, tr := range res.Tests {
		if tr.Target != "kms" {
			t.Errorf("certifying kms ran %s test %q", tr.Target, tr.Name)
		}
	}
	if len(res.Verdicts) != 1 || !res.Verdicts[0].Certified || res.Verdicts[0].NotApplicable != len(want)+1 || // and serving the supplier with its token

		!strings.Contains(string(out), fmt.Sprintf("kms: certified, %d of %d (%d not applicable)", res.Verdicts[0].Expected, res.Verdicts[0].Expected, len(want)+1)) {
		t.Errorf("verdicts %+v\n%s", res.Verdicts, out)
	}

	res, out, err = runSuites(t, "CONF_TARGETS=kms", "CONF_KMS_URL="+url)
	if err == nil || len(res.Tests) != 1 || res.Tests[0].Outcome != report.Error ||
		!strings.Contains(res.Tests[0].Message, "kms.supplier_id (CONF_SUPPLIER_ID) is required to certify target kms") {
		t.Errorf("certifying a KMS declared with its URL only: %v, %+v\n%s", err, res.Tests, out)
	}
}

// TestKMSSuiteChargesEachTestItsOwnExchanges: one answer that breaks the contract fails the test
// that got it, and no other.
func TestKMSSuiteChargesEachTestItsOwnExchanges(t *testing.T) {
	t.Parallel()
	env := kmsTarget(kmsTargetOptions{answer: func(x *kmsExchange) {
		if x.body["ProvisioningType"] == "EcuMasterKey" && x.body["KeyID"] == "" { // only doc-required-keyid sends this
			x.env["Records"] = map[string]any{"KeyID": "Z"}
		}
	}})(t)
	bad, _, out := runKMSSuite(t, "", env...)
	want := "KMS supplier API / documented messages and codes / answers doc-required-keyid with FIELD_REQUIRED as documented"
	var names []string
	for name := range bad {
		names = append(names, name)
	}
	if !slices.Equal(names, []string{want}) || bad[want] != report.Fail {
		t.Fatalf("tests not passing: %v, want only %q failed\n%s", bad, want, out)
	}
}
