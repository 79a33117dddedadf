package conformance_test

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/openapi"
	"github.com/shekit/shekit/openapi/clmwire"
	"github.com/shekit/shekit/vectors"
)

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
	rt           http.RoundTripper   // tr, or a recorder around it
	rec          *recorder           // that recorder, for a client of the CLM under test
	authorize    func(*http.Request) // license-key authentication (nil: user secureware-clm, password license)
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

// call sends a request and returns the HTTP status and the decoded JSON answer.
func (c clmClient) call(method, path, body string) (int, map[string]any) {
	status, _, out := c.exchange(method, path, body)
	return status, out
}

// exchange sends a request and returns the HTTP status, the answer's header and its decoded JSON.
func (c clmClient) exchange(method, path, body string) (int, http.Header, map[string]any) {
	req, err := http.NewRequest(method, c.url+path, bytes.NewReader([]byte(body)))
	Expect(err).NotTo(HaveOccurred())
	if c.authorize != nil {
		c.authorize(req)
	} else {
		req.SetBasicAuth(clmwire.LicenseUser, c.license)
	}
	req.Header.Set("Content-Type", "application/json")
	_, contractErr := c.tr.Spec.CheckRequest(req, []byte(body))
	resp, err := (&http.Client{Transport: c.rt}).Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	if resp.StatusCode < 300 {
		Expect(contractErr).NotTo(HaveOccurred(), "%s %s %s: accepted, but the request breaks openapi/clm.yaml", method, path, body)
	}
	var out map[string]any
	ExpectWithOffset(2, json.NewDecoder(resp.Body).Decode(&out)).To(Succeed(), "%s %s: the answer (HTTP %d) is not a JSON object", method, path, resp.StatusCode)
	return resp.StatusCode, resp.Header, out
}

func (c clmClient) ok(path, body string) map[string]any {
	status, out := c.call("POST", path, body)
	ExpectWithOffset(1, out["errorcode"]).To(BeEquivalentTo(0), "%s %s: %v", path, body, out)
	ExpectWithOffset(1, status).To(BeNumerically("<", 300))
	return out
}

