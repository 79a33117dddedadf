package openapi

import (
	"net/http"
	"net/http/httptest"
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
