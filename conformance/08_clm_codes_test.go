package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/openapi"
	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/reference"
	"github.com/shekit/shekit/vectors"
)

func init() { vectorRunners["clm_errorcode"] = runCLMErrorcode }

// clmContract is openapi/clm.yaml as a CLM under test must keep it: fields the contract does not
// name are allowed unless CONF_STRICT.
func clmContract() (*openapi.Spec, error) {
	if conf.Strict {
		return openapi.CLM()
	}
	return openapi.CLMTolerant()
}

// clmClient calls a CLM with the demo license, checking every exchange against
// openapi/clm.yaml: the answers always, a request whenever the server accepts it.
type clmClient struct {
	url, license string
	tr           *openapi.Transport
	rt           http.RoundTripper // tr, or a recorder around it
	rec          *recorder         // that recorder, for a client of the CLM under test
}

// newCLMClient is a client of a fresh in-process reference server.
func newCLMClient(url string) clmClient {
	spec, err := openapi.CLM() // the reference keeps the contract as written
	Expect(err).NotTo(HaveOccurred())
	tr := &openapi.Transport{Spec: spec}
	return clmClient{url: url, license: reference.DemoLicense, tr: tr, rt: tr}
}

// newCLMTarget is a client of the CLM under test, recording exchanges for the report.
func newCLMTarget() clmClient {
	spec, err := clmContract()
	if err != nil {
		harnessFail("openapi/clm.yaml: %v", err)
	}
	rec := newRecorder(spec)
	return clmClient{url: targets.clmURL, license: conf.CLMLicense, tr: rec.contract, rt: rec, rec: rec}
}

// answersKeptContract fails on any answer of the current test that broke the contract.
func (c clmClient) answersKeptContract() {
	if c.rec != nil {
		c.rec.keptContract(true)
		return
	}
	for _, vi := range c.tr.Violations() { // a client of a fresh server, made by this test
		Expect(vi.Request).To(BeTrue(), vi.String())
	}
}

func (c clmClient) call(method, path, body string) (int, map[string]any) {
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader([]byte(body)))
	Expect(err).NotTo(HaveOccurred())
	req.SetBasicAuth(clm.LicenseUser, c.license)
	req.Header.Set("Content-Type", "application/json")
	_, contractErr := c.tr.Spec.CheckRequest(req, []byte(body))
	resp, err := (&http.Client{Transport: c.rt}).Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		Expect(contractErr).NotTo(HaveOccurred(), "%s %s %s: accepted, but the request breaks openapi/clm.yaml", method, path, body)
	}
	var out map[string]any
	Expect(json.NewDecoder(resp.Body).Decode(&out)).To(Succeed())
	return resp.StatusCode, out
}

func (c clmClient) ok(path, body string) map[string]any {
	status, out := c.call("POST", path, body)
	ExpectWithOffset(1, out["errorcode"]).To(BeEquivalentTo(0), "%s %s: %v", path, body, out)
	ExpectWithOffset(1, status).To(BeNumerically("<", 300))
	return out
}

// clmWorld is an ID with one device, a certificate revoked and one valid, an AES key updated and
// one valid, and a TWINE key.
type clmWorld struct {
	auth, dev, device                          string
	cert, revoked, key, updated, twine, secret string
}

func newCLMWorld(c clmClient) clmWorld {
	id := c.ok(clm.PathIDInfo, `{"mode":"create","tenantid":"t","alias":"a"}`)
	w := clmWorld{auth: `"keyid":"` + id["keyid"].(string) + `","key":"` + id["key"].(string) + `"`}
	cert := func(dev string) map[string]any {
		return c.ok(clm.PathCredInfo, `{"mode":"create",`+w.auth+`,`+dev+`,"certmode":"client","catype":"ca1","clientsubject":"/CN=x","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`)
	}
	first := cert(`"devicename":"edge"`)
	w.device = first["deviceid"].(string)
	w.dev = `"deviceid":"` + w.device + `","devicename":"edge"`
	w.revoked, w.cert = first["clientkeynumber"].(string), cert(w.dev)["clientkeynumber"].(string)
	c.ok(clm.PathCredInfo, `{"mode":"revoke",`+w.auth+`,`+w.dev+`,"keynumber":"`+w.revoked+`","catype":"ca1"}`)
	key := func(keyType string) map[string]any {
		return c.ok(clm.PathKeyInfo, `{"mode":"create",`+w.auth+`,`+w.dev+`,"alias":"k","keytype":"`+keyType+`","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`)
	}
	w.updated = key("AES")["keynumber"].(string)
	w.key, w.secret = key("AES")["keynumber"].(string), ""
	w.twine = key("TWINE")["keynumber"].(string)
	c.ok(clm.PathKeyInfo, `{"mode":"update",`+w.auth+`,`+w.dev+`,"keynumber":"`+w.updated+`","newkeynumber":"`+w.key+`","filepath":"/f"}`)
	return w
}

