package conformance_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/shekit/shekit/conformance/report"
	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/reference"
)

// clmExchange is one request through a CLM target's proxy. Before it is forwarded, a rewrite may
// change the request's JSON body and header; after, the answer.
type clmExchange struct {
	Req    *http.Request
	Body   map[string]any // the request's JSON object (nil when it is none)
	Status int            // the answer's HTTP status
	Header http.Header    // the answer's header
	Answer map[string]any // the answer's JSON object, numbers as json.Number (nil when it is none)
	Raw    []byte         // the answer's body when it is not a JSON object
	ref    http.Handler
}

// clmRewrite changes an exchange (before or after the reference answered it).
type clmRewrite func(x *clmExchange)

// code is the answer's errorcode (-1 when there is none).
func (x *clmExchange) code() int {
	n, ok := x.Answer["errorcode"].(json.Number)
	if !ok {
		return -1
	}
	v, _ := strconv.Atoi(n.String())
	return v
}

// is reports whether the exchange is a POST of mode to path.
func (x *clmExchange) is(path, mode string) bool {
	return x.Req.Method == http.MethodPost && x.Req.URL.Path == path && x.Body["mode"] == mode
}

// licensed reports whether the request carries the reference's license.
func (x *clmExchange) licensed() bool {
	user, pass, ok := x.Req.BasicAuth()
	return ok && user == clm.LicenseUser && pass == reference.DemoLicense
}

// post sends body to the reference behind the proxy at the exchange's path, with the license.
func (x *clmExchange) post(body map[string]any) (int, map[string]any) {
	raw, _ := json.Marshal(body)
	req := httptest.NewRequest(http.MethodPost, x.Req.URL.Path, bytes.NewReader(raw))
	req.SetBasicAuth(clm.LicenseUser, reference.DemoLicense)
	rec := httptest.NewRecorder()
	x.ref.ServeHTTP(rec, req)
	var out map[string]any
	dec := json.NewDecoder(rec.Body)
	dec.UseNumber()
	dec.Decode(&out)
	return rec.Code, out
}

// startCLMTarget starts a reference server on loopback behind a proxy that passes each request
// through before and each answer through after (nil: as it is): a small CLM target, faulty or
// legal, that the clm suite knows only by its URL. It returns the URL.
func startCLMTarget(t *testing.T, before, after clmRewrite) string {
	t.Helper()
	srv, err := reference.New(context.Background(), reference.Config{DataDir: t.TempDir(), CLMKeys: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return startCLMProxy(t, srv.Handler(), before, after)
}

// startCLMProxy serves ref behind a proxy that passes each request through before and each
// answer through after (nil: as it is), and returns its URL.
func startCLMProxy(t *testing.T, ref http.Handler, before, after clmRewrite) string {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		x := &clmExchange{Req: req, ref: ref}
		raw, _ := io.ReadAll(req.Body)
		if json.Unmarshal(raw, &x.Body) != nil {
			x.Body = nil
		}
		if before != nil {
			before(x)
			if x.Body != nil {
				raw, _ = json.Marshal(x.Body)
			}
		}
		req.Body = io.NopCloser(bytes.NewReader(raw))
		req.ContentLength = int64(len(raw))
		rec := httptest.NewRecorder()
		ref.ServeHTTP(rec, req)
		x.Status, x.Header, x.Raw = rec.Code, rec.Header(), rec.Body.Bytes()
		dec := json.NewDecoder(bytes.NewReader(x.Raw))
		dec.UseNumber()
		if dec.Decode(&x.Answer) != nil {
			x.Answer = nil
		}
		if after != nil {
			after(x)
		}
		out := x.Raw
		if x.Answer != nil {
			out, _ = json.Marshal(x.Answer)
		}
		maps.Copy(w.Header(), x.Header)
		w.Header().Del("Content-Length")
		w.WriteHeader(x.Status)
		w.Write(out)
	}))
	t.Cleanup(ts.Close)
	return ts.URL
}

// clmTarget is a constructor of a stateless target.
func clmTarget(before, after clmRewrite) func(t *testing.T) string {
	return func(t *testing.T) string { return startCLMTarget(t, before, after) }
}

