package conformance_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/shekit/shekit/conformance/report"
	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
)

// toothKind says what a row of the teeth table must do to the suite: a fault must fail it on the
// tests meant to catch it, a legal variant must pass it.
type toothKind string

const (
	faulty toothKind = "fault"
	legal  toothKind = "legal"
)

// tooth is a row of the teeth table: a target built independently of the suites (a proxy in
// front of the reference, or a small server), the suite run against it, and what must happen.
type tooth struct {
	name   string
	kind   toothKind
	suite  string                      // the suite run: kms or clm
	target func(t *testing.T) []string // starts the target; returns the CONF_* settings naming it
	// fault: the tests (a part of their names) that must fail; legal: an observation the run
	// must record, if any
	caught   []string
	observed string
}

// kmsExchange is one exchange passing through a teeth proxy: the request (its JSON body decoded,
// nil if it is not an object) and the answer (status, header, envelope decoded, numbers as
// json.Number), which a rewrite may change.
type kmsExchange struct {
	req    *http.Request
	body   map[string]any
	status int
	header http.Header
	env    map[string]any
}

// kmsTargetOptions describe a KMS target of the teeth table: the reference with the suite
// registry (or another), bearer authentication unless noAuth, restartable through
// CONF_KMS_RESTART, behind a proxy that may rewrite requests before the reference sees them and
// answers after.
type kmsTargetOptions struct {
	registry   string                                       // registry JSON (default: suiteRegistryJSON)
	noAuth     bool                                         // serve without authentication
	request    func(req *http.Request, body map[string]any) // rewrites a request
	answer     func(x *kmsExchange)                         // rewrites an answer
	freshStore bool                                         // a restart opens an empty store: state is lost
	env        []string                                     // more CONF_* settings
}

// kmsTarget returns the constructor of a KMS target with options o.
func kmsTarget(o kmsTargetOptions) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		t.Helper()
		if o.registry == "" {
			o.registry = suiteRegistryJSON
		}
		reg, err := kms.ParseRegistry([]byte(o.registry), "json")
		if err != nil {
			t.Fatal(err)
		}
		cfg := reference.Config{DataDir: t.TempDir(), Registry: reg, Auth: kms.AuthBearer, CLMKeys: "ecdsa"}
		if o.noAuth {
			cfg.Auth = kms.AuthNone
		}
		ref, err := newRestartableReference(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ref.Close() })
		restart := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if o.freshStore {
				ref.mu.Lock()
				ref.cfg.DataDir = t.TempDir()
				ref.mu.Unlock()
			}
			if err := ref.restart(); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		}))
		t.Cleanup(restart.Close)
		proxy := httptest.NewServer(kmsProxy(ref, o.request, o.answer))
		t.Cleanup(proxy.Close)
		return append([]string{"CONF_KMS_URL=" + proxy.URL, "CONF_CLM_URL=" + proxy.URL, "CONF_KMS_TOKEN=" + suiteToken,
			fmt.Sprintf("CONF_KMS_RESTART=%s=%s '%s'", postProcessEnv, restart.URL, os.Args[0]),
			"CONF_RESTRICTED_ECU_TYPE=" + suiteRestricted, "CONF_REFUSED_KEY_IDS=" + suiteRefusedKeyIDs,
			"CONF_OTHER_SUPPLIER_ID=" + suiteOtherSupplier, "CONF_OTHER_ECU_TYPE=" + suiteOtherEcuType,
			"CONF_CLUSTER_IDS=" + suiteClusterIDs}, o.env...)
	}
}

// kmsProxy serves next, passing JSON requests through request and JSON answers through answer.
func kmsProxy(next http.Handler, request func(*http.Request, map[string]any), answer func(*kmsExchange)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		raw, _ := io.ReadAll(req.Body)
		var body map[string]any
		if json.Unmarshal(raw, &body) == nil && request != nil {
			request(req, body)
			raw, _ = json.Marshal(body)
		}
		req.Body = io.NopCloser(bytes.NewReader(raw))
		req.ContentLength = int64(len(raw))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		x := &kmsExchange{req: req, body: body, status: rec.Code, header: rec.Header()}
		out := rec.Body.Bytes()
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		if answer != nil && dec.Decode(&x.env) == nil {
			answer(x)
			out, _ = json.Marshal(x.env)
		}
		for k, v := range x.header {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(x.status)
		w.Write(out)
	})
}