// clmProvokers send, for each errorcode reachable through the API, a request that must be
// answered with it.
var clmProvokers = map[int]func(c clmClient, w clmWorld) (string, string, string){
	1101: func(c clmClient, w clmWorld) (string, string, string) { return "POST", clm.PathIDInfo, `{"mode":` },
	1102: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathIDInfo, `{"tenantid":"t"}`
	},
	1103: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathKeyInfo, `{"mode":"create",` + w.auth + `,` + w.dev + `,"alias":"k","keytype":"DES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`
	},
	1104: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathKeyInfo, `{"mode":"create",` + w.auth + `,` + w.dev + `,"alias":"` + strings.Repeat("a", 65) + `","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`
	},
	1201: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathIDInfo, `{"mode":"auth",` + strings.Replace(w.auth, `"key":"`, `"key":"x`, 1) + `}`
	},
	1204: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathIDInfo, `{"mode":"auth","keyid":"9999999998","key":"k"}`
	},
	1301: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathCredInfo, `{"mode":"get",` + w.auth + `,` + w.dev + `,"keynumber":"99999","catype":"ca1","filepath":"/k"}`
	},
	1302: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathCredInfo, `{"mode":"get",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.cert + `","catype":"ca9","filepath":"/k"}`
	},
	1303: func(c clmClient, w clmWorld) (string, string, string) {
		other := c.ok(clm.PathKeyInfo, `{"mode":"create",`+w.auth+`,"devicename":"other","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`)
		return "POST", clm.PathCredInfo, `{"mode":"get",` + w.auth + `,"deviceid":"` + other["deviceid"].(string) + `","devicename":"other","keynumber":"` + w.cert + `","catype":"ca1","filepath":"/k"}`
	},
	1306: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathCredInfo, `{"mode":"get",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.revoked + `","catype":"ca1","filepath":"/k"}`
	},
	1307: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathCredInfo, `{"mode":"update",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.cert + `","newkeynumber":"` + w.revoked + `","catype":"ca1","filepath":"/k"}`
	},
	1501: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathKeyInfo, `{"mode":"get",` + w.auth + `,` + w.dev + `,"keynumber":"99999","filepath":"/f"}`
	},
	1502: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathKeyInfo, `{"mode":"update",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.key + `","newkeynumber":"99999","filepath":"/f"}`
	},
	1503: func(c clmClient, w clmWorld) (string, string, string) {
		other := c.ok(clm.PathKeyInfo, `{"mode":"create",`+w.auth+`,"devicename":"other","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`)
		return "POST", clm.PathKeyInfo, `{"mode":"get",` + w.auth + `,"deviceid":"` + other["deviceid"].(string) + `","devicename":"other","keynumber":"` + w.key + `","filepath":"/f"}`
	},
	1504: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathKeyInfo, `{"mode":"get",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.updated + `","filepath":"/f"}`
	},
	1505: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathKeyInfo, `{"mode":"update",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.key + `","newkeynumber":"` + w.updated + `","filepath":"/f"}`
	},
	1507: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathKeyInfo, `{"mode":"update",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.key + `","newkeynumber":"` + w.twine + `","filepath":"/f"}`
	},
	1508: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathKeyInfo, `{"mode":"delete",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.key + `","commonkey":"AAAAAAAAAAAAAAAAAAAAAA==","filepath":"/f"}`
	},
	1701: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathKeyInfo, `{"mode":"get",` + w.auth + `,"deviceid":"` + w.device + `","devicename":"renamed","keynumber":"` + w.key + `","filepath":"/f"}`
	},
	1702: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathKeyInfo, `{"mode":"create",` + w.auth + `,"devicename":"edge","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`
	},
	1703: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathKeyInfo, `{"mode":"get",` + w.auth + `,` + w.dev + `,"devicekey":"not-the-key","keynumber":"` + w.key + `","filepath":"/f"}`
	},
	1706: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clm.PathKeyInfo, `{"mode":"get",` + w.auth + `,"deviceid":"nosuchdevice","devicename":"edge","keynumber":"` + w.key + `","filepath":"/f"}`
	},
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

// provokeCLMCode sends the request that must be answered with errorcode code and HTTP status, in
// a world of its own on the CLM c calls.
func provokeCLMCode(c clmClient, code, status int) {
	provoke, ok := clmProvokers[code]
	Expect(ok).To(BeTrue(), "no request provokes errorcode %d", code)
	w := newCLMWorld(c)
	method, path, body := provoke(c, w)
	got, out := c.call(method, path, body)
	Expect(out).To(HaveKeyWithValue("errorcode", BeEquivalentTo(code)), "%s %s %s", method, path, body)
	if conf.Strict || c.rec == nil { // the reference, or a CLM under CONF_STRICT: errorcode alone
		Expect(out).To(HaveLen(1), "the answer is errorcode alone: %v", out)
	}
	Expect(got).To(Equal(status))
	c.answersKeptContract()
}