// The clm suite's tests a CLM tooth names (the refusals' names come from clmRefusals).
const (
	clmTestID       = "CLM WebAPI / issues, lists, checks and deletes an ID and its password (IDInfo create, GET, auth, delete)"
	clmTestCerts    = "CLM WebAPI / issues certificates in pem, der and p12 that openssl verifies and opens, and a CA-only answer"
	clmTestCRL      = "CLM WebAPI / publishes a revoked certificate's serial in its CA's CRL (openssl crl)"
	clmTestKeys     = "CLM WebAPI / issues, gets, updates and deletes AES-128, AES-256 and TWINE keys (KeyInfo)"
	clmTestUpdate   = "CLM WebAPI / answers errorcode 1306 for a certificate an update replaced (get, revoke, update, by keynumber and serial); the new one keeps its subject"
	clmTestSubject  = "CLM WebAPI / issues certificates whose subject is the request's clientsubject, attribute by attribute (pem and der)"
	clmTestExpiry   = "CLM WebAPI / gives expiration in milliseconds since 1970 as a string: IDs and keys expire after now, within 1000 years, and keep it"
	clmTestAdopt    = "CLM WebAPI / takes an existing certificate as the update (newkeynumber): the answer is that certificate and the old one answers 1306"
	clmTestRelength = "CLM WebAPI / updates a key to another length of its type (AES 128 to 256, TWINE 80 to 128 or 256)"
	clmTestTenancy  = "CLM WebAPI / keeps each ID's devices, certificates and keys from every other ID (tenancy), and its password"
	clmTestPassword = "CLM WebAPI / refuses an ID password that is a prefix or an extension of the right one with errorcode 1201 (IDInfo, CredInfo, KeyInfo)"
	clmTestValidity = "CLM WebAPI / sets expirations and notAfter to issuance plus the declared validity (IDs, keys and their update, certificates)"
	clmTestNewPair  = "CLM WebAPI / answers, after an update that makes a new key pair, the private key of the new certificate, not the old one's"
	clmTestCAType   = "CLM WebAPI / answers the CA certificate in the cacerttype asked (pem, der): the same certificate, which signed the client certificate"
	clmTestCRLNow   = "CLM WebAPI / reflects a revocation in the CRL at once: the serial is listed, the CRL is newer and verifies under the CA"
	clmTestRestart  = "CLM WebAPI / keeps IDs, certificates (valid and revoked), keys and the CRL across a restart of the CLM"
)

// clmTestLicense is the license test of one way of failing it.
func clmTestLicense(how string) string {
	return "CLM WebAPI / license key authentication / refuses every API " + how + " with errorcode 1201 (HTTP 403, or 401 with a Basic challenge) and changes nothing"
}

// clmTestCode is the error code test of code.
func clmTestCode(code int) string {
	return fmt.Sprintf("CLM WebAPI / error codes / answers errorcode %d with HTTP %d where the document says", code, clm.Codes()[code])
}

// clmTestRefusal is the refusal test named name in clmRefusals.
func clmTestRefusal(name string) string {
	for _, r := range clmRefusals {
		if r.name == name {
			return "CLM WebAPI / refusals / " + clmRefusalTest(r)
		}
	}
	panic("no refusal " + name)
}

// clmToothKind says whether a CLM target must fail the clm suite or pass it.
type clmToothKind string

const (
	clmFault clmToothKind = "fault" // must fail, on every test of caught
	clmLegal clmToothKind = "legal" // different from the reference where the document allows: must pass
)

// clmTooth is one row of the CLM teeth table: a small target built in front of the reference,
// the CONF_* settings of the run, and what the run must show.
type clmTooth struct {
	name     string
	kind     clmToothKind
	target   func(t *testing.T) string             // starts the target, returns its URL
	withEnv  func(t *testing.T) (string, []string) // instead of target: also returns CONF_* settings (a restart command)
	env      []string                              // more CONF_* settings
	caught   []string                              // fault: tests that must fail (the run is focused on them)
	affects  []string                              // legal: the only tests the variant changes, which must pass (the run is focused on them); none: the whole suite must pass
	observed string                                // legal: an observation the run must record ("" none)
	runs     int                                   // legal: runs against the same target (0: one)
}

