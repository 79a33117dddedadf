package conformance_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/server/clm"
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
		id := c.ok(clm.PathIDInfo, `{"mode":"create","tenantid":"conformance","alias":"suite"}`)
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
		out := post(clm.PathIDInfo, `{"mode":"create","tenantid":"conformance","alias":"DemoKey1"}`, 201)
		hasFields(out, "errorcode", "keyid", "key", "alias", "expiration")
		Expect(out["keyid"]).To(MatchRegexp(`^\d{10}$`))
		idAuth := fmt.Sprintf(`"keyid":%q,"key":%q`, out["keyid"], out["key"])
		got, list := c.call("GET", clm.PathIDInfo+"?keyid="+out["keyid"].(string), "")
		Expect(got).To(Equal(200))
		Expect(list["keyinfo"]).To(HaveLen(1))
		hasFields(list["keyinfo"].([]any)[0].(map[string]any), "keyid", "key", "alias", "tenantid", "expiration")
		hasFields(post(clm.PathIDInfo, `{"mode":"auth",`+idAuth+`}`, 200), "errorcode", "keyid")
		hasFields(post(clm.PathIDInfo, `{"mode":"delete",`+idAuth+`}`, 200), "errorcode", "keyid")
		got, out = c.call("POST", clm.PathIDInfo, `{"mode":"auth",`+idAuth+`}`)
		Expect([]any{got, out["errorcode"]}).To(Equal([]any{404, float64(1204)}), "a deleted ID no longer authenticates")
	})

	It("refuses a wrong license key with 401 and errorcode 1201", func() {
		wrong := c
		wrong.license = "not-" + c.license
		got, out := wrong.call("GET", clm.PathSystemStatus, "")
		Expect([]any{got, out["errorcode"]}).To(Equal([]any{401, float64(1201)}))
	})

	It("answers SystemStatus", func() {
		got, out := c.call("GET", clm.PathSystemStatus, "")
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
			return post(clm.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"dev-`+format+`","certmode":"client","catype":"ca1",`+
				`"clientsubject":"/C=JP/O=NEC/CN=AP1-`+format+`","keyfilepath":"/tmp/key","cafilepath":"/c.pem","clientfilepath":"/k.pem",`+
				`"clientcerttype":"`+format+`","passphrase":"p12-secret"}`, 201)
		}
		pemOut := create("pem")
		hasFields(pemOut, "errorcode", "deviceid", "devicekey", "cacert", "cacerttype", "cakeynumber", "caserial",
			"clientcert", "clientcerttype", "clientkeynumber", "clientserial", "privatekey")
		ca := write("ca.pem", pemOut["cacert"].(string))
		Expect(openssl("verify", "-CAfile", ca, write("client.pem", pemOut["clientcert"].(string)))).To(ContainSubstring(": OK"))
		openssl("pkey", "-in", write("key.pem", pemOut["privatekey"].(string)), "-noout")

		der, err := base64.StdEncoding.DecodeString(create("der")["clientcert"].(string))
		Expect(err).NotTo(HaveOccurred())
		Expect(openssl("x509", "-inform", "der", "-in", write("client.der", string(der)), "-noout", "-subject")).To(ContainSubstring("AP1-der"))

		p12Out := create("p12")
		Expect(p12Out).NotTo(HaveKey("privatekey"), "a PKCS#12 answer carries the key inside")
		p12, err := base64.StdEncoding.DecodeString(p12Out["clientcert"].(string))
		Expect(err).NotTo(HaveOccurred())
		Expect(openssl("pkcs12", "-info", "-nokeys", "-in", write("client.p12", string(p12)), "-passin", "pass:p12-secret")).To(ContainSubstring("AP1-p12"))

		caOnly := post(clm.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"dev-ca","certmode":"caonly","catype":"CA","keyfilepath":"/tmp/key","cafilepath":"/c.pem"}`, 201)
		Expect(caOnly).NotTo(HaveKey("clientcert"))
		Expect(caOnly["cacert"]).To(Equal(pemOut["cacert"]))
	})

	It("gets, updates and revokes a certificate; the CRL lists the revoked serial (openssl crl)", func() {
		out := post(clm.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"dev-crl","certmode":"client","catype":"ca1",`+
			`"clientsubject":"/CN=crl","keyfilepath":"/tmp/key","cafilepath":"/c.pem","clientfilepath":"/k.pem"}`, 201)
		dev := fmt.Sprintf(`"deviceid":%q,"devicename":"dev-crl"`, out["deviceid"])
		number := out["clientkeynumber"].(string)
		got := post(clm.PathCredInfo, `{"mode":"get",`+auth+`,`+dev+`,"keynumber":"`+number+`","catype":"ca1","certtype":"pem","filepath":"/k.pem"}`, 200)
		Expect(got["clientcert"]).To(Equal(out["clientcert"]))
		upd := post(clm.PathCredInfo, `{"mode":"update",`+auth+`,`+dev+`,"keynumber":"`+number+`","catype":"ca1","certtype":"pem","passphrase":"pass","filepath":"/k.pem","newfilepath":"/k2.pem"}`, 200)
		Expect(upd["clientserial"]).NotTo(Equal(out["clientserial"]))
		serial := upd["clientserial"].(string)
		post(clm.PathCredInfo, `{"mode":"revoke",`+auth+`,`+dev+`,"keynumber":"`+upd["clientkeynumber"].(string)+`","catype":"ca1"}`, 200)

		req, err := http.NewRequest("GET", c.url+strings.Replace(clm.PathCRL, "{catype}", "ca1", 1), nil)
		Expect(err).NotTo(HaveOccurred())
		req.SetBasicAuth(clm.LicenseUser, c.license)
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
		for _, k := range []struct {
			typ, length string
			bytes       int
		}{{"AES", "128", 16}, {"AES", "256", 32}, {"TWINE", "80", 10}, {"TWINE", "128", 16}} {
			name := "dev-" + k.typ + k.length
			out := post(clm.PathKeyInfo, `{"mode":"create",`+auth+`,"devicename":"`+name+`","alias":"k","keytype":"`+k.typ+`","keylength":"`+k.length+
				`","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, 201)
			hasFields(out, "errorcode", "alias", "expiration", "deviceid", "devicekey", "keynumber", "commonkey")
			key, err := base64.StdEncoding.DecodeString(out["commonkey"].(string))
			Expect(err).NotTo(HaveOccurred())
			Expect(key).To(HaveLen(k.bytes), "%s-%s", k.typ, k.length)
			dev := fmt.Sprintf(`"deviceid":%q,"devicename":%q`, out["deviceid"], name)
			got := post(clm.PathKeyInfo, `{"mode":"get",`+auth+`,`+dev+`,"devicekey":"`+out["devicekey"].(string)+`","keynumber":"`+out["keynumber"].(string)+`","filepath":"/f"}`, 200)
			Expect(got["commonkey"]).To(Equal(out["commonkey"]))
			upd := post(clm.PathKeyInfo, `{"mode":"update",`+auth+`,`+dev+`,"keynumber":"`+out["keynumber"].(string)+`","filepath":"/f","keylength":"`+k.length+`","newfilepath":"/g"}`, 200)
			Expect(upd["commonkey"]).NotTo(Equal(out["commonkey"]))
			post(clm.PathKeyInfo, `{"mode":"delete",`+auth+`,`+dev+`,"keynumber":"`+upd["keynumber"].(string)+`","filepath":"/f","commonkey":"`+upd["commonkey"].(string)+`"}`, 200)
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