// clmFresh is prefix with a random suffix: device names and aliases no earlier run used, so the
// suite runs again against the same CLM (whether device names are unique per ID or per CLM).
func clmFresh(prefix string) string {
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

// clmWorld is an ID with one device, a certificate revoked and one valid, an AES key updated and
// one valid, and a TWINE key.
type clmWorld struct {
	auth, dev, device, name                    string
	keyid, password                            string // the ID's
	cert, revoked, key, updated, twine, secret string
	certSerial, commonkey                      string // of cert and of key
}

func newCLMWorld(c clmClient) clmWorld {
	id := c.ok(clmwire.PathIDInfo, `{"mode":"create","tenantid":"t","alias":"`+clmFresh("a")+`"}`)
	w := clmWorld{auth: `"keyid":"` + id["keyid"].(string) + `","key":"` + id["key"].(string) + `"`, name: clmFresh("edge"),
		keyid: id["keyid"].(string), password: id["key"].(string)}
	cert := func(dev string) map[string]any {
		return c.ok(clmwire.PathCredInfo, `{"mode":"create",`+w.auth+`,`+dev+`,"certmode":"client","catype":"ca1","clientsubject":"/CN=x","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`)
	}
	first := cert(`"devicename":"` + w.name + `"`)
	w.device = first["deviceid"].(string)
	w.dev = `"deviceid":"` + w.device + `","devicename":"` + w.name + `"`
	second := cert(w.dev)
	w.revoked, w.cert, w.certSerial = first["clientkeynumber"].(string), second["clientkeynumber"].(string), second["clientserial"].(string)
	c.ok(clmwire.PathCredInfo, `{"mode":"revoke",`+w.auth+`,`+w.dev+`,"keynumber":"`+w.revoked+`","catype":"ca1"}`)
	key := func(keyType, bits string) map[string]any {
		return c.ok(clmwire.PathKeyInfo, `{"mode":"create",`+w.auth+`,`+w.dev+`,"alias":"k","keytype":"`+keyType+`","keylength":"`+bits+`","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`)
	}
	w.updated = key("AES", "128")["keynumber"].(string)
	valid := key("AES", "128")
	w.key, w.commonkey, w.secret = valid["keynumber"].(string), valid["commonkey"].(string), ""
	w.twine = key("TWINE", "80")["keynumber"].(string) // 80 bits: the length every reading of the document allows
	c.ok(clmwire.PathKeyInfo, `{"mode":"update",`+w.auth+`,`+w.dev+`,"keynumber":"`+w.updated+`","newkeynumber":"`+w.key+`","filepath":"/f"}`)
	return w
}

// otherDevice registers another device of w's ID and returns its deviceid and name.
func (w clmWorld) otherDevice(c clmClient) (string, string) {
	name := clmFresh("other")
	other := c.ok(clmwire.PathKeyInfo, `{"mode":"create",`+w.auth+`,"devicename":"`+name+`","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`)
	return other["deviceid"].(string), name
}

// clmProvokers send, for each errorcode reachable through the API, a request that must be
// answered with it.
var clmProvokers = map[int]func(c clmClient, w clmWorld) (string, string, string){
	1101: func(c clmClient, w clmWorld) (string, string, string) { return "POST", clmwire.PathIDInfo, `{"mode":` },
	1102: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathIDInfo, `{"tenantid":"t"}`
	},
	1103: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathKeyInfo, `{"mode":"create",` + w.auth + `,` + w.dev + `,"alias":"k","keytype":"DES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`
	},
	1104: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathKeyInfo, `{"mode":"create",` + w.auth + `,` + w.dev + `,"alias":"` + strings.Repeat("a", 65) + `","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`
	},
	1201: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathIDInfo, `{"mode":"auth",` + strings.Replace(w.auth, `"key":"`, `"key":"x`, 1) + `}`
	},
	1204: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathIDInfo, `{"mode":"auth","keyid":"9999999998","key":"k"}`
	},
	1301: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathCredInfo, `{"mode":"get",` + w.auth + `,` + w.dev + `,"keynumber":"99999","catype":"ca1","filepath":"/k"}`
	},
	1302: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathCredInfo, `{"mode":"get",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.cert + `","catype":"ca9","filepath":"/k"}`
	},
	// 1303 and 1503 through revoke and delete, which the document does not describe as linking
	// what they name to the requesting device (create, get and update do: sections 4.1-4.3, 5.1-5.3).
	1303: func(c clmClient, w clmWorld) (string, string, string) {
		id, name := w.otherDevice(c)
		return "POST", clmwire.PathCredInfo, `{"mode":"revoke",` + w.auth + `,"deviceid":"` + id + `","devicename":"` + name + `","keynumber":"` + w.cert + `","catype":"ca1"}`
	},
	1306: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathCredInfo, `{"mode":"get",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.revoked + `","catype":"ca1","filepath":"/k"}`
	},
	1307: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathCredInfo, `{"mode":"update",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.cert + `","newkeynumber":"` + w.revoked + `","catype":"ca1","filepath":"/k"}`
	},
	1501: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathKeyInfo, `{"mode":"get",` + w.auth + `,` + w.dev + `,"keynumber":"99999","filepath":"/f"}`
	},
	1502: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathKeyInfo, `{"mode":"update",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.key + `","newkeynumber":"99999","filepath":"/f"}`
	},
	1503: func(c clmClient, w clmWorld) (string, string, string) {
		id, name := w.otherDevice(c)
		return "POST", clmwire.PathKeyInfo, `{"mode":"delete",` + w.auth + `,"deviceid":"` + id + `","devicename":"` + name + `","keynumber":"` + w.key + `","commonkey":"` + w.commonkey + `","filepath":"/f"}`
	},
	1504: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathKeyInfo, `{"mode":"get",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.updated + `","filepath":"/f"}`
	},
	1505: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathKeyInfo, `{"mode":"update",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.key + `","newkeynumber":"` + w.updated + `","filepath":"/f"}`
	},
	1507: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathKeyInfo, `{"mode":"update",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.key + `","newkeynumber":"` + w.twine + `","filepath":"/f"}`
	},
	1508: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathKeyInfo, `{"mode":"delete",` + w.auth + `,` + w.dev + `,"keynumber":"` + w.key + `","commonkey":"AAAAAAAAAAAAAAAAAAAAAA==","filepath":"/f"}`
	},
	1701: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathKeyInfo, `{"mode":"get",` + w.auth + `,"deviceid":"` + w.device + `","devicename":"renamed","keynumber":"` + w.key + `","filepath":"/f"}`
	},
	1702: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathKeyInfo, `{"mode":"create",` + w.auth + `,"devicename":"` + w.name + `","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`
	},
	1703: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathKeyInfo, `{"mode":"get",` + w.auth + `,` + w.dev + `,"devicekey":"not-the-key","keynumber":"` + w.key + `","filepath":"/f"}`
	},
	1706: func(c clmClient, w clmWorld) (string, string, string) {
		return "POST", clmwire.PathKeyInfo, `{"mode":"get",` + w.auth + `,"deviceid":"nosuchdevice","devicename":"` + w.name + `","keynumber":"` + w.key + `","filepath":"/f"}`
	},
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