// clmTeeth is the table: each CLM fault must fail the clm suite on the tests named, each legal
// variant must pass it. A new rule of the document adds a row.
var clmTeeth = []clmTooth{
	{name: "old certificate still valid after an update", kind: clmFault, target: oldCertificateStaysValid, caught: []string{clmTestUpdate}},
	{name: "expiration in seconds", kind: clmFault, target: clmTarget(nil, scaleExpiration(func(ms int64) any { return fmt.Sprint(ms / 1000) })),
		caught: []string{clmTestExpiry}},
	{name: "expiration in microseconds", kind: clmFault, target: clmTarget(nil, scaleExpiration(func(ms int64) any { return fmt.Sprint(ms * 1000) })),
		caught: []string{clmTestExpiry}},
	{name: "clientsubject ignored", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		if x.is(clm.PathCredInfo, "create") && x.Body["clientsubject"] != nil {
			x.Body["clientsubject"] = "/CN=device"
		}
	}, nil), caught: []string{clmTestSubject, clmTestUpdate}},
	{name: "subject without its OU", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		if s, ok := x.Body["clientsubject"].(string); ok && x.is(clm.PathCredInfo, "create") {
			parts := strings.Split(s, "/")
			x.Body["clientsubject"] = strings.Join(slices.DeleteFunc(parts, func(p string) bool { return strings.HasPrefix(p, "OU=") }), "/")
		}
	}, nil), caught: []string{clmTestSubject, clmTestUpdate}},
	{name: "another ID's key visible", kind: clmFault, target: keysOfEveryID, caught: []string{clmTestTenancy}},
	{name: "wrong errorcode for a device name already registered", kind: clmFault, target: clmTarget(nil, func(x *clmExchange) {
		if x.code() == 1702 {
			x.Answer["errorcode"] = 1103
		}
	}), caught: []string{clmTestCode(1702)}},
	{name: "HTTP status not the document's for 1306", kind: clmFault, target: clmTarget(nil, func(x *clmExchange) {
		if x.code() == 1306 {
			x.Status = http.StatusNotFound
		}
	}), caught: []string{clmTestCode(1306), clmTestUpdate}},
	{name: "revoked certificate not in the CRL", kind: clmFault, target: staleCRL, caught: []string{clmTestCRL}},
	{name: "p12 encrypted with another passphrase", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		if x.Body["clientcerttype"] == "p12" || x.Body["certtype"] == "p12" {
			x.Body["passphrase"] = "changeit"
		}
	}, nil), caught: []string{clmTestCerts}},
	{name: "p12 without passphrase accepted", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		if x.Body["clientcerttype"] == "p12" && x.Body["passphrase"] == nil {
			x.Body["passphrase"] = "default"
		}
	}, nil), caught: []string{clmTestRefusal("a p12 certificate without passphrase")}},
	{name: "keylength ignored (AES-256 asked, AES-128 given)", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		if x.Req.URL.Path == clm.PathKeyInfo {
			delete(x.Body, "keylength")
		}
	}, nil), caught: []string{clmTestKeys}},
	{name: "keylength ignored on update", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		if x.is(clm.PathKeyInfo, "update") {
			delete(x.Body, "keylength")
		}
	}, nil), caught: []string{clmTestRelength}},
	{name: "newkeynumber ignored: an update issues a new certificate", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		if x.is(clm.PathCredInfo, "update") && x.Body["newkeynumber"] != nil {
			delete(x.Body, "newkeynumber")
			x.Body["passphrase"] = "p"
		}
	}, nil), caught: []string{clmTestAdopt}},
	{name: "TWINE-80 key of 16 bytes", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		if x.is(clm.PathKeyInfo, "create") && x.Body["keytype"] == "TWINE" && x.Body["keylength"] == "80" {
			x.Body["keylength"] = "128"
		}
	}, nil), caught: []string{clmTestKeys}},
	{name: "license not checked", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		x.Req.SetBasicAuth(clm.LicenseUser, reference.DemoLicense)
	}, nil), caught: []string{clmTestLicense("without license key"), clmTestLicense("with another user than secureware-clm"),
		clmTestLicense("with a wrong license key")}},
	{name: "license refused with 401 but no Basic challenge", kind: clmFault, target: clmTarget(nil, func(x *clmExchange) {
		if !x.licensed() {
			x.Status = http.StatusUnauthorized
			x.Header.Del("WWW-Authenticate")
		}
	}), caught: []string{clmTestLicense("with a wrong license key")}},
	{name: "unlicensed IDInfo create refused but done", kind: clmFault, target: clmTarget(nil, func(x *clmExchange) {
		if !x.licensed() && x.is(clm.PathIDInfo, "create") {
			x.post(x.Body)
		}
	}), caught: []string{clmTestLicense("with a wrong license key")}},
	{name: "keyid not 10 digits", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		if id, ok := x.Body["keyid"].(string); ok && len(id) < 10 {
			x.Body["keyid"] = fmt.Sprintf("%010s", id)
		}
	}, func(x *clmExchange) {
		if id, ok := x.Answer["keyid"].(string); ok && x.is(clm.PathIDInfo, "create") {
			x.Answer["keyid"] = strings.TrimLeft(id, "0")
		}
	}), caught: []string{clmTestID}},
	{name: "enumerations in another letter case accepted", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		for _, f := range []string{"keytype", "certmode", "clientcerttype"} {
			if s, ok := x.Body[f].(string); ok {
				x.Body[f] = map[string]string{"keytype": strings.ToUpper(s), "certmode": strings.ToLower(s), "clientcerttype": strings.ToLower(s)}[f]
			}
		}
	}, nil), caught: []string{clmTestRefusal("keytype in another letter case (aes)"), clmTestRefusal("certmode in another letter case (CLIENT)"),
		clmTestRefusal("clientcerttype in another letter case (PEM)")}},
	{name: "devicename length not bounded", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		if s, ok := x.Body["devicename"].(string); ok && len(s) > 256 {
			x.Body["devicename"] = s[:256]
		}
	}, nil), caught: []string{clmTestRefusal("a devicename of 257 bytes")}},
	{name: "ID password not checked", kind: clmFault, target: passwordsNotChecked, caught: []string{clmTestCode(1201),
		clmTestRefusal("a key request with a wrong ID password"), clmTestRefusal("a certificate request with a wrong ID password"), clmTestTenancy}},
	{name: "deleted ID still authenticates", kind: clmFault, target: clmTarget(nil, func(x *clmExchange) {
		if x.is(clm.PathIDInfo, "auth") && x.code() == 1204 && x.Body["keyid"] != "9999999998" {
			x.Status, x.Answer = http.StatusOK, map[string]any{"errorcode": 0, "keyid": x.Body["keyid"]}
		}
	}), caught: []string{clmTestID}},
	{name: "expiration as a number", kind: clmFault, target: clmTarget(nil, scaleExpiration(func(ms int64) any { return ms })),
		caught: []string{clmTestExpiry}},
	{name: "ext_data not bounded", kind: clmFault, target: clmTarget(func(x *clmExchange) {
		if _, ok := x.Body["ext_data"].(map[string]any); ok {
			x.Body["ext_data"] = map[string]any{"osname": "bounded"}
		}
	}, nil), caught: []string{clmTestRefusal("an ext_data item name of 129 bytes"), clmTestRefusal("an ext_data item value of 257 bytes")}},
	{name: "extra fields under CONF_STRICT", kind: clmFault, target: clmTarget(nil, addRequestID), env: []string{"CONF_STRICT=1"},
		caught: []string{clmTestID}},

	{name: "a prefix or an extension of the password accepted", kind: clmFault, target: passwordPrefixAccepted, caught: []string{clmTestPassword}},
	{name: "key expiration fixed far ahead (the document's example)", kind: clmFault, target: clmTarget(nil, func(x *clmExchange) {
		if x.Req.URL.Path == clm.PathKeyInfo && x.Answer["expiration"] != nil {
			x.Answer["expiration"] = "4655086987524"
		}
	}), caught: []string{clmTestValidity}},
	{name: "the old private key answered after an update", kind: clmFault, target: oldPrivateKeyAfterUpdate, caught: []string{clmTestNewPair}},
	{name: "der cacert as the base64 of its PEM text", kind: clmFault, target: clmTarget(nil, func(x *clmExchange) {
		if s, ok := x.Answer["cacert"].(string); ok && x.Body["cacerttype"] == "der" {
			der, _ := base64.StdEncoding.DecodeString(s)
			x.Answer["cacert"] = base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		}
	}), caught: []string{clmTestCAType}},
	{name: "CRL signed once and cached", kind: clmFault, target: cachedCRL, caught: []string{clmTestCRLNow}},
	{name: "revoke and delete through another device of the ID", kind: clmFault, target: linkNotChecked, caught: []string{clmTestCode(1303), clmTestCode(1503)}},
	{name: "privatekey encrypted under another passphrase", kind: clmFault, target: clmTarget(nil, func(x *clmExchange) {
		if x.Body["passphrase"] != nil {
			x.Body["passphrase"] = "changeit"
			encryptPrivateKey(x)
		}
	}), caught: []string{clmTestCerts, clmTestNewPair}},
	{name: "privatekey beside a p12 that is another key", kind: clmFault, target: clmTarget(nil, func(x *clmExchange) {
		if x.Answer["clientcerttype"] == "p12" && x.code() == 0 {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, _ := x509.MarshalPKCS8PrivateKey(key)
			x.Answer["privatekey"] = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
		}
	}), caught: []string{clmTestCerts}},
	{name: "state lost across a restart", kind: clmFault, withEnv: restartableCLMTarget(true), caught: []string{clmTestRestart}},

	{name: "as it is, twice", kind: clmLegal, target: clmTarget(nil, nil), runs: 2},
	{name: "charset", kind: clmLegal, target: clmTarget(nil, func(x *clmExchange) {
		if x.Answer != nil {
			x.Header.Set("Content-Type", "application/json; charset=utf-8")
		}
	})},
	{name: "extra fields", kind: clmLegal, target: clmTarget(nil, addRequestID), observed: "requestid"},
	{name: "license refused with 401 and a Basic challenge", kind: clmLegal, target: clmTarget(nil, func(x *clmExchange) {
		if !x.licensed() {
			x.Status = http.StatusUnauthorized
		}
	}), observed: "HTTP [401]", affects: []string{clmTestLicense("without license key"), clmTestLicense("with another user than secureware-clm"),
		clmTestLicense("with a wrong license key")}},
	{name: "a keylength not allowed answered 1104", kind: clmLegal, target: clmTarget(nil, func(x *clmExchange) {
		if _, err := strconv.Atoi(fmt.Sprint(x.Body["keylength"])); err == nil && x.code() == 1103 {
			x.Answer["errorcode"] = 1104
		}
	}), observed: "errorcode 1104", affects: []string{clmTestRefusal("an AES key of 192 bits")}},
	{name: "a deleted key answered 1504", kind: clmLegal, target: deletedKeyIs1504, observed: "errorcode 1504",
		affects: []string{clmTestRefusal("a get of a deleted key")}},
	{name: "get links what it fetches to the requesting device", kind: clmLegal, target: getRelinks},
	{name: "TWINE keys of 80 and 256 bits (the document's lengths)", kind: clmLegal, target: twine256, observed: "TWINE key lengths: 80 and 256 bits"},
	{name: "restarted on its store", kind: clmLegal, withEnv: restartableCLMTarget(false), affects: []string{clmTestRestart}},
	{name: "privatekey encrypted under the passphrase", kind: clmLegal, target: clmTarget(nil, encryptPrivateKey),
		observed: "encrypted under the request's passphrase", affects: []string{clmTestCerts, clmTestNewPair}},
	{name: "privatekey beside a p12 certificate", kind: clmLegal, target: clmTarget(nil, privateKeyBesideP12),
		observed: "a p12 answer carries privatekey too", affects: []string{clmTestCerts}},
}