// viaAnswerRewrite adapts an answerRewrite of a legal variant to the teeth proxy.
func viaAnswerRewrite(r answerRewrite) func(*kmsExchange) {
	return func(x *kmsExchange) { r(x.req, x.body, x.header, x.env) }
}

// records is the Records object of an answer (nil when there is none).
func records(x *kmsExchange) map[string]any {
	r, _ := x.env["Records"].(map[string]any)
	return r
}

// flipLast changes the last hex digit of a Records field, when present.
func flipLast(r map[string]any, field string) {
	if s, _ := r[field].(string); s != "" {
		r[field] = s[:len(s)-1] + wrongSecret(s[len(s)-1:])
	}
}

// isPost and isPut say what a request is, and to which endpoint (a path suffix).
func isPost(req *http.Request, path string) bool {
	return req.Method == http.MethodPost && strings.HasSuffix(req.URL.Path, path)
}

func isPut(req *http.Request, path string) bool {
	return req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, path)
}

// canonical rewrites field of a request to the value of values it matches in another letter
// case: a KMS that compares enumerations case-insensitively.
func canonical(field string, values ...string) func(*http.Request, map[string]any) {
	return func(_ *http.Request, body map[string]any) {
		s, _ := body[field].(string)
		for _, v := range values {
			if strings.EqualFold(s, v) {
				body[field] = v
			}
		}
	}
}

// acceptKeyID makes a KMS take, for provisioning type typ, the KeyIDs from as the KeyID to.
func acceptKeyID(typ, to string, from ...string) func(*http.Request, map[string]any) {
	return func(req *http.Request, body map[string]any) {
		k, _ := body["KeyID"].(string)
		if isPost(req, kms.PathProvisioning) && body["ProvisioningType"] == typ && strings.Contains(strings.Join(from, ","), k) && k != "" {
			body["KeyID"] = to
		}
	}
}

// acceptSecret makes a KMS take a SupplierSecretKey that match says is close enough.
func acceptSecret(match func(given, right string) bool) func(*http.Request, map[string]any) {
	return func(_ *http.Request, body map[string]any) {
		if s, _ := body["SupplierSecretKey"].(string); s != "" && s != demoSecret && match(s, demoSecret) {
			body["SupplierSecretKey"] = demoSecret
		}
	}
}

// replayFirst answers every request that key maps to the same non-empty key with the first
// answer given: a KMS that hands out one issue twice.
func replayFirst(key func(x *kmsExchange) string) func(*kmsExchange) {
	var mu sync.Mutex
	first := map[string]map[string]any{}
	return func(x *kmsExchange) {
		k := key(x)
		if k == "" || x.env["ResultStatus"] != "Success" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if old, ok := first[k]; ok {
			clear(x.env)
			for f, v := range old {
				x.env[f] = v
			}
			return
		}
		first[k] = x.env
	}
}

// slotKey names the slot a request is about (with the endpoint).
func slotKey(x *kmsExchange) string {
	return x.req.URL.Path + "|" + strings.ToUpper(fmtField(x.body, "EcuID")) + "|" + fmtField(x.body, "ProvisioningType") + "|" + fmtField(x.body, "KeyID")
}

// refuses rewrites the answers whose ResultReason is reason with change.
func refuses(reason string, change func(x *kmsExchange)) func(*kmsExchange) {
	return func(x *kmsExchange) {
		if x.env["ResultReason"] == reason {
			change(x)
		}
	}
}

