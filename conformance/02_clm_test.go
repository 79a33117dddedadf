package conformance_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/openapi/clmwire"
	"github.com/shekit/shekit/vectors"
)

// openssl runs the openssl command (a peer nobody here wrote) and returns its output.
func openssl(args ...string) string {
	if _, err := exec.LookPath("openssl"); err != nil {
		harnessFail("the clm suite needs the openssl command: %v", err)
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "openssl %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// hasFields requires an answer to carry the fields of the document's response table; other fields
// are refused only with CONF_STRICT (else recorded as an observation).
func hasFields(out map[string]any, fields ...string) {
	var got, extra []string
	for k := range out {
		got = append(got, k)
		if !slices.Contains(fields, k) {
			extra = append(extra, k)
		}
	}
	if conf.Strict {
		ExpectWithOffset(1, got).To(ConsistOf(fields), "CONF_STRICT: the document's fields, no others")
		return
	}
	ExpectWithOffset(1, got).To(ContainElements(fields), "the document's fields")
	if len(extra) > 0 {
		slices.Sort(extra)
		observe("the answer carries fields the document does not name: %s", strings.Join(extra, ", "))
	}
}

var _ = suite("clm", "CLM WebAPI", func() {
	var c clmClient
	var auth string
	BeforeAll(func() {
		c = newCLMTarget()
		id := c.ok(clmwire.PathIDInfo, `{"mode":"create","tenantid":"conformance","alias":"`+clmFresh("suite")+`"}`)
		auth = fmt.Sprintf(`"keyid":%q,"key":%q`, id["keyid"], id["key"])
	})
	// post sends a request that must succeed with the given HTTP status and returns its answer.
	post := func(path, body string, status int) map[string]any {
		got, out := c.call("POST", path, body)
		ExpectWithOffset(1, out["errorcode"]).To(BeEquivalentTo(0), "%s %s: %v", path, body, out)
		ExpectWithOffset(1, got).To(Equal(status))
		c.answersKeptContract()
		return out
	}

	It("issues, lists, checks and deletes an ID and its password (IDInfo create, GET, auth, delete)", func() {
		out := post(clmwire.PathIDInfo, `{"mode":"create","tenantid":"conformance","alias":"`+clmFresh("DemoKey1")+`"}`, 201)
		hasFields(out, "errorcode", "keyid", "key", "alias", "expiration")
		Expect(out["keyid"]).To(MatchRegexp(`^\d{10}$`))
		idAuth := fmt.Sprintf(`"keyid":%q,"key":%q`, out["keyid"], out["key"])
		got, list := c.call("GET", clmwire.PathIDInfo+"?keyid="+out["keyid"].(string), "")
		Expect(got).To(Equal(200))
		Expect(list["keyinfo"]).To(HaveLen(1))
		hasFields(list["keyinfo"].([]any)[0].(map[string]any), "keyid", "key", "alias", "tenantid", "expiration")
		hasFields(post(clmwire.PathIDInfo, `{"mode":"auth",`+idAuth+`}`, 200), "errorcode", "keyid")
		hasFields(post(clmwire.PathIDInfo, `{"mode":"delete",`+idAuth+`}`, 200), "errorcode", "keyid")
		got, out = c.call("POST", clmwire.PathIDInfo, `{"mode":"auth",`+idAuth+`}`)
		Expect([]any{got, out["errorcode"]}).To(Equal([]any{404, float64(1204)}), "a deleted ID no longer authenticates")
	})

	Context("license key authentication", func() {
		for _, lc := range []struct {
			name      string
			authorize func(c clmClient) func(*http.Request)
		}{
			{"without license key", func(clmClient) func(*http.Request) { return func(*http.Request) {} }},
			{"with another user than secureware-clm", func(c clmClient) func(*http.Request) {
				return func(r *http.Request) { r.SetBasicAuth("not-"+clmwire.LicenseUser, c.license) }
			}},
			{"with a wrong license key", func(c clmClient) func(*http.Request) {
				return func(r *http.Request) { r.SetBasicAuth(clmwire.LicenseUser, "not-"+c.license) }
			}},
		} {
			It("refuses every API "+lc.name+" with errorcode 1201 (HTTP 403, or 401 with a Basic challenge) and changes nothing", func() {
				refuseLicense(c, auth, lc.authorize(c))
			})
		}
	})

	It("answers SystemStatus", func() {
		got, out := c.call("GET", clmwire.PathSystemStatus, "")
		Expect(got).To(Equal(200))
		hasFields(out, "errorcode")
		Expect(out["errorcode"]).To(BeEquivalentTo(0))
	})

	It("issues certificates in pem, der and p12 that openssl verifies and opens, and a CA-only answer", func() {
		dir := GinkgoT().TempDir()
		write := func(name, data string) string {
			p := filepath.Join(dir, name)
			Expect(os.WriteFile(p, []byte(data), 0o600)).To(Succeed())
			return p
		}
		create := func(format string) map[string]any {
			return post(clmwire.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"`+clmFresh("dev-"+format)+`","certmode":"client","catype":"ca1",`+
				`"clientsubject":"/C=JP/O=NEC/CN=AP1-`+format+`","keyfilepath":"/tmp/key","cafilepath":"/c.pem","clientfilepath":"/k.pem",`+
				`"clientcerttype":"`+format+`","passphrase":"p12-secret"}`, 201)
		}
		pemOut := create("pem")
		hasFields(pemOut, "errorcode", "deviceid", "devicekey", "cacert", "cacerttype", "cakeynumber", "caserial",
			"clientcert", "clientcerttype", "clientkeynumber", "clientserial", "privatekey")
		ca := write("ca.pem", pemOut["cacert"].(string))
		Expect(openssl("verify", "-CAfile", ca, write("client.pem", pemOut["clientcert"].(string)))).To(ContainSubstring(": OK"))
		openssl("pkey", "-in", write("key.pem", pemOut["privatekey"].(string)), "-passin", "pass:p12-secret", "-noout") // clear or under passphrase

		der, err := base64.StdEncoding.DecodeString(create("der")["clientcert"].(string))
		Expect(err).NotTo(HaveOccurred())
		Expect(openssl("x509", "-inform", "der", "-in", write("client.der", string(der)), "-noout", "-subject")).To(ContainSubstring("AP1-der"))

		p12Out := create("p12")
		p12, err := base64.StdEncoding.DecodeString(p12Out["clientcert"].(string))
		Expect(err).NotTo(HaveOccurred())
		p12Cert := openssl("pkcs12", "-nokeys", "-clcerts", "-in", write("client.p12", string(p12)), "-passin", "pass:p12-secret")
		Expect(p12Cert).To(ContainSubstring("AP1-p12"))
		if key, ok := p12Out["privatekey"]; ok { // the document lists privatekey unconditionally
			observe("a p12 answer carries privatekey too")
			Expect(privateKeyPublic(key, "p12-secret")).To(Equal(publicKeyDER(parseCert(p12Cert[strings.Index(p12Cert, "-----BEGIN"):], "pem"))),
				"the privatekey beside a p12 certificate is the certificate's")
		}

		caOnly := post(clmwire.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"`+clmFresh("dev-ca")+`","certmode":"caonly","catype":"CA","keyfilepath":"/tmp/key","cafilepath":"/c.pem"}`, 201)
		Expect(caOnly).NotTo(HaveKey("clientcert"))
		Expect(caOnly["cacert"]).To(Equal(pemOut["cacert"]))
	})

	It("gets, updates and revokes a certificate (CredInfo get, update, revoke)", func() {
		name := clmFresh("dev-crl")
		out := post(clmwire.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"`+name+`","certmode":"client","catype":"ca1",`+
			`"clientsubject":"/CN=crl","keyfilepath":"/tmp/key","cafilepath":"/c.pem","clientfilepath":"/k.pem"}`, 201)
		dev := fmt.Sprintf(`"deviceid":%q,"devicename":%q`, out["deviceid"], name)
		number := out["clientkeynumber"].(string)
		got := post(clmwire.PathCredInfo, `{"mode":"get",`+auth+`,`+dev+`,"keynumber":"`+number+`","catype":"ca1","certtype":"pem","filepath":"/k.pem"}`, 200)
		Expect(got["clientcert"]).To(Equal(out["clientcert"]))
		upd := post(clmwire.PathCredInfo, `{"mode":"update",`+auth+`,`+dev+`,"keynumber":"`+number+`","catype":"ca1","certtype":"pem","passphrase":"pass","filepath":"/k.pem","newfilepath":"/k2.pem"}`, 200)
		Expect(upd["clientserial"]).NotTo(Equal(out["clientserial"]))
		post(clmwire.PathCredInfo, `{"mode":"revoke",`+auth+`,`+dev+`,"keynumber":"`+upd["clientkeynumber"].(string)+`","catype":"ca1"}`, 200)
		c.answersKeptContract()
	})

	It("publishes a revoked certificate's serial in its CA's CRL (openssl crl)", func() {
		if !conf.CLMCRL {
			notApplicable("clm.features.crl (CONF_CLM_CRL), the CRL endpoint GET /SWCLM/v10/crl/{catype}, is not declared")
		}
		name := clmFresh("dev-crl")
		out := post(clmwire.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"`+name+`","certmode":"client","catype":"ca1",`+
			`"clientsubject":"/CN=crl","keyfilepath":"/tmp/key","cafilepath":"/c.pem","clientfilepath":"/k.pem"}`, 201)
		dev := fmt.Sprintf(`"deviceid":%q,"devicename":%q`, out["deviceid"], name)
		serial := out["clientserial"].(string)
		post(clmwire.PathCredInfo, `{"mode":"revoke",`+auth+`,`+dev+`,"keynumber":"`+out["clientkeynumber"].(string)+`","catype":"ca1"}`, 200)

		req, err := http.NewRequest("GET", c.url+strings.Replace(clmwire.PathCRL, "{catype}", "ca1", 1), nil)
		Expect(err).NotTo(HaveOccurred())
		req.SetBasicAuth(clmwire.LicenseUser, c.license)
		resp, err := (&http.Client{Transport: c.rt}).Do(req)
		Expect(err).NotTo(HaveOccurred())
		crl, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		Expect(resp.StatusCode).To(Equal(200))
		dir := GinkgoT().TempDir()
		crlFile, caFile := filepath.Join(dir, "ca.crl"), filepath.Join(dir, "ca.pem")
		Expect(os.WriteFile(crlFile, crl, 0o600)).To(Succeed())
		Expect(os.WriteFile(caFile, []byte(out["cacert"].(string)), 0o600)).To(Succeed())
		text := openssl("crl", "-inform", "der", "-in", crlFile, "-noout", "-text", "-CAfile", caFile)
		Expect(strings.ToUpper(text)).To(ContainSubstring(strings.ToUpper(serial)))
		Expect(text).To(ContainSubstring("Next Update"))
		c.answersKeptContract()
	})

	It("issues, gets, updates and deletes AES-128, AES-256 and TWINE keys (KeyInfo)", func() {
		twineBits, twineBytes := twineLongLength(c, auth)
		for _, k := range []struct {
			typ, length string
			bytes       int
		}{{"AES", "128", 16}, {"AES", "256", 32}, {"TWINE", "80", 10}, {"TWINE", twineBits, twineBytes}} {
			name := clmFresh("dev-" + k.typ + k.length)
			out := post(clmwire.PathKeyInfo, `{"mode":"create",`+auth+`,"devicename":"`+name+`","alias":"k","keytype":"`+k.typ+`","keylength":"`+k.length+
				`","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, 201)
			hasFields(out, "errorcode", "alias", "expiration", "deviceid", "devicekey", "keynumber", "commonkey")
			key, err := base64.StdEncoding.DecodeString(out["commonkey"].(string))
			Expect(err).NotTo(HaveOccurred())
			Expect(key).To(HaveLen(k.bytes), "%s-%s", k.typ, k.length)
			dev := fmt.Sprintf(`"deviceid":%q,"devicename":%q`, out["deviceid"], name)
			got := post(clmwire.PathKeyInfo, `{"mode":"get",`+auth+`,`+dev+`,"devicekey":"`+out["devicekey"].(string)+`","keynumber":"`+out["keynumber"].(string)+`","filepath":"/f"}`, 200)
			Expect(got["commonkey"]).To(Equal(out["commonkey"]))
			upd := post(clmwire.PathKeyInfo, `{"mode":"update",`+auth+`,`+dev+`,"keynumber":"`+out["keynumber"].(string)+`","filepath":"/f","keylength":"`+k.length+`","newfilepath":"/g"}`, 200)
			Expect(upd["commonkey"]).NotTo(Equal(out["commonkey"]))
			post(clmwire.PathKeyInfo, `{"mode":"delete",`+auth+`,`+dev+`,"keynumber":"`+upd["keynumber"].(string)+`","filepath":"/f","commonkey":"`+upd["commonkey"].(string)+`"}`, 200)
		}
	})

	It("answers errorcode 1306 for a certificate an update replaced (get, revoke, update, by keynumber and serial); the new one keeps its subject", func() {
		name := clmFresh("dev-upd")
		subject := "/C=JP/O=NEC/OU=update/CN=" + name
		out := post(clmwire.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"`+name+`","certmode":"client","catype":"ca1",`+
			`"clientsubject":"`+subject+`","keyfilepath":"/tmp/key","cafilepath":"/c.pem","clientfilepath":"/k.pem"}`, 201)
		dev := fmt.Sprintf(`"deviceid":%q,"devicename":%q`, out["deviceid"], name)
		old, oldSerial := out["clientkeynumber"].(string), out["clientserial"].(string)
		upd := post(clmwire.PathCredInfo, `{"mode":"update",`+auth+`,`+dev+`,"keynumber":"`+old+`","catype":"ca1","passphrase":"pass","filepath":"/k.pem","newfilepath":"/k2.pem"}`, 200)
		Expect(upd["clientkeynumber"]).NotTo(Equal(old), "the updated certificate has a keynumber of its own")
		Expect(upd["clientserial"]).NotTo(Equal(oldSerial), "the updated certificate has a serial of its own")
		expectSubject(upd["clientcert"].(string), "pem", subject)
		for _, req := range []string{
			`{"mode":"get",` + auth + `,` + dev + `,"keynumber":"` + old + `","catype":"ca1","filepath":"/k.pem"}`,
			`{"mode":"get",` + auth + `,` + dev + `,"certserial":"` + oldSerial + `","catype":"ca1","filepath":"/k.pem"}`,
			`{"mode":"update",` + auth + `,` + dev + `,"keynumber":"` + old + `","catype":"ca1","passphrase":"pass","filepath":"/k.pem","newfilepath":"/k3.pem"}`,
			`{"mode":"revoke",` + auth + `,` + dev + `,"keynumber":"` + old + `","catype":"ca1"}`,
		} {
			status, out := c.call("POST", clmwire.PathCredInfo, req)
			expectRefused(status, out, "the replaced certificate: "+req, 1306)
		}
		got := post(clmwire.PathCredInfo, `{"mode":"get",`+auth+`,`+dev+`,"keynumber":"`+upd["clientkeynumber"].(string)+`","catype":"ca1","filepath":"/k2.pem"}`, 200)
		Expect(got["clientcert"]).To(Equal(upd["clientcert"]), "the new certificate is the valid one")
		c.answersKeptContract()
	})

	It("takes an existing certificate as the update (newkeynumber): the answer is that certificate and the old one answers 1306", func() {
		name := clmFresh("dev-adopt")
		create := func(device string) map[string]any {
			return post(clmwire.PathCredInfo, `{"mode":"create",`+auth+`,`+device+`,"certmode":"client","catype":"ca1",`+
				`"clientsubject":"/CN=`+name+`","keyfilepath":"/tmp/key","cafilepath":"/c.pem","clientfilepath":"/k.pem"}`, 201)
		}
		old := create(fmt.Sprintf(`"devicename":%q`, name))
		dev := fmt.Sprintf(`"deviceid":%q,"devicename":%q`, old["deviceid"], name)
		next := create(dev)
		upd := post(clmwire.PathCredInfo, `{"mode":"update",`+auth+`,`+dev+`,"keynumber":"`+old["clientkeynumber"].(string)+`","newkeynumber":"`+
			next["clientkeynumber"].(string)+`","catype":"ca1","filepath":"/k.pem","newfilepath":"/k2.pem"}`, 200)
		Expect(upd["clientkeynumber"]).To(Equal(next["clientkeynumber"]), "the update is the certificate newkeynumber names")
		Expect(upd["clientserial"]).To(Equal(next["clientserial"]))
		Expect(upd["clientcert"]).To(Equal(next["clientcert"]))
		status, out := c.call("POST", clmwire.PathCredInfo, `{"mode":"get",`+auth+`,`+dev+`,"keynumber":"`+old["clientkeynumber"].(string)+`","catype":"ca1","filepath":"/k.pem"}`)
		expectRefused(status, out, "the replaced certificate", 1306)
		c.answersKeptContract()
	})

	It("updates a key to another length of its type (AES 128 to 256, TWINE 80 to 128 or 256)", func() {
		twineBits, twineBytes := twineLongLength(c, auth)
		for _, k := range []struct {
			typ, from, to string
			bytes         int
		}{{"AES", "128", "256", 32}, {"TWINE", "80", twineBits, twineBytes}} {
			name := clmFresh("dev-relength")
			out := post(clmwire.PathKeyInfo, `{"mode":"create",`+auth+`,"devicename":"`+name+`","alias":"k","keytype":"`+k.typ+`","keylength":"`+k.from+
				`","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, 201)
			dev := fmt.Sprintf(`"deviceid":%q,"devicename":%q`, out["deviceid"], name)
			upd := post(clmwire.PathKeyInfo, `{"mode":"update",`+auth+`,`+dev+`,"keynumber":"`+out["keynumber"].(string)+`","filepath":"/f","keylength":"`+k.to+`","newfilepath":"/g"}`, 200)
			key, err := base64.StdEncoding.DecodeString(upd["commonkey"].(string))
			Expect(err).NotTo(HaveOccurred())
			Expect(key).To(HaveLen(k.bytes), "%s %s bits updated to %s", k.typ, k.from, k.to)
		}
	})

	It("issues certificates whose subject is the request's clientsubject, attribute by attribute (pem and der)", func() {
		for _, format := range []string{"pem", "der"} {
			name := clmFresh("dev-subject-" + format)
			subject := "/C=JP/ST=Tokyo/L=Minato-ku/O=NEC/OU=" + clmFresh("unit") + "/CN=" + name
			out := post(clmwire.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"`+name+`","certmode":"client","catype":"ca1",`+
				`"clientsubject":"`+subject+`","keyfilepath":"/tmp/key","cafilepath":"/c.pem","clientfilepath":"/k","clientcerttype":"`+format+`"}`, 201)
			expectSubject(out["clientcert"].(string), format, subject)
		}
	})

	It("gives expiration in milliseconds since 1970 as a string: IDs and keys expire after now, within 1000 years, and keep it", func() {
		now := time.Now()
		id := post(clmwire.PathIDInfo, `{"mode":"create","tenantid":"conformance","alias":"`+clmFresh("expiry")+`"}`, 201)
		expectMillis("IDInfo create", id["expiration"], now)
		got, list := c.call("GET", clmwire.PathIDInfo+"?keyid="+id["keyid"].(string), "")
		Expect(got).To(Equal(200))
		Expect(list["keyinfo"]).To(HaveLen(1))
		Expect(list["keyinfo"].([]any)[0].(map[string]any)["expiration"]).To(Equal(id["expiration"]), "IDInfo GET gives the expiration IDInfo create gave")
		name := clmFresh("dev-expiry")
		key := post(clmwire.PathKeyInfo, `{"mode":"create",`+auth+`,"devicename":"`+name+`","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, 201)
		expectMillis("KeyInfo create", key["expiration"], now)
		dev := fmt.Sprintf(`"deviceid":%q,"devicename":%q`, key["deviceid"], name)
		get := post(clmwire.PathKeyInfo, `{"mode":"get",`+auth+`,`+dev+`,"keynumber":"`+key["keynumber"].(string)+`","filepath":"/f"}`, 200)
		Expect(get["expiration"]).To(Equal(key["expiration"]), "KeyInfo get gives the expiration KeyInfo create gave")
		upd := post(clmwire.PathKeyInfo, `{"mode":"update",`+auth+`,`+dev+`,"keynumber":"`+key["keynumber"].(string)+`","filepath":"/f","newfilepath":"/g"}`, 200)
		expectMillis("KeyInfo update", upd["expiration"], now)
	})

	It("keeps each ID's devices, certificates and keys from every other ID (tenancy), and its password", func() {
		checkTenancy(c)
	})

	It("takes every parameter at the maximum length the document gives it", func() {
		pad := func(s string, n int) string { return s + strings.Repeat("x", n-len(s)) }
		path := "/" + strings.Repeat("p", 1023)
		post(clmwire.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"`+pad(clmFresh("dev-max"), 256)+`","certmode":"client","catype":"ca1",`+
			`"clientsubject":"/CN=max","keyfilepath":"/tmp/key","cafilepath":"`+path+`","clientfilepath":"`+path+`","passphrase":"`+strings.Repeat("s", 128)+`",`+
			`"ext_data":{"`+strings.Repeat("n", 128)+`":"`+strings.Repeat("v", 256)+`"}}`, 201)
		post(clmwire.PathKeyInfo, `{"mode":"create",`+auth+`,"devicename":"`+pad(clmFresh("dev-max"), 256)+`","alias":"`+strings.Repeat("a", 64)+`",`+
			`"keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"`+path+`"}`, 201)
	})

	Context("refusals", func() {
		for _, r := range clmRefusals {
			It(clmRefusalTest(r), func() {
				refuseCLM(c, r)
			})
		}
	})

	Context("error codes", func() {
		f, err := vectors.Load("clm-errorcodes.json")
		if err != nil {
			It("loads clm-errorcodes.json", func() { harnessFail("%v", err) })
			return
		}
		for _, r := range f.Records {
			var v struct {
				Errorcode int
				HTTP      int `json:"http"`
				Provoked  string
			}
			if err := r.Decode(&v); err != nil || v.Provoked != "api" {
				continue // fault and never codes cannot be provoked from outside
			}
			It(fmt.Sprintf("answers errorcode %d with HTTP %d where the document says", v.Errorcode, v.HTTP), func() {
				provokeCLMCode(c, v.Errorcode, v.HTTP)
			})
		}
	})
})

// refuseLicense sends a request of every API with the authentication authorize sets and requires
// errorcode 1201 with HTTP 403 (the document's table) or 401 with a Basic challenge (HTTP
// authentication's own status; the choice is an observation); then, with the license, that none
// of them changed anything: no ID has the refused alias and both refused device names are free.
func refuseLicense(c clmClient, auth string, authorize func(*http.Request)) {
	bad := c
	bad.authorize = authorize
	alias, certDev, keyDev := clmFresh("unlicensed"), clmFresh("dev-unlicensed"), clmFresh("dev-unlicensed")
	certReq := `{"mode":"create",` + auth + `,"devicename":"` + certDev + `","certmode":"client","catype":"ca1","clientsubject":"/CN=x","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`
	keyReq := `{"mode":"create",` + auth + `,"devicename":"` + keyDev + `","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`
	var statuses []int
	for _, req := range []struct{ method, path, body string }{
		{"GET", clmwire.PathIDInfo, ""},
		{"POST", clmwire.PathIDInfo, `{"mode":"create","tenantid":"conformance","alias":"` + alias + `"}`},
		{"POST", clmwire.PathCredInfo, certReq},
		{"POST", clmwire.PathKeyInfo, keyReq},
	} {
		what := req.method + " " + req.path
		status, header, out := bad.exchange(req.method, req.path, req.body)
		ExpectWithOffset(1, out).To(HaveKeyWithValue("errorcode", BeEquivalentTo(1201)), "%s: %v", what, out)
		ExpectWithOffset(1, out).NotTo(HaveKey("keyinfo"), "%s: no ID is shown", what)
		ExpectWithOffset(1, status).To(BeElementOf(http.StatusUnauthorized, clmStatus(1201)), "%s: HTTP 401, or the document's status for 1201", what)
		if status == http.StatusUnauthorized {
			ExpectWithOffset(1, strings.ToLower(header.Get("WWW-Authenticate"))).To(HavePrefix("basic"), "%s: HTTP 401 challenges for Basic authentication (RFC 9110 11.6.1)", what)
		}
		if !slices.Contains(statuses, status) {
			statuses = append(statuses, status)
		}
	}
	observe("a request without a valid license is refused with HTTP %v", statuses)
	got, list := c.call("GET", clmwire.PathIDInfo, "")
	ExpectWithOffset(1, got).To(Equal(http.StatusOK))
	infos, _ := list["keyinfo"].([]any)
	for _, info := range infos {
		ExpectWithOffset(1, info).NotTo(HaveKeyWithValue("alias", alias), "a refused IDInfo create issued an ID")
	}
	c.ok(clmwire.PathCredInfo, certReq) // a refused create registered no device: its name is free (else 1702)
	c.ok(clmwire.PathKeyInfo, keyReq)
	c.answersKeptContract()
}

// rdnNames are the short names of the attributes a clientsubject may carry, by OID.
var rdnNames = map[string]string{"2.5.4.6": "C", "2.5.4.8": "ST", "2.5.4.7": "L", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.3": "CN"}

// expectSubject parses a certificate (pem text, or base64 der) with crypto/x509 and requires its
// subject to be clientsubject (/C=../CN=..): the same attributes with the same values. The same
// attributes in another order are accepted as an observation.
func expectSubject(cert, format, clientsubject string) {
	der := []byte(cert)
	if format == "pem" {
		block, _ := pem.Decode(der)
		ExpectWithOffset(1, block).NotTo(BeNil(), "the certificate is not PEM")
		der = block.Bytes
	} else {
		var err error
		der, err = base64.StdEncoding.DecodeString(cert)
		ExpectWithOffset(1, err).NotTo(HaveOccurred(), "the certificate is not base64")
	}
	crt, err := x509.ParseCertificate(der)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	var got []string
	for _, atv := range crt.Subject.Names {
		name := rdnNames[atv.Type.String()]
		if name == "" {
			name = atv.Type.String()
		}
		got = append(got, fmt.Sprintf("%s=%v", name, atv.Value))
	}
	want := strings.Split(strings.TrimPrefix(clientsubject, "/"), "/")
	if slices.Equal(got, want) {
		return
	}
	sortedGot, sortedWant := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	ExpectWithOffset(1, sortedGot).To(Equal(sortedWant), "the certificate's subject /%s is not the clientsubject %s", strings.Join(got, "/"), clientsubject)
	observe("the certificate's subject has the clientsubject's attributes in another order: /%s", strings.Join(got, "/"))
}

// expectMillis requires an expiration to be milliseconds since 1970 as a string of digits, after
// now (a day of clock difference allowed) and within 1000 years of it: a count of seconds lies in
// 1970, one of microseconds tens of thousands of years ahead.
func expectMillis(what string, v any, now time.Time) {
	s, ok := v.(string)
	ExpectWithOffset(1, ok).To(BeTrue(), "%s: expiration %v (%T) is a string", what, v, v)
	ExpectWithOffset(1, s).To(MatchRegexp(`^[0-9]+$`), "%s: expiration is decimal digits", what)
	ms, err := strconv.ParseInt(s, 10, 64)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "%s: expiration %s", what, s)
	at := time.UnixMilli(ms).UTC()
	ExpectWithOffset(1, ms).To(BeNumerically(">", now.Add(-24*time.Hour).UnixMilli()), "%s: expiration %s, read as milliseconds, is %s: already past (seconds?)", what, s, at)
	ExpectWithOffset(1, ms).To(BeNumerically("<", now.AddDate(1000, 0, 0).UnixMilli()), "%s: expiration %s, read as milliseconds, is more than 1000 years ahead (microseconds?)", what, s)
}

// checkTenancy makes an ID A with a device, certificates and keys, and a second ID B in another
// tenant; B can neither see nor change anything of A's, nor open A's ID with its password, and
// A's certificate and key are unchanged afterwards. Which of the "not found" codes a CLM answers
// is its choice (the document does not order its checks): an observation.
func checkTenancy(c clmClient) {
	a := newCLMWorld(c)
	b := c.ok(clmwire.PathIDInfo, `{"mode":"create","tenantid":"`+clmFresh("tenant")+`","alias":"`+clmFresh("b")+`"}`)
	asB := map[string]any{"keyid": b["keyid"], "key": b["key"]}
	certCodes, keyCodes := []int{1301, 1303, 1706}, []int{1501, 1503, 1706}
	for _, tc := range []struct {
		what, path, body string
		codes            []int
	}{
		{"another ID gets the certificate", clmwire.PathCredInfo, clmBody(a.certGet(), asB), certCodes},
		{"another ID gets the certificate by serial", clmwire.PathCredInfo, clmBody(a.certGet(), asB, map[string]any{"keynumber": nil, "certserial": a.certSerial}), certCodes},
		{"another ID updates the certificate", clmwire.PathCredInfo, clmBody(a.certGet(), asB, map[string]any{"mode": "update", "passphrase": "p", "newfilepath": "/k2"}), certCodes},
		{"another ID revokes the certificate", clmwire.PathCredInfo, clmBody(a.certGet(), asB, map[string]any{"mode": "revoke", "filepath": nil}), certCodes},
		{"another ID gets the key", clmwire.PathKeyInfo, clmBody(a.keyGet(), asB), keyCodes},
		{"another ID updates the key", clmwire.PathKeyInfo, clmBody(a.keyGet(), asB, map[string]any{"mode": "update", "newfilepath": "/g"}), keyCodes},
		{"another ID deletes the key, naming its commonkey", clmwire.PathKeyInfo, clmBody(a.keyGet(), asB, map[string]any{"mode": "delete", "commonkey": a.commonkey}), keyCodes},
		{"another ID makes a key for the device", clmwire.PathKeyInfo, clmBody(a.keyCreate(), asB, map[string]any{"deviceid": a.device, "devicename": a.name}), []int{1706, 1701}},
		{"another ID's password authenticates the ID", clmwire.PathIDInfo, clmBody(map[string]any{"mode": "auth", "keyid": a.keyid, "key": b["key"]}), []int{1201}},
		{"another ID's password deletes the ID", clmwire.PathIDInfo, clmBody(map[string]any{"mode": "delete", "keyid": a.keyid, "key": b["key"]}), []int{1201}},
	} {
		status, out := c.call("POST", tc.path, tc.body)
		expectRefused(status, out, "tenancy: "+tc.what, tc.codes...)
	}
	got := c.ok(clmwire.PathCredInfo, clmBody(a.certGet()))
	ExpectWithOffset(1, got["clientserial"]).To(Equal(a.certSerial), "the ID's certificate is still its own, valid")
	key := c.ok(clmwire.PathKeyInfo, clmBody(a.keyGet()))
	ExpectWithOffset(1, key["commonkey"]).To(Equal(a.commonkey), "the ID's key is still its own, unchanged")
	c.ok(clmwire.PathIDInfo, clmBody(map[string]any{"mode": "auth", "keyid": a.keyid, "key": a.password}))
	c.answersKeptContract()
}