// passwordPrefixAccepted compares an ID's password only as far as the shorter of the two goes:
// a password that is a prefix or an extension of the right one passes (the proxy puts the right
// one in the request).
func passwordPrefixAccepted(t *testing.T) string {
	var mu sync.Mutex
	passwords := map[string]string{} // keyid → key
	return startCLMTarget(t, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		key, _ := x.Body["key"].(string)
		right, ok := passwords[fmt.Sprint(x.Body["keyid"])]
		if ok && key != "" && (strings.HasPrefix(right, key) || strings.HasPrefix(key, right)) {
			x.Body["key"] = right
		}
	}, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		if x.is(clm.PathIDInfo, "create") && x.code() == 0 {
			passwords[fmt.Sprint(x.Answer["keyid"])] = fmt.Sprint(x.Answer["key"])
		}
	})
}

// oldPrivateKeyAfterUpdate answers an update that made a new key pair with the private key of
// the certificate it replaced.
func oldPrivateKeyAfterUpdate(t *testing.T) string {
	var mu sync.Mutex
	keys := map[string]any{} // clientkeynumber → privatekey
	return startCLMTarget(t, nil, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		if x.Req.URL.Path != clm.PathCredInfo || x.code() != 0 || x.Answer["privatekey"] == nil {
			return
		}
		keys[fmt.Sprint(x.Answer["clientkeynumber"])] = x.Answer["privatekey"]
		if old, ok := keys[fmt.Sprint(x.Body["keynumber"])]; ok && x.Body["mode"] == "update" {
			x.Answer["privatekey"] = old
		}
	})
}