// clmStatus is the HTTP status the document's error code table (appendix 7.1) gives code: the
// table of vectors/clm-errorcodes.json, which the suites read as a client would.
func clmStatus(code int) int { return clmCodeTable()[code] }

// clmCodeTable reads vectors/clm-errorcodes.json once: errorcode → HTTP status.
var clmCodeTable = sync.OnceValue(func() map[int]int {
	table := map[int]int{}
	f, err := vectors.Load("clm-errorcodes.json")
	if err != nil {
		panic(fmt.Sprintf("vectors/clm-errorcodes.json: %v", err)) // embedded: a broken build
	}
	for _, r := range f.Records {
		var v struct {
			Errorcode int
			HTTP      int `json:"http"`
		}
		if err := r.Decode(&v); err != nil {
			panic(fmt.Sprintf("vectors/clm-errorcodes.json %s: %v", r.ID, err))
		}
		table[v.Errorcode] = v.HTTP
	}
	return table
})

// expectRefused requires an answer that refuses a request with one of codes, with the HTTP
// status the document's table gives the code chosen, and carrying no certificate, key or
// password. Where more than one code is accepted (the document does not decide between them),
// the one chosen is recorded as an observation. It returns the code.
func expectRefused(status int, out map[string]any, what string, codes ...int) int {
	code, _ := out["errorcode"].(float64)
	ExpectWithOffset(1, codes).To(ContainElement(int(code)), "%s: errorcode %v, want one of %v: %v", what, out["errorcode"], codes, out)
	ExpectWithOffset(1, status).To(Equal(clmStatus(int(code))), "%s: errorcode %d with the HTTP status of the document's table", what, int(code))
	for _, field := range []string{"clientcert", "privatekey", "commonkey", "keyinfo", "key", "devicekey"} {
		ExpectWithOffset(1, out).NotTo(HaveKey(field), "%s: a refusal carries no %s", what, field)
	}
	if conf.Strict {
		ExpectWithOffset(1, out).To(HaveLen(1), "%s: CONF_STRICT: the answer is errorcode alone: %v", what, out)
	}
	if len(codes) > 1 {
		observe("%s: errorcode %d (accepted: %v)", what, int(code), codes)
	}
	return int(code)
}