// Test names the teeth rows refer to (parts of them).
const (
	tMasterIssue    = "KMS supplier API / issues an EcuMasterKey update"
	tChallenge      = "KMS supplier API / answers a SecOC request's Challenge"
	tSync           = "KMS supplier API / syncs an injected key"
	tCounters       = "KMS supplier API / allocates a greater counter"
	tMovesOn        = "KMS supplier API / moves the authorizing master key on only"
	tRestart        = "KMS supplier API / keeps its state across a restart"
	tOpFailed       = "KMS supplier API / authorizes the updates after an OperationFailed master key"
	tNotAllowed     = "KMS supplier API / refuses the KeyIDs the registry does not allow"
	tNoToken        = "KMS supplier API / bearer authentication / answers a request without a token"
	tWrongToken     = "KMS supplier API / bearer authentication / answers a request with a wrong token"
	tOtherECU       = "KMS supplier API / bearer authentication / refuses to act on an ECU"
	tForeignCluster = "KMS supplier API / refuses a SecOC key for a cluster the EcuType's ECUs do not belong to"
)

// tMessage is the name of the message replay of vector id.
func tMessage(id string) string { return "documented messages and codes / answers " + id + " with " }

// kmsTeeth are the KMS rows of the teeth table.
var kmsTeeth = []tooth{
	// Legal variants: the documents allow them, the reference does not show them.
	{name: "the reference behind a proxy, bearer, restart on its store", kind: legal, target: kmsTarget(kmsTargetOptions{})},
	{name: "charset", kind: legal, target: kmsTarget(kmsTargetOptions{answer: viaAnswerRewrite(legalCharset)})},
	{name: "extra fields", kind: legal, target: kmsTarget(kmsTargetOptions{answer: viaAnswerRewrite(legalExtraFields)})},
	{name: "the document's Records", kind: legal, target: kmsTarget(kmsTargetOptions{answer: viaAnswerRewrite(legalDocumentRecords)}),
		observed: "without KeyID"},
	{name: "required fields first", kind: legal, target: kmsTarget(kmsTargetOptions{answer: viaAnswerRewrite(legalRequiredFirst)})},
	{name: "idempotent PUT", kind: legal, target: kmsTarget(kmsTargetOptions{answer: viaAnswerRewrite(idempotentPUT())}),
		observed: "the KMS answered Success"},
	{name: "the ECU's owner checked before its supplier's registration", kind: legal, observed: "FORBIDDEN",
		target: kmsTarget(kmsTargetOptions{answer: refuses("NOT_REGISTERED", func(x *kmsExchange) {
			if id := fmtField(x.body, "EcuID"); x.env["ResultMessage"] == "The SupplierID is not registerd." {
				x.env["ResultReason"], x.env["ResultMessage"] = "FORBIDDEN", "The EcuID:"+id+" does not belong to the supplier 001D."
			}
		})})},
	{name: "the type's KeyIDs checked before the range", kind: legal, observed: "KEYID_NOT_FOR_TYPE",
		target: kmsTarget(kmsTargetOptions{answer: refuses("KEYID_RANGE", func(x *kmsExchange) {
			typ := fmtField(x.body, "ProvisioningType")
			msg := map[string]string{"SecOCKey": "between 4(0x04) and C(0x0C)", "SupplierSymmKey": "D(0x0D)", "EcuMasterKey": "1(0x01)"}[typ]
			if k := fmtField(x.body, "KeyID"); msg != "" && len(k) == 1 {
				x.env["ResultReason"], x.env["ResultMessage"] = "KEYID_NOT_FOR_TYPE", "The KeyID of "+typ+" must be "+msg+"."
			}
		})})},

	// Faults of the SHE messages and KeySyncValue.
	{name: "wrong M5", kind: faulty, caught: []string{tMasterIssue, tCounters},
		target: kmsTarget(kmsTargetOptions{answer: func(x *kmsExchange) { flipLast(records(x), "M5") }})},
	{name: "Records in uppercase hex", kind: faulty, caught: []string{tMasterIssue},
		target: kmsTarget(kmsTargetOptions{answer: func(x *kmsExchange) {
			r := records(x)
			for _, f := range []string{"M1", "M2", "M3", "M4", "M5"} {
				if s, ok := r[f].(string); ok {
					r[f] = strings.ToUpper(s)
				}
			}
		}})},
	{name: "KeySyncValue wrong", kind: faulty, caught: []string{tChallenge, tSync},
		target: kmsTarget(kmsTargetOptions{answer: func(x *kmsExchange) { flipLast(records(x), "KeySyncValue") }})},
	{name: "Challenge ignored: no KeySyncValue", kind: faulty, caught: []string{tChallenge},
		target: kmsTarget(kmsTargetOptions{answer: func(x *kmsExchange) {
			if isPost(x.req, kms.PathProvisioning) && records(x) != nil {
				delete(records(x), "KeySyncValue")
			}
		}})},
	{name: "sync Challenge repeated", kind: faulty, caught: []string{tSync},
		target: kmsTarget(kmsTargetOptions{answer: replayFirst(func(x *kmsExchange) string {
			if isPost(x.req, kms.PathKeySync) {
				return slotKey(x)
			}
			return ""
		})})},

	// Faults of counters and state.
	{name: "counter reused: one issue handed out again", kind: faulty, caught: []string{tCounters, tOpFailed},
		target: kmsTarget(kmsTargetOptions{answer: replayFirst(func(x *kmsExchange) string {
			if isPost(x.req, kms.PathProvisioning) && x.body["ProvisioningType"] == "EcuMasterKey" {
				return slotKey(x)
			}
			return ""
		})})},
	{name: "state lost across a restart", kind: faulty, caught: []string{tRestart},
		target: kmsTarget(kmsTargetOptions{freshStore: true})},
	{name: "master key advanced on OperationFailed", kind: faulty, caught: []string{tOpFailed, tMovesOn},
		target: kmsTarget(kmsTargetOptions{request: func(req *http.Request, body map[string]any) {
			if isPut(req, kms.PathProvisioning) && body["ProvisioningType"] == "EcuMasterKey" && body["ResultStatus"] == "OperationFailed" {
				body["ResultStatus"] = "Success"
			}
		}})},
	{name: "master key never advanced on Success", kind: faulty, caught: []string{tMovesOn, tSync, tRestart},
		target: kmsTarget(kmsTargetOptions{request: func(req *http.Request, body map[string]any) {
			if isPut(req, kms.PathProvisioning) && body["ProvisioningType"] == "EcuMasterKey" && body["ResultStatus"] == "Success" {
				body["ResultStatus"] = "OperationFailed"
			}
		}})},
	{name: "a result for nothing issued answered Success", kind: faulty, caught: []string{tMessage("result-nothing-issued")},
		target: kmsTarget(kmsTargetOptions{answer: refuses("NOTHING_ISSUED", func(x *kmsExchange) {
			x.env["ResultStatus"], x.env["ResultReason"], x.env["ResultMessage"] = "Success", "", ""
		})})},

	// Faults of the checks of a request.
	{name: "ProvisioningType in any letter case", kind: faulty,
		caught: []string{tMessage("provisioningtype-lowercase"), tMessage("provisioningtype-uppercase")},
		target: kmsTarget(kmsTargetOptions{request: canonical("ProvisioningType", "EcuMasterKey", "SupplierSymmKey", "SecOCKey")})},
	{name: "ResultStatus in any letter case", kind: faulty, caught: []string{tMessage("resultstatus-lowercase")},
		target: kmsTarget(kmsTargetOptions{request: canonical("ResultStatus", "Success", "OperationFailed")})},
	{name: "Phase in any letter case", kind: faulty, caught: []string{tMessage("phase-lowercase")},
		target: kmsTarget(kmsTargetOptions{request: canonical("Phase", "Prod", "Dev")})},
	{name: "SecOCKey KeyID E and F accepted", kind: faulty, caught: []string{tMessage("keyid-secoc-e"), tMessage("keyid-secoc-f")},
		target: kmsTarget(kmsTargetOptions{request: acceptKeyID("SecOCKey", "4", "E", "F")})},
	{name: "SecOCKey KeyID 3 accepted", kind: faulty, caught: []string{tMessage("keyid-secoc-3")},
		target: kmsTarget(kmsTargetOptions{request: acceptKeyID("SecOCKey", "4", "0", "1", "2", "3")})},
	{name: "SupplierSymmKey with any KeyID", kind: faulty, caught: []string{tMessage("keyid-supplier-1"), tMessage("keyid-supplier-e")},
		target: kmsTarget(kmsTargetOptions{request: acceptKeyID("SupplierSymmKey", "D", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "E", "F")})},
	{name: "EcuMasterKey with any KeyID", kind: faulty, caught: []string{tMessage("keyid-master-d"), tMessage("keyid-master-f")},
		target: kmsTarget(kmsTargetOptions{request: acceptKeyID("EcuMasterKey", "1", "0", "2", "3", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "E", "F")})},
	{name: "a prefix of the SupplierSecretKey accepted", kind: faulty, caught: []string{tMessage("secret-prefix-16"), tMessage("secret-prefix-31")},
		target: kmsTarget(kmsTargetOptions{request: acceptSecret(func(given, right string) bool { return strings.HasPrefix(right, given) })})},
	{name: "the SupplierSecretKey's last digits not compared", kind: faulty, caught: []string{tMessage("secret-one-nibble")},
		target: kmsTarget(kmsTargetOptions{request: acceptSecret(func(given, right string) bool { return len(given) == len(right) && given[:4] == right[:4] })})},
	{name: "KeyIDs the EcuType refuses accepted", kind: faulty, caught: []string{tNotAllowed},
		target: kmsTarget(kmsTargetOptions{registry: strings.Replace(suiteRegistryJSON, `"type": "0002", "keyIds": ["1", "D", "4"]`,
			`"type": "0002", "keyIds": ["1", "D", "4", "5", "6", "7", "8", "9", "A", "B", "C"]`, 1)})},
	{name: "a SecOC key issued for a cluster the EcuType does not list", kind: faulty, caught: []string{tForeignCluster},
		target: kmsTarget(kmsTargetOptions{registry: strings.Replace(suiteRegistryJSON,
			`"clusters": ["5EC0C1A5E0000001", "5EC0C1A5E0000002"]`, `"clusters": ["*"]`, 1)})},

	// Faults of the answers' form.
	{name: "wrong message spelling (registered)", kind: faulty, caught: []string{tMessage("doc-supplier-secret-key")},
		target: kmsTarget(kmsTargetOptions{answer: refuses("SECRET_NOT_REGISTERED", func(x *kmsExchange) {
			x.env["ResultMessage"] = strings.Replace(fmt.Sprint(x.env["ResultMessage"]), "registerd", "registered", 1)
		})})},
	{name: "HTTP 400 for a business error", kind: faulty, caught: []string{tMessage("doc-keyid-range"), tMessage("doc-required-keyid")},
		target: kmsTarget(kmsTargetOptions{answer: func(x *kmsExchange) {
			if x.status == http.StatusOK && x.env["ResultStatus"] == "OperationFailed" {
				x.status = http.StatusBadRequest
			}
		}})},
	{name: "ResultReason missing", kind: faulty, caught: []string{tMessage("doc-required-keyid"), tMessage("doc-keyid-range")},
		target: kmsTarget(kmsTargetOptions{answer: func(x *kmsExchange) {
			if x.env["ResultStatus"] == "OperationFailed" {
				delete(x.env, "ResultReason")
			}
		}})},
	{name: "fields the contract does not name, under CONF_STRICT", kind: faulty, caught: []string{tMasterIssue, tMessage("doc-required-keyid")},
		target: kmsTarget(kmsTargetOptions{answer: viaAnswerRewrite(legalExtraFields), env: []string{"CONF_STRICT=1"}})},

	// Faults of authentication.
	{name: "token not checked", kind: faulty, caught: []string{tNoToken, tWrongToken},
		target: kmsTarget(kmsTargetOptions{noAuth: true})},
	{name: "any token taken", kind: faulty, caught: []string{tWrongToken},
		target: kmsTarget(kmsTargetOptions{request: func(req *http.Request, _ map[string]any) {
			if req.Header.Get("Authorization") != "" {
				req.Header.Set("Authorization", "Bearer "+suiteToken)
			}
		}})},
	{name: "another supplier's ECU served", kind: faulty, caught: []string{tOtherECU},
		target: kmsTarget(kmsTargetOptions{request: func(req *http.Request, body map[string]any) {
			if id := fmtField(body, "EcuID"); len(id) == 54 && strings.EqualFold(id[28:32], suiteOtherSupplier) {
				req.Header.Set("Authorization", "Bearer suite-token-0001")
			}
		}})},
	{name: "401 answered with HTTP 200", kind: faulty, caught: []string{tNoToken, tWrongToken},
		target: kmsTarget(kmsTargetOptions{answer: refuses("UNAUTHORIZED", func(x *kmsExchange) { x.status = http.StatusOK })})},
}