// cachedCRL signs the CRL once, at its first request, and serves that one ever after.
func cachedCRL(t *testing.T) string {
	var mu sync.Mutex
	var first []byte
	return startCLMTarget(t, nil, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(x.Req.URL.Path, "/SWCLM/v10/crl/") && x.Status == http.StatusOK {
			if first == nil {
				first = x.Raw
			}
			x.Raw = first
		}
	})
}

// restartableCLMTarget is a reference CLM that CONF_CLM_RESTART restarts: on its store, or, when
// freshStore, on an empty one (state lost).
func restartableCLMTarget(freshStore bool) func(t *testing.T) (string, []string) {
	return func(t *testing.T) (string, []string) {
		ref, err := newRestartableReference(reference.Config{DataDir: t.TempDir(), CLMKeys: "ecdsa"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ref.Close() })
		restart := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			if freshStore {
				ref.mu.Lock()
				ref.cfg.DataDir = t.TempDir()
				ref.mu.Unlock()
			}
			if err := ref.restart(); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
			}
		}))
		t.Cleanup(restart.Close)
		return startCLMProxy(t, ref, nil, nil), []string{fmt.Sprintf("CONF_CLM_RESTART=%s=%s '%s'", postProcessEnv, restart.URL, os.Args[0])}
	}
}

// getRelinks links a certificate or key that a get of another device of the same ID names to
// that device (sections 4.2 and 5.2: what is fetched is linked to the requesting device): the get
// is answered, and later requests of that device for it are served as the owner's.
func getRelinks(t *testing.T) string {
	type link struct{ keyid, deviceid, devicename any }
	var mu sync.Mutex
	owners := map[string]link{} // path and keynumber → the ID and device that made it
	linked := map[string]link{} // path and keynumber → the device a get linked it to
	return startCLMTarget(t, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		at := x.Req.URL.Path + fmt.Sprint(x.Body["keynumber"])
		if l, ok := linked[at]; ok && l.deviceid == x.Body["deviceid"] && l.keyid == x.Body["keyid"] {
			x.Body["deviceid"], x.Body["devicename"] = owners[at].deviceid, owners[at].devicename
		}
	}, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		number := x.Answer["keynumber"]
		if x.Req.URL.Path == clm.PathCredInfo {
			number = x.Answer["clientkeynumber"]
		}
		switch at := x.Req.URL.Path + fmt.Sprint(x.Body["keynumber"]); {
		case x.code() == 0 && number != nil && (x.Body["mode"] == "create" || x.Body["mode"] == "update"):
			owners[x.Req.URL.Path+fmt.Sprint(number)] = link{x.Body["keyid"], x.Answer["deviceid"], x.Body["devicename"]}
		case x.Body["mode"] == "get" && (x.code() == 1303 || x.code() == 1503) && owners[at].keyid == x.Body["keyid"]:
			body := maps.Clone(x.Body)
			body["deviceid"], body["devicename"] = owners[at].deviceid, owners[at].devicename
			if status, out := x.post(body); status == http.StatusOK {
				linked[at] = link{x.Body["keyid"], x.Body["deviceid"], x.Body["devicename"]}
				out["deviceid"] = x.Body["deviceid"]
				x.Status, x.Answer = status, out
			}
		}
	})
}

