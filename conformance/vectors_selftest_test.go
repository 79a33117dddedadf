package conformance_test

// The vectors suite's runners that check the vectors against the kit's own model and fresh
// in-process reference servers: self-tests, which is why this file, unlike the suites' clients,
// imports the server's packages.

import (
	"context"
	"encoding/json"
	"net/http/httptest"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/openapi"
	"github.com/shekit/shekit/server/clm"
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

func init() { vectorRunners["clm_errorcode"] = runCLMErrorcode }

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
	spec, err := openapi.KMS() // the reference keeps the contract as written
	Expect(err).NotTo(HaveOccurred())
	tr := &openapi.Transport{Spec: spec}
	v.replay(tr, ts.URL, "", replayOptions{strict: true, answers: func() {
		for _, vi := range tr.Violations() {
			Expect(vi.Request).To(BeTrue(), vi.String())
		}
	}})
}

// newCLMClient is a client of a fresh in-process reference server.
func newCLMClient(url string) clmClient {
	spec, err := openapi.CLM() // the reference keeps the contract as written
	Expect(err).NotTo(HaveOccurred())
	tr := &openapi.Transport{Spec: spec}
	return clmClient{url: url, license: reference.DemoLicense, tr: tr, rt: tr}
}

// runCLMErrorcode checks one row of the CLM's error code table: the server answers the code with
// the table's HTTP status, and an "api" code is provoked through the API of a fresh server.
func runCLMErrorcode(_ *vectors.File, r vectors.Record) {
	var v struct {
		Errorcode int
		HTTP      int `json:"http"`
		Provoked  string
	}
	Expect(r.Decode(&v)).To(Succeed())
	Expect(clm.Codes()).To(HaveKeyWithValue(v.Errorcode, v.HTTP), "the server's table")
	Expect(clmStatus(v.Errorcode)).To(Equal(v.HTTP), "the suites' table")
	switch v.Provoked {
	case "fault", "never":
		// "fault": provoked in server/clm TestFaultCodes; "never": not answered (the note says why).
		Expect(clmProvokers).NotTo(HaveKey(v.Errorcode))
		return
	case "api":
	default:
		Fail("provoked must be api, fault or never, not " + v.Provoked)
	}
	srv, err := reference.New(context.Background(), reference.Config{DataDir: GinkgoT().TempDir(), CLMKeys: "ecdsa"})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	DeferCleanup(ts.Close)
	provokeCLMCode(newCLMClient(ts.URL), v.Errorcode, v.HTTP)
}
