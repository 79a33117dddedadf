package kms_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
)

// FuzzProvisioningRequest sends arbitrary bodies to every endpoint of one server. The server must
// never panic, never answer 500 (no request can make the store fail), and always answer the
// envelope: Success with Records only for POSTs, or OperationFailed with a listed reason.
func FuzzProvisioningRequest(f *testing.F) {
	f.Add(uint8(0), []byte(`{"ProvisioningType":"EcuMasterKey","KeyID":"1","EcuID":"010203040506070801020304000300010000000000000000000002"}`))
	f.Add(uint8(1), []byte(`{"ProvisioningType":"EcuMasterKey","EcuID":"010203040506070801020304000300010000000000000000000002","ResultStatus":"Success","ResultMessage":""}`))
	f.Add(uint8(2), []byte(`{"ProvisioningType":"SupplierSymmKey","KeyID":"D","EcuID":"0102030405060708010203040001001D0102030405060708090A0B"}`))
	f.Add(uint8(0), []byte(`{"ProvisioningType":"SecOCKey","KeyID":4,"EcuID":"0102030405060708010203040001001D0102030405060708090A0B","SupplierSecretKey":"1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d","Counter":"7","Challenge":"00112233445566778899aabbccddeeff"}`))
	f.Add(uint8(3), []byte(`[1,2,3]`))
	ref, err := reference.New(context.Background(), reference.Config{DataDir: f.TempDir(), CLMKeys: "ecdsa"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ref.Close() })
	reasons := map[string]bool{}
	for _, r := range kms.Reasons() {
		reasons[string(r)] = r != "INTERNAL"
	}
	endpoints := []struct{ method, path string }{
		{"POST", kms.PathProvisioning}, {"PUT", kms.PathProvisioning}, {"POST", kms.PathKeySync}, {"PUT", kms.PathKeySync},
	}
	spec, err := contract()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		ep := endpoints[int(which)%len(endpoints)]
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(ep.method, ep.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		ref.Handler().ServeHTTP(rec, req)
		// The request may break the contract (that is the point); the answer must keep it.
		in, _ := spec.CheckRequest(req, body)
		if err := spec.CheckResponse(in, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
			t.Fatalf("answer breaks the contract: %v\n%s", err, rec.Body.String())
		}
		var env kms.Envelope
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
			t.Fatalf("%s %s: answer is not the envelope: %q", ep.method, ep.path, rec.Body.String())
		}
		switch {
		case rec.Code == http.StatusInternalServerError:
			t.Fatalf("500 for %q: %+v", body, env)
		case env.ResultStatus == "Success":
			if env.ResultReason != "" || env.ResultMessage != "" || (env.Records != nil) != (ep.method == "POST") {
				t.Fatalf("success envelope %+v", env)
			}
		case env.ResultStatus != "OperationFailed" || !reasons[env.ResultReason] || env.ResultMessage == "":
			t.Fatalf("failure envelope %+v", env)
		}
	})
}