// twine256 makes TWINE keys of 80 and 256 bits, and refuses 128 (the default included) with
// 1104: a 256-bit key is the reference's 128-bit key followed by 16 bytes derived from it.
func twine256(t *testing.T) string {
	var mu sync.Mutex
	twine, long := map[string]bool{}, map[string]bool{} // keynumbers of TWINE keys, and of 256-bit ones
	refused, asked256 := map[*clmExchange]bool{}, map[*clmExchange]bool{}
	widen := func(k string) string {
		b, _ := base64.StdEncoding.DecodeString(k)
		sum := sha256.Sum256(b)
		return base64.StdEncoding.EncodeToString(append(b, sum[:16]...))
	}
	return startCLMTarget(t, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		if x.Req.URL.Path != clm.PathKeyInfo {
			return
		}
		number := fmt.Sprint(x.Body["keynumber"])
		isTwine := (x.Body["mode"] == "create" && x.Body["keytype"] == "TWINE") || (x.Body["mode"] == "update" && twine[number])
		bits, given := x.Body["keylength"].(string)
		switch {
		case isTwine && (bits == "128" || (!given && x.Body["mode"] == "create")):
			refused[x], x.Body["keylength"] = true, "1" // the reference refuses it too: nothing is made
		case isTwine && bits == "256":
			x.Body["keylength"], asked256[x] = "128", true
		case x.Body["mode"] == "delete" && long[number]:
			b, _ := base64.StdEncoding.DecodeString(fmt.Sprint(x.Body["commonkey"]))
			x.Body["commonkey"] = base64.StdEncoding.EncodeToString(b[:min(len(b), 16)])
		}
	}, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		defer delete(refused, x)
		defer delete(asked256, x)
		if refused[x] {
			x.Status, x.Answer = clm.Codes()[1104], map[string]any{"errorcode": 1104}
			return
		}
		if x.Req.URL.Path != clm.PathKeyInfo || x.code() != 0 || x.Answer["keynumber"] == nil {
			return
		}
		number, old := fmt.Sprint(x.Answer["keynumber"]), fmt.Sprint(x.Body["keynumber"])
		switch x.Body["mode"] {
		case "create":
			twine[number], long[number] = x.Body["keytype"] == "TWINE", asked256[x]
		case "update":
			twine[number], long[number] = twine[old], asked256[x] || (long[old] && x.Body["keylength"] == nil)
		}
		if k, ok := x.Answer["commonkey"].(string); ok && long[number] {
			x.Answer["commonkey"] = widen(k)
		}
	})
}

// linkNotChecked revokes a certificate and deletes a key that a request names through another
// device of the same ID: the device is not checked.
func linkNotChecked(t *testing.T) string {
	var mu sync.Mutex
	owners := map[string][2]any{} // path and keynumber → deviceid and devicename of its device
	return startCLMTarget(t, nil, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		number := x.Answer["keynumber"]
		if x.Req.URL.Path == clm.PathCredInfo {
			number = x.Answer["clientkeynumber"]
		}
		if x.code() == 0 && number != nil {
			owners[x.Req.URL.Path+fmt.Sprint(number)] = [2]any{x.Answer["deviceid"], x.Body["devicename"]}
		}
		owner, ok := owners[x.Req.URL.Path+fmt.Sprint(x.Body["keynumber"])]
		if ok && (x.code() == 1303 || x.code() == 1503) && (x.Body["mode"] == "revoke" || x.Body["mode"] == "delete") {
			body := maps.Clone(x.Body)
			body["deviceid"], body["devicename"] = owner[0], owner[1]
			x.Status, x.Answer = x.post(body)
		}
	})
}

// encryptPrivateKey answers every privatekey of a request with a passphrase encrypted under it
// (PKCS#8, PBES2 with AES-256-CBC, by openssl).
func encryptPrivateKey(x *clmExchange) {
	key, ok := x.Answer["privatekey"].(string)
	pass, _ := x.Body["passphrase"].(string)
	if !ok || pass == "" {
		return
	}
	cmd := exec.Command("openssl", "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout", "pass:"+pass)
	cmd.Stdin = strings.NewReader(key)
	out, err := cmd.Output()
	if err != nil {
		panic(fmt.Sprintf("openssl pkcs8 -topk8: %v", err))
	}
	x.Answer["privatekey"] = string(out)
}

// privateKeyBesideP12 adds to an answer with a p12 certificate its private key (PKCS#8 PEM, out
// of the p12 by openssl).
func privateKeyBesideP12(x *clmExchange) {
	cert, ok := x.Answer["clientcert"].(string)
	if !ok || x.Answer["clientcerttype"] != "p12" {
		return
	}
	p12, err := base64.StdEncoding.DecodeString(cert)
	if err != nil {
		panic(err)
	}
	cmd := exec.Command("openssl", "pkcs12", "-nocerts", "-nodes", "-passin", "pass:"+fmt.Sprint(x.Body["passphrase"]))
	cmd.Stdin = bytes.NewReader(p12)
	out, err := cmd.Output()
	if err != nil {
		panic(fmt.Sprintf("openssl pkcs12 -nocerts: %v", err))
	}
	x.Answer["privatekey"] = string(out[bytes.Index(out, []byte("-----BEGIN")):])
}

// addRequestID adds a field the document does not name to every JSON answer.
func addRequestID(x *clmExchange) {
	if x.Answer != nil {
		x.Answer["requestid"] = "7f3a"
	}
}

// scaleExpiration rewrites every expiration (milliseconds) of an answer with unit.
func scaleExpiration(unit func(ms int64) any) clmRewrite {
	scale := func(m map[string]any) {
		if s, ok := m["expiration"].(string); ok {
			if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
				m["expiration"] = unit(ms)
			}
		}
	}
	return func(x *clmExchange) {
		scale(x.Answer)
		infos, _ := x.Answer["keyinfo"].([]any)
		for _, info := range infos {
			if m, ok := info.(map[string]any); ok {
				scale(m)
			}
		}
	}
}

