package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/openapi"
	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
	"github.com/shekit/shekit/vectors"
)

func init() {
	vectorRunners["kms_error"] = runKMSError
	vectorRunners["sp800_108_counter_cmac_aes128"] = func(_ *vectors.File, r vectors.Record) {
		var v struct {
			KI    hexBytes `json:"ki"`
			Fixed hexBytes `json:"fixed_input_data"`
			KO    hexBytes `json:"ko"`
		}
		Expect(r.Decode(&v)).To(Succeed())
		Expect(kms.CounterKDF(v.KI.block16(), v.Fixed)).To(Equal(v.KO.block16()))
	}
}

// kmsRequest is a request of a kms_error vector.
type kmsRequest struct {
	Method string
	Path   string
	Body   json.RawMessage
}

// kmsContract is openapi/kms.yaml.
var kmsContract = openapi.KMS

// send sends req to the server at url with an optional bearer token, through tr.
func (req kmsRequest) send(tr http.RoundTripper, url, token string) (*http.Response, []byte) {
	body := []byte(req.Body)
	var s string
	if json.Unmarshal(req.Body, &s) == nil { // a string body is sent as is
		body = []byte(s)
	}
	hr, err := http.NewRequest(req.Method, url+req.Path, bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	hr.Header.Set("Content-Type", "application/json")
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Transport: tr}).Do(hr)
	if err != nil {
		harnessFail("KMS unreachable: %v", err)
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(resp.Body)
	return resp, out.Bytes()
}

// kmsErrorVector is a kms_error vector: a request (after some that must succeed) and the exact
// envelope it must get.
type kmsErrorVector struct {
	kmsRequest
	Registry string
	Auth     string
	Token    string
	Before   []kmsRequest
	Expect   struct {
		HTTP          int    `json:"http"`
		ResultStatus  string `json:"ResultStatus"`
		ResultReason  string `json:"ResultReason"`
		ResultMessage string `json:"ResultMessage"`
	}
}

// replay sends the vector's requests to the KMS at url and compares the answer's HTTP status and
// envelope to the character; the answers must keep the contract (the requests break it on
// purpose).
func (v kmsErrorVector) replay(tr http.RoundTripper, contract *openapi.Transport, url, token string) {
	if token == "" {
		token = v.Token
	}
	for _, b := range v.Before {
		resp, body := b.send(tr, url, token)
		Expect(resp.StatusCode).To(Equal(http.StatusOK), "before: %s", body)
	}
	resp, body := v.send(tr, url, token)
	Expect(resp.StatusCode).To(Equal(v.Expect.HTTP), "%s", body)
	Expect(resp.Header.Get("Content-Type")).To(Equal("application/json"))
	var env map[string]any
	Expect(json.Unmarshal(body, &env)).To(Succeed())
	Expect(env).To(Equal(map[string]any{"ResultStatus": v.Expect.ResultStatus, "ResultReason": v.Expect.ResultReason,
		"ResultMessage": v.Expect.ResultMessage}), "the whole envelope, nothing else")
	for _, vi := range contract.Violations() {
		Expect(vi.Request).To(BeTrue(), vi.String())
	}
}

// runKMSError replays a kms_error vector against a fresh in-process reference server with the
// vector's registry and authentication.
func runKMSError(f *vectors.File, r vectors.Record) {
	var v kmsErrorVector
	Expect(r.Decode(&v)).To(Succeed())
	cfg := reference.Config{DataDir: GinkgoT().TempDir(), Auth: kms.Auth(v.Auth), CLMKeys: "ecdsa"}
	if v.Registry != "" {
		var regs map[string]json.RawMessage
		Expect(json.Unmarshal(f.Sections["registries"], &regs)).To(Succeed())
		Expect(regs).To(HaveKey(v.Registry))
		reg, err := kms.ParseRegistry(regs[v.Registry], "json")
		Expect(err).NotTo(HaveOccurred())
		cfg.Registry = reg
	}
	srv, err := reference.New(context.Background(), cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	DeferCleanup(ts.Close)
	spec, err := kmsContract()
	Expect(err).NotTo(HaveOccurred())
	tr := &openapi.Transport{Spec: spec}
	v.replay(tr, tr, ts.URL, "")
}