// clmBody is base with changes, in order: a nil value removes the field. The result is JSON.
func clmBody(base map[string]any, changes ...map[string]any) string {
	m := map[string]any{}
	for k, v := range base {
		m[k] = v
	}
	for _, ch := range changes {
		for k, v := range ch {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Valid requests of w's ID, each with every field the document marks required: a client
// certificate and a key for a new device, and a get of w's valid certificate and key.
func (w clmWorld) certCreate() map[string]any {
	return map[string]any{"mode": "create", "keyid": w.keyid, "key": w.password, "devicename": clmFresh("dev"), "certmode": "client",
		"catype": "ca1", "clientsubject": "/CN=x", "keyfilepath": "/tmp/key", "cafilepath": "/c", "clientfilepath": "/k"}
}

func (w clmWorld) keyCreate() map[string]any {
	return map[string]any{"mode": "create", "keyid": w.keyid, "key": w.password, "devicename": clmFresh("dev"), "alias": "k",
		"keytype": "AES", "keyfilepath": "/tmp/key", "commonkeyfilepath": "/f"}
}

func (w clmWorld) certGet() map[string]any {
	return map[string]any{"mode": "get", "keyid": w.keyid, "key": w.password, "deviceid": w.device, "devicename": w.name,
		"keynumber": w.cert, "catype": "ca1", "filepath": "/k"}
}

func (w clmWorld) keyGet() map[string]any {
	return map[string]any{"mode": "get", "keyid": w.keyid, "key": w.password, "deviceid": w.device, "devicename": w.name,
		"keynumber": w.key, "filepath": "/f"}
}

// clmRefusal is a request with exactly one defect, every other field the document marks
// required present and valid, and the errorcodes that may refuse it (more than one where the
// document does not decide).
type clmRefusal struct {
	name  string
	codes []int
	send  func(c clmClient, w clmWorld) (path, body string)
}

// certCreateWith, keyCreateWith, certGetWith and keyGetWith are refusals of one changed request.
func certCreateWith(ch map[string]any) func(clmClient, clmWorld) (string, string) {
	return func(_ clmClient, w clmWorld) (string, string) {
		return clmwire.PathCredInfo, clmBody(w.certCreate(), ch)
	}
}

func keyCreateWith(ch map[string]any) func(clmClient, clmWorld) (string, string) {
	return func(_ clmClient, w clmWorld) (string, string) { return clmwire.PathKeyInfo, clmBody(w.keyCreate(), ch) }
}

func certGetWith(ch map[string]any) func(clmClient, clmWorld) (string, string) {
	return func(_ clmClient, w clmWorld) (string, string) { return clmwire.PathCredInfo, clmBody(w.certGet(), ch) }
}

func keyGetWith(ch map[string]any) func(clmClient, clmWorld) (string, string) {
	return func(_ clmClient, w clmWorld) (string, string) { return clmwire.PathKeyInfo, clmBody(w.keyGet(), ch) }
}

// clmRefusals are refusals beyond one request per errorcode (clmProvokers): the conditional
// requirements, the enumerations, every length limit of the document, the ID password on
// CredInfo and KeyInfo, and a certificate or key that is gone.
var clmRefusals = []clmRefusal{
	{"a p12 certificate without passphrase", []int{1102}, certCreateWith(map[string]any{"clientcerttype": "p12"})},
	{"a client certificate without clientsubject", []int{1102}, certCreateWith(map[string]any{"clientsubject": nil})},
	{"a client certificate without clientfilepath", []int{1102}, certCreateWith(map[string]any{"clientfilepath": nil})},
	{"a pem client certificate without cafilepath", []int{1102}, certCreateWith(map[string]any{"clientcerttype": "pem", "cafilepath": nil})},
	{"a CA certificate (caonly) without cafilepath", []int{1102}, certCreateWith(map[string]any{"certmode": "caonly", "catype": "CA",
		"clientsubject": nil, "clientfilepath": nil, "cafilepath": nil})},
	{"a certificate update that issues a new certificate without passphrase", []int{1102}, certGetWith(map[string]any{"mode": "update", "newfilepath": "/k2"})},
	{"a get of a certificate without keynumber and certserial", []int{1102}, certGetWith(map[string]any{"keynumber": nil})},
	{"a get of a pem certificate as p12 without passphrase", []int{1102}, certGetWith(map[string]any{"certtype": "p12"})},
	{"a key delete without commonkey", []int{1102}, keyGetWith(map[string]any{"mode": "delete"})},
	{"a clientsubject without CN", []int{1102, 1103, 1104}, certCreateWith(map[string]any{"clientsubject": "/C=JP/O=NEC"})},
	{"certmode in another letter case (CLIENT)", []int{1103}, certCreateWith(map[string]any{"certmode": "CLIENT"})},
	{"keytype in another letter case (aes)", []int{1103}, keyCreateWith(map[string]any{"keytype": "aes"})},
	{"clientcerttype in another letter case (PEM)", []int{1103}, certCreateWith(map[string]any{"clientcerttype": "PEM"})},
	{"a CredInfo mode the document does not list (issue)", []int{1103}, certCreateWith(map[string]any{"mode": "issue"})},
	{"an AES key of 192 bits", []int{1103, 1104}, keyCreateWith(map[string]any{"keylength": "192"})},
	{"a keylength that is not a number", []int{1103, 1104}, keyCreateWith(map[string]any{"keylength": "long"})},
	{"catype ca1 for a CA certificate (caonly)", []int{1302, 1103}, certCreateWith(map[string]any{"certmode": "caonly", "catype": "ca1",
		"clientsubject": nil, "clientfilepath": nil})},
	{"catype CA for a client certificate", []int{1302, 1103}, certCreateWith(map[string]any{"catype": "CA"})},
	{"a devicename of 257 bytes", []int{1104}, certCreateWith(map[string]any{"devicename": strings.Repeat("d", 257)})},
	{"a clientsubject of 513 bytes", []int{1104}, certCreateWith(map[string]any{"clientsubject": "/CN=" + strings.Repeat("s", 509)})},
	{"a passphrase of 129 bytes", []int{1104}, certCreateWith(map[string]any{"passphrase": strings.Repeat("p", 129)})},
	{"a clientfilepath of 1025 bytes", []int{1104}, certCreateWith(map[string]any{"clientfilepath": "/" + strings.Repeat("f", 1024)})},
	{"a cafilepath of 1025 bytes", []int{1104}, certCreateWith(map[string]any{"cafilepath": "/" + strings.Repeat("f", 1024)})},
	{"a filepath of 1025 bytes", []int{1104}, certGetWith(map[string]any{"filepath": "/" + strings.Repeat("f", 1024)})},
	{"a commonkeyfilepath of 1025 bytes", []int{1104}, keyCreateWith(map[string]any{"commonkeyfilepath": "/" + strings.Repeat("f", 1024)})},
	{"an ext_data item name of 129 bytes", []int{1104}, keyCreateWith(map[string]any{"ext_data": map[string]string{strings.Repeat("n", 129): "v"}})},
	{"an ext_data item value of 257 bytes", []int{1104}, certCreateWith(map[string]any{"ext_data": map[string]string{"osname": strings.Repeat("v", 257)}})},
	{"a certificate request with a wrong ID password", []int{1201}, certGetWith(map[string]any{"key": "not-the-password"})},
	{"a key request with a wrong ID password", []int{1201}, keyCreateWith(map[string]any{"key": "not-the-password"})},
	{"a key request of an ID that does not exist", []int{1204}, keyCreateWith(map[string]any{"keyid": "9999999997"})},
	{"a revoke of a revoked certificate", []int{1306}, func(_ clmClient, w clmWorld) (string, string) {
		return clmwire.PathCredInfo, clmBody(w.certGet(), map[string]any{"mode": "revoke", "keynumber": w.revoked, "filepath": nil})
	}},
	{"a get of a revoked certificate by its serial", []int{1306}, func(c clmClient, w clmWorld) (string, string) {
		c.ok(clmwire.PathCredInfo, clmBody(w.certGet(), map[string]any{"mode": "revoke", "filepath": nil}))
		return clmwire.PathCredInfo, clmBody(w.certGet(), map[string]any{"keynumber": nil, "certserial": w.certSerial})
	}},
	{"a get of a deleted key", []int{1501, 1504}, func(c clmClient, w clmWorld) (string, string) {
		c.ok(clmwire.PathKeyInfo, clmBody(w.keyGet(), map[string]any{"mode": "delete", "commonkey": w.commonkey}))
		return clmwire.PathKeyInfo, clmBody(w.keyGet())
	}},
}

// clmRefusalTest is the name of r's test.
func clmRefusalTest(r clmRefusal) string {
	codes := fmt.Sprint(r.codes[0])
	for _, code := range r.codes[1:] {
		codes += " or " + fmt.Sprint(code)
	}
	return fmt.Sprintf("refuses %s with errorcode %s", r.name, codes)
}

// refuseCLM sends r's request in a world of its own on the CLM c calls and requires a refusal.
func refuseCLM(c clmClient, r clmRefusal) {
	w := newCLMWorld(c)
	path, body := r.send(c, w)
	status, out := c.call("POST", path, body)
	expectRefused(status, out, r.name, r.codes...)
	c.answersKeptContract()
}