// oldCertificateStaysValid answers a get, revoke or update of a certificate that an update
// replaced as if it were still valid, with the certificate as it was issued.
func oldCertificateStaysValid(t *testing.T) string {
	var mu sync.Mutex
	issued := map[string]map[string]any{} // keynumber or serial → the answer that issued it
	replaced := map[string]bool{}         // keynumbers and serials an update replaced
	return startCLMTarget(t, nil, func(x *clmExchange) {
		if x.Req.URL.Path != clm.PathCredInfo {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		number, _ := x.Body["keynumber"].(string)
		serial, _ := x.Body["certserial"].(string)
		switch {
		case x.code() == 0 && x.Answer["clientcert"] != nil:
			issued[fmt.Sprint(x.Answer["clientkeynumber"])] = maps.Clone(x.Answer)
			issued[fmt.Sprint(x.Answer["clientserial"])] = maps.Clone(x.Answer)
			if x.Body["mode"] == "update" {
				old := issued[number]
				replaced[number], replaced[fmt.Sprint(old["clientserial"])] = true, true
			}
		case x.code() == 1306 && (replaced[number] || replaced[serial]):
			old := issued[number]
			if old == nil {
				old = issued[serial]
			}
			x.Status, x.Answer = http.StatusOK, maps.Clone(old)
		}
	})
}

// passwordsNotChecked authenticates an ID by its keyid alone: the proxy puts the password the
// ID was issued with into every request that names the ID.
func passwordsNotChecked(t *testing.T) string {
	var mu sync.Mutex
	passwords := map[string]any{} // keyid → key
	return startCLMTarget(t, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		if key, ok := passwords[fmt.Sprint(x.Body["keyid"])]; ok && !x.is(clm.PathIDInfo, "create") {
			x.Body["key"] = key
		}
	}, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		if x.is(clm.PathIDInfo, "create") && x.code() == 0 {
			passwords[fmt.Sprint(x.Answer["keyid"])] = x.Answer["key"]
		}
	})
}

// keysOfEveryID looks a key up by keynumber alone: a get refused to one ID is answered with the
// key of whichever ID made it.
func keysOfEveryID(t *testing.T) string {
	var mu sync.Mutex
	owners := map[string]map[string]any{} // keynumber → keyid, key, deviceid, devicename of its owner
	return startCLMTarget(t, nil, func(x *clmExchange) {
		if x.Req.URL.Path != clm.PathKeyInfo {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if x.code() == 0 && x.Answer["keynumber"] != nil && x.Body["mode"] != "delete" {
			name := x.Body["devicename"]
			owners[fmt.Sprint(x.Answer["keynumber"])] = map[string]any{"keyid": x.Body["keyid"], "key": x.Body["key"],
				"deviceid": fmt.Sprint(x.Answer["deviceid"]), "devicename": name}
			return
		}
		owner := owners[fmt.Sprint(x.Body["keynumber"])]
		if x.Body["mode"] == "get" && owner != nil && owner["keyid"] != x.Body["keyid"] && slices.Contains([]int{1501, 1503, 1706}, x.code()) {
			body := maps.Clone(x.Body)
			maps.Copy(body, owner)
			x.Status, x.Answer = x.post(body)
		}
	})
}

// staleCRL serves the CRL the CA had when the target started, whatever was revoked since.
func staleCRL(t *testing.T) string {
	var mu sync.Mutex
	var first []byte
	url := startCLMTarget(t, nil, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasPrefix(x.Req.URL.Path, "/SWCLM/v10/crl/") && first != nil {
			x.Raw = first
		}
	})
	req, err := http.NewRequest(http.MethodGet, url+"/SWCLM/v10/crl/ca1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(clm.LicenseUser, reference.DemoLicense)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	crl, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("the first CRL: %d %v", resp.StatusCode, err)
	}
	mu.Lock()
	first = crl
	mu.Unlock()
	return url
}

// deletedKeyIs1504 answers a get of a deleted key with 1504 (already revoked or updated)
// instead of the reference's 1501 (not found).
func deletedKeyIs1504(t *testing.T) string {
	var mu sync.Mutex
	deleted := map[string]bool{}
	return startCLMTarget(t, nil, func(x *clmExchange) {
		mu.Lock()
		defer mu.Unlock()
		number := fmt.Sprint(x.Body["keynumber"])
		switch {
		case x.is(clm.PathKeyInfo, "delete") && x.code() == 0:
			deleted[number] = true
		case x.is(clm.PathKeyInfo, "get") && x.code() == 1501 && deleted[number]:
			x.Status, x.Answer["errorcode"] = clm.Codes()[1504], 1504
		}
	})
}

// tests are the tests a run against the tooth's target is focused on: those a fault must fail, or
// the only ones a legal variant changes (none: the whole suite).
func (tooth clmTooth) tests() []string {
	if tooth.kind == clmFault {
		return tooth.caught
	}
	return tooth.affects
}

