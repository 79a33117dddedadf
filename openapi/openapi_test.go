package openapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestKMSSpecIsValid(t *testing.T) {
	spec, err := Load(KMSSpec)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/app/automotive/supplierKeyProvisioning", "/app/automotive/supplierKeySyncValue", "/healthz"} {
		if spec.Doc.Paths.Find(p) == nil {
			t.Errorf("no path %s", p)
		}
	}
}

func TestCLMSpecIsValid(t *testing.T) {
	spec, err := Load(CLMSpec)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/SWCLM/v10/IDInfo", "/SWCLM/v10/CredInfo", "/SWCLM/v10/KeyInfo", "/SWCLM/v10/SystemStatus", "/SWCLM/v10/crl/{catype}"} {
		if spec.Doc.Paths.Find(p) == nil {
			t.Errorf("no path %s", p)
		}
	}
}

// TestCLMDiscriminator: a mode-multiplexed body is checked against its mode's schema only.
func TestCLMDiscriminator(t *testing.T) {
	spec, err := Load(CLMSpec)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		body string
		ok   bool
	}{
		{`{"mode":"create","tenantid":"t","alias":"a"}`, true},
		{`{"mode":"create","tenanted":"t","alias":"a"}`, true},
		{`{"mode":"create","alias":"a"}`, false},
		{`{"mode":"auth","keyid":"0000000001","key":"k"}`, true},
		{`{"mode":"auth","keyid":"0000000001"}`, false},
		{`{"mode":"rename","keyid":"0000000001","key":"k"}`, false},
	} {
		req := httptest.NewRequest("POST", "/SWCLM/v10/IDInfo", strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		_, err := spec.CheckRequest(req, []byte(c.body))
		if (err == nil) != c.ok {
			t.Errorf("%s: error %v, want ok=%v", c.body, err, c.ok)
		}
	}
}

// TestTransportCatchesViolations: a server answering outside the contract, and a request
// outside it, are both reported.
func TestTransportCatchesViolations(t *testing.T) {
	spec, err := Load(KMSSpec)
	if err != nil {
		t.Fatal(err)
	}
	answer := `{"ResultStatus":"Success","ResultReason":"","ResultMessage":"","Records":{"KeyID":"1","M1":"00"}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	tr := &Transport{Spec: spec}
	client := &http.Client{Transport: tr}
	good := `{"ProvisioningType":"EcuMasterKey","KeyID":"1","EcuID":"010203040506070801020304000300010000000000000000000002"}`
	resp, err := client.Post(srv.URL+"/app/automotive/supplierKeyProvisioning", "application/json", strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	v := tr.Violations()
	if len(v) != 1 || v[0].Request || !strings.Contains(v[0].Err.Error(), "M1") {
		t.Fatalf("violations %v: want one, of the response's M1", v)
	}
	answer = `{"ResultStatus":"OperationFailed","ResultReason":"PROVISIONING_TYPE_INVALID","ResultMessage":"…"}`
	resp, err = client.Post(srv.URL+"/app/automotive/supplierKeyProvisioning", "application/json",
		strings.NewReader(`{"ProvisioningType":"SecOckKey","KeyID":"4","EcuID":"0102"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v = tr.Violations(); len(v) != 2 || !v[1].Request {
		t.Fatalf("violations %v: want the request reported", v)
	}
}

// documentAnswers is testdata/kms-document-answers.json.
type documentAnswers struct {
	Answers []struct {
		Where, Method, Path string
		Request, Answer     json.RawMessage
	}
}

// checkAnswer checks answer as the response to method path (with request as its body) and
// content type ct.
func checkAnswer(t *testing.T, spec *Spec, method, path string, request, answer []byte, ct string) error {
	t.Helper()
	if request == nil {
		request = []byte("{}")
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(request))
	req.Header.Set("Content-Type", "application/json")
	in, _ := spec.CheckRequest(req, request) // the document's requests have misprints of their own
	if in == nil {
		t.Fatalf("%s %s: no route", method, path)
	}
	return spec.CheckResponse(in, http.StatusOK, http.Header{"Content-Type": {ct}}, answer)
}

// TestKMSDocumentAnswersKeepTheContract: every example answer of the OEM's KMS document keeps
// kms.yaml, as written and tolerant, also with a charset parameter on the media type: Records
// without KeyID (SupplierSymmKey) and with KeyID "" (supplierKeySyncValue) included.
func TestKMSDocumentAnswersKeepTheContract(t *testing.T) {
	raw, err := os.ReadFile("testdata/kms-document-answers.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc documentAnswers
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Answers) != 9 {
		t.Fatalf("%d answers, want the document's 9", len(doc.Answers))
	}
	strict, err := KMS()
	if err != nil {
		t.Fatal(err)
	}
	tolerant, err := KMSTolerant()
	if err != nil {
		t.Fatal(err)
	}
	routes := [][2]string{{"POST", "/app/automotive/supplierKeyProvisioning"}, {"PUT", "/app/automotive/supplierKeyProvisioning"},
		{"POST", "/app/automotive/supplierKeySyncValue"}, {"PUT", "/app/automotive/supplierKeySyncValue"}}
	for _, a := range doc.Answers {
		rs := routes
		if a.Method != "*" {
			rs = [][2]string{{a.Method, a.Path}}
		}
		for _, r := range rs {
			for _, ct := range []string{"application/json", "application/json; charset=utf-8"} {
				for name, spec := range map[string]*Spec{"as written": strict, "tolerant": tolerant} {
					if err := checkAnswer(t, spec, r[0], r[1], a.Request, a.Answer, ct); err != nil {
						t.Errorf("%s (%s %s, %s, contract %s): %v", a.Where, r[0], r[1], ct, name, err)
					}
				}
			}
		}
	}
}

// TestTolerantContract: the tolerant contract takes fields it does not name, in the envelope and
// in Records, which the contract as written refuses; both still refuse a named field's bad value.
func TestTolerantContract(t *testing.T) {
	strict, err := KMS()
	if err != nil {
		t.Fatal(err)
	}
	tolerant, err := KMSTolerant()
	if err != nil {
		t.Fatal(err)
	}
	const path = "/app/automotive/supplierKeySyncValue"
	extra := []byte(`{"ResultStatus":"Success","ResultReason":"","ResultMessage":"","RequestID":"42",
		"Records":{"KeyID":"D","KeySyncValue":"e3a45734090e095e647ad21477120710","Challenge":"f6daf9cb30419105c64d27857da69f6b","Note":"x"}}`)
	if err := checkAnswer(t, tolerant, "POST", path, nil, extra, "application/json"); err != nil {
		t.Errorf("tolerant: %v", err)
	}
	if err := checkAnswer(t, strict, "POST", path, nil, extra, "application/json"); err == nil ||
		!strings.Contains(err.Error(), "RequestID") || !strings.Contains(err.Error(), "Note") {
		t.Errorf("as written: %v, want RequestID and Note refused", err)
	}
	bad := []byte(`{"ResultStatus":"Success","ResultReason":"","ResultMessage":"","Records":{"KeyID":"E","Challenge":"00"}}`)
	for name, spec := range map[string]*Spec{"as written": strict, "tolerant": tolerant} {
		if err := checkAnswer(t, spec, "POST", path, nil, bad, "application/json"); err == nil ||
			!strings.Contains(err.Error(), "KeyID") || !strings.Contains(err.Error(), "Challenge") {
			t.Errorf("%s: %v, want KeyID E and the short Challenge refused", name, err)
		}
	}
}