// teethTable is every row: the KMS rows here; CLM rows (suite "clm", a target constructor
// returning CONF_CLM_URL and the like) are appended the same way.
func teethTable() []tooth {
	var rows []tooth
	for _, r := range kmsTeeth {
		r.suite = "kms"
		rows = append(rows, r)
	}
	return rows
}

// TestTeethTable runs each row's suite against its target: a fault must fail the suite on every
// test the row names (failed, not errored), a legal variant must pass it with no test skipped.
func TestTeethTable(t *testing.T) {
	skipUnderRace(t)
	for _, row := range teethTable() {
		t.Run(string(row.kind)+"/"+row.name, func(t *testing.T) {
			t.Parallel()
			env := append([]string{"CONF_SUITES=" + row.suite}, row.target(t)...)
			res, out, runErr := runSuites(t, env...)
			outcome := map[string]report.Outcome{}
			var notPassed []string
			for _, tr := range res.Tests {
				if tr.Suite != row.suite {
					continue
				}
				outcome[tr.Name] = tr.Outcome
				if tr.Outcome != report.Pass {
					notPassed = append(notPassed, fmt.Sprintf("%s: %s %s", tr.Outcome, tr.Name, firstLine(tr.Message)))
				}
				if row.kind == legal && row.observed != "" && strings.Contains(strings.Join(tr.Observations, "\n"), row.observed) {
					row.observed = ""
				}
			}
			if len(outcome) == 0 {
				t.Fatalf("no %s test ran:\n%s", row.suite, out)
			}
			switch row.kind {
			case legal:
				if runErr != nil || len(notPassed) > 0 {
					t.Fatalf("a legal variant did not pass: %s\n%s", strings.Join(notPassed, "\n"), out)
				}
				if row.observed != "" {
					t.Errorf("no observation %q recorded", row.observed)
				}
			case faulty:
				if runErr == nil {
					t.Fatalf("the %s suite passed against the fault", row.suite)
				}
				for _, want := range row.caught {
					if !caughtBy(outcome, want) {
						t.Errorf("not caught by %q; not passed:\n%s", want, strings.Join(notPassed, "\n"))
					}
				}
			}
		})
	}
}

// caughtBy reports whether a test whose name contains part failed (not errored or skipped).
func caughtBy(outcome map[string]report.Outcome, part string) bool {
	for name, o := range outcome {
		if strings.Contains(name, part) && o == report.Fail {
			return true
		}
	}
	return false
}

// firstLine is the first line of s.
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// TestTeethTableSize: the table keeps at least 20 KMS faults, each naming a test that must catch
// it, and 5 legal KMS variants.
func TestTeethTableSize(t *testing.T) {
	count := map[toothKind]int{}
	for _, r := range teethTable() {
		if r.suite != "kms" {
			continue
		}
		count[r.kind]++
		if r.kind == faulty && len(r.caught) == 0 {
			t.Errorf("fault %q names no test that must catch it", r.name)
		}
	}
	if count[faulty] < 20 || count[legal] < 5 {
		t.Errorf("kms rows: %d faults, %d legal variants; want at least 20 and 5", count[faulty], count[legal])
	}
}