// focus is a Ginkgo focus on tooth.tests() ("" for all).
func (tooth clmTooth) focus() string {
	var its []string
	for _, name := range tooth.tests() {
		parts := strings.Split(name, " / ")
		its = append(its, regexp.QuoteMeta(parts[len(parts)-1]))
	}
	return strings.Join(its, "|")
}

// runCLMSuite runs the clm suite against url (runFocused), with the CONF_* settings env; the
// targets are reference servers, so they declare the CRL endpoint (CONF_CLM_CRL=1).
func runCLMSuite(t *testing.T, url, focus string, env []string) (report.Results, []byte, error) {
	t.Helper()
	declared := []string{"CONF_SUITES=clm", "CONF_CLM_URL=" + url, "CONF_CLM_CRL=1", "CONF_CLM_ID_VALIDITY=" + referenceIDValidity,
		"CONF_CLM_KEY_VALIDITY=" + referenceKeyValidity, "CONF_CLM_CERT_VALIDITY=" + referenceCertValidity}
	return runFocused(t, focus, append(declared, env...)...)
}

// TestCLMTeeth runs the clm suite (this test binary, as a child process) against every target of
// clmTeeth: each fault must fail it on the tests its row names (the run focused on them), with
// failures, not harness errors; each legal variant must pass all of it, recording its observation.
func TestCLMTeeth(t *testing.T) {
	skipUnderRace(t)
	for _, tooth := range clmTeeth {
		t.Run(string(tooth.kind)+"/"+tooth.name, func(t *testing.T) {
			t.Parallel()
			var url string
			env := tooth.env
			if tooth.withEnv != nil {
				var more []string
				url, more = tooth.withEnv(t)
				env = append(slices.Clone(env), more...)
			} else {
				url = tooth.target(t)
			}
			for run := 1; run <= max(tooth.runs, 1); run++ {
				res, out, err := runCLMSuite(t, url, tooth.focus(), env)
				failed, observed, passed := map[string]bool{}, "", 0
				for _, tr := range res.Tests {
					switch tr.Outcome {
					case report.Fail:
						failed[tr.Name] = true
					case report.Error:
						t.Errorf("harness error: %s: %s", tr.Name, tr.Message)
					case report.Pass:
						if tr.Suite == "clm" {
							passed++
						}
					}
					observed += strings.Join(tr.Observations, "\n") + "\n"
				}
				if tooth.kind == clmLegal {
					if err != nil || passed == 0 {
						t.Fatalf("run %d: a legal CLM failed the clm suite (%v, %d passed):\n%s", run, err, passed, out)
					}
					if len(tooth.affects) > 0 && passed != len(tooth.affects) {
						t.Errorf("run %d: %d tests passed, want the %d the variant affects:\n%s", run, passed, len(tooth.affects), out)
					}
					if !strings.Contains(observed, tooth.observed) {
						t.Errorf("run %d: no observation %q; observations:\n%s", run, tooth.observed, observed)
					}
					continue
				}
				if err == nil {
					t.Fatalf("the clm suite passed against a faulty CLM:\n%s", out)
				}
				for _, want := range tooth.caught {
					if !failed[want] {
						t.Errorf("not caught by %q; failed: %v", want, slices.Sorted(maps.Keys(failed)))
					}
				}
			}
		})
	}
}

// TestCLMTeethTableIsComplete: the table has at least 10 faults and 3 legal variants, each
// fault names the tests that must catch it, and no row is named twice.
func TestCLMTeethTableIsComplete(t *testing.T) {
	n := map[clmToothKind]int{}
	seen := map[string]bool{}
	for _, tooth := range clmTeeth {
		n[tooth.kind]++
		if seen[tooth.name] {
			t.Errorf("row %q twice", tooth.name)
		}
		seen[tooth.name] = true
		if tooth.kind == clmFault && len(tooth.caught) == 0 {
			t.Errorf("fault %q names no test that must catch it", tooth.name)
		}
	}
	if n[clmFault] < 10 || n[clmLegal] < 3 {
		t.Errorf("%d faults and %d legal variants, want at least 10 and 3", n[clmFault], n[clmLegal])
	}
}

// TestCLMSuiteNamesMissingDeclarations: against a CLM configured with its URL and license only,
// the tests that need a restart command or the declared validities are not applicable, each
// naming the setting it needs, and never pass.
func TestCLMSuiteNamesMissingDeclarations(t *testing.T) {
	t.Parallel()
	url := startCLMTarget(t, nil, nil)
	want := map[string]string{clmTestRestart: "CONF_CLM_RESTART", clmTestValidity: "_VALIDITY"}
	res, out, _ := runFocused(t, clmTooth{kind: clmFault, caught: []string{clmTestRestart, clmTestValidity}}.focus(),
		"CONF_SUITES=clm", "CONF_CLM_URL="+url)
	for name, setting := range want {
		found := false
		for _, tr := range res.Tests {
			if tr.Name == name {
				found = true
				if tr.Outcome != report.NotApplicable || !strings.Contains(tr.Message, setting) {
					t.Errorf("%s: %s %q, want not-applicable naming %s", tr.Name, tr.Outcome, tr.Message, setting)
				}
			}
		}
		if !found {
			t.Errorf("no test %q ran:\n%s", name, out)
		}
	}
}
