package conformance_test

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/openapi/clmwire"
)

// The in-process reference CLM's validities (server/clm's defaults), which a CLM under test
// declares with CONF_CLM_ID_VALIDITY, CONF_CLM_KEY_VALIDITY and CONF_CLM_CERT_VALIDITY.
const (
	referenceIDValidity   = "876000h" // 100 years of 365 days
	referenceKeyValidity  = "876000h"
	referenceCertValidity = "8760h" // 365 days
)

// validitySkew is how far an expiration may lie from issuance + validity: the clocks of the
// suite and the CLM may differ, and a busy machine stretches the run.
const validitySkew = 24 * time.Hour

var _ = suite("clm", "CLM WebAPI", func() {
	var c clmClient
	var auth, password, keyid string
	BeforeAll(func() {
		c = newCLMTarget()
		id := c.ok(clmwire.PathIDInfo, `{"mode":"create","tenantid":"conformance","alias":"`+clmFresh("rules")+`"}`)
		keyid, password = id["keyid"].(string), id["key"].(string)
		auth = fmt.Sprintf(`"keyid":%q,"key":%q`, keyid, password)
	})
	certCreate := func(format, extra string) map[string]any {
		name := clmFresh("dev-rules")
		out := c.ok(clmwire.PathCredInfo, `{"mode":"create",`+auth+`,"devicename":"`+name+`","certmode":"client","catype":"ca1",`+
			`"clientsubject":"/CN=`+name+`","keyfilepath":"/tmp/key","cafilepath":"/c.pem","clientfilepath":"/k.pem","clientcerttype":"`+format+`"`+extra+`}`)
		out["devicename"] = name
		return out
	}
	device := func(out map[string]any) string {
		return fmt.Sprintf(`"deviceid":%q,"devicename":%q`, out["deviceid"], out["devicename"])
	}

	It("refuses an ID password that is a prefix or an extension of the right one with errorcode 1201 (IDInfo, CredInfo, KeyInfo)", func() {
		for _, wrong := range []string{password[:len(password)-1], password[:1], password + "A", password + password} {
			if wrong == "" || wrong == password { // a password of one character has no non-empty prefix
				continue
			}
			as := fmt.Sprintf(`"keyid":%q,"key":%q`, keyid, wrong)
			for _, req := range []struct{ path, body string }{
				{clmwire.PathIDInfo, `{"mode":"auth",` + as + `}`},
				{clmwire.PathKeyInfo, `{"mode":"create",` + as + `,"devicename":"` + clmFresh("dev-pw") + `","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`},
				{clmwire.PathCredInfo, `{"mode":"create",` + as + `,"devicename":"` + clmFresh("dev-pw") + `","certmode":"client","catype":"ca1","clientsubject":"/CN=pw",` +
					`"keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`},
			} {
				status, out := c.call("POST", req.path, req.body)
				expectRefused(status, out, fmt.Sprintf("%s with the password %q instead of %q", req.body[:strings.Index(req.body, ",")], wrong, password), 1201)
			}
		}
		c.ok(clmwire.PathIDInfo, `{"mode":"auth",`+auth+`}`)
		c.answersKeptContract()
	})

	It("sets expirations and notAfter to issuance plus the declared validity (IDs, keys and their update, certificates)", func() {
		idValidity, keyValidity, certValidity := clmValidities()
		before := time.Now()
		id := c.ok(clmwire.PathIDInfo, `{"mode":"create","tenantid":"conformance","alias":"`+clmFresh("validity")+`"}`)
		name := clmFresh("dev-validity")
		key := c.ok(clmwire.PathKeyInfo, `{"mode":"create",`+auth+`,"devicename":"`+name+`","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`)
		dev := fmt.Sprintf(`"deviceid":%q,"devicename":%q`, key["deviceid"], name)
		upd := c.ok(clmwire.PathKeyInfo, `{"mode":"update",`+auth+`,`+dev+`,"keynumber":"`+key["keynumber"].(string)+`","filepath":"/f","newfilepath":"/g"}`)
		cert := certCreate("pem", "")
		after := time.Now()
		expectIssuedFor("IDInfo create", id["expiration"], before, after, idValidity)
		expectIssuedFor("KeyInfo create", key["expiration"], before, after, keyValidity)
		expectIssuedFor("KeyInfo update", upd["expiration"], before, after, keyValidity)
		notAfter := parseCert(cert["clientcert"].(string), "pem").NotAfter
		expectIssuedFor("CredInfo create (notAfter)", strconv.FormatInt(notAfter.UnixMilli(), 10), before.Add(-time.Second), after, certValidity)
		c.answersKeptContract()
	})

	It("answers, after an update that makes a new key pair, the private key of the new certificate, not the old one's", func() {
		for _, format := range []string{"pem", "der"} {
			out := certCreate(format, "")
			old := parseCert(out["clientcert"].(string), format)
			Expect(privateKeyPublic(out["privatekey"], "")).To(Equal(publicKeyDER(old)), "%s: the issued privatekey is the certificate's", format)
			upd := c.ok(clmwire.PathCredInfo, `{"mode":"update",`+auth+`,`+device(out)+`,"keynumber":"`+out["clientkeynumber"].(string)+
				`","catype":"ca1","certtype":"`+format+`","passphrase":"upd-secret","filepath":"/k.pem","newfilepath":"/k2.pem"}`)
			next := parseCert(upd["clientcert"].(string), format)
			Expect(publicKeyDER(next)).NotTo(Equal(publicKeyDER(old)), "%s: the update made a new key pair", format)
			Expect(privateKeyPublic(upd["privatekey"], "upd-secret")).To(Equal(publicKeyDER(next)), "%s: the update's privatekey is the new certificate's", format)
		}
		c.answersKeptContract()
	})

	It("answers the CA certificate in the cacerttype asked (pem, der): the same certificate, which signed the client certificate", func() {
		pemOut := certCreate("pem", `,"cacerttype":"pem"`)
		derOut := certCreate("pem", `,"cacerttype":"der"`)
		Expect(derOut["cacerttype"]).To(Equal("der"))
		Expect(pemOut["cacerttype"]).To(Equal("pem"))
		caPEM, caDER := parseCert(pemOut["cacert"].(string), "pem"), parseCert(derOut["cacert"].(string), "der")
		Expect(caDER.Raw).To(Equal(caPEM.Raw), "the der cacert is the pem cacert's certificate")
		Expect(parseCert(derOut["clientcert"].(string), "pem").CheckSignatureFrom(caDER)).To(Succeed(), "the der cacert signed the client certificate")
		c.answersKeptContract()
	})

	It("reflects a revocation in the CRL at once: the serial is listed, the CRL is newer and verifies under the CA", func() {
		first := fetchCRL(c, "ca1")
		out := certCreate("pem", "")
		serial := out["clientserial"].(string)
		c.ok(clmwire.PathCredInfo, `{"mode":"revoke",`+auth+`,`+device(out)+`,"keynumber":"`+out["clientkeynumber"].(string)+`","catype":"ca1"}`)
		second := fetchCRL(c, "ca1")
		Expect(crlSerials(first)).NotTo(ContainElement(serialHex(serial)), "not revoked yet at the first fetch")
		Expect(crlSerials(second)).To(ContainElement(serialHex(serial)), "the CRL lists the serial just revoked")
		Expect(second.ThisUpdate).NotTo(BeTemporally("<", first.ThisUpdate), "the second CRL is not older than the first")
		if first.Number != nil && second.Number != nil {
			Expect(second.Number.Cmp(first.Number)).To(Equal(1), "the CRL number grows (%v then %v)", first.Number, second.Number)
		}
		Expect(second.CheckSignatureFrom(parseCert(out["cacert"].(string), "pem"))).To(Succeed(), "the CRL is signed by the CA")
		c.answersKeptContract()
	})

	It("keeps IDs, certificates (valid and revoked), keys and the CRL across a restart of the CLM", func() {
		out := certCreate("pem", "")
		revoked := c.ok(clmwire.PathCredInfo, `{"mode":"create",`+auth+`,`+device(out)+`,"certmode":"client","catype":"ca1","clientsubject":"/CN=revoked",`+
			`"keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`)
		c.ok(clmwire.PathCredInfo, `{"mode":"revoke",`+auth+`,`+device(out)+`,"keynumber":"`+revoked["clientkeynumber"].(string)+`","catype":"ca1"}`)
		key := c.ok(clmwire.PathKeyInfo, `{"mode":"create",`+auth+`,`+device(out)+`,"alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`)
		By("restarting the CLM")
		restartCLM()
		c.ok(clmwire.PathIDInfo, `{"mode":"auth",`+auth+`}`)
		got := c.ok(clmwire.PathCredInfo, `{"mode":"get",`+auth+`,`+device(out)+`,"keynumber":"`+out["clientkeynumber"].(string)+`","catype":"ca1","filepath":"/k"}`)
		Expect(got["clientcert"]).To(Equal(out["clientcert"]), "the certificate after the restart")
		status, refused := c.call("POST", clmwire.PathCredInfo, `{"mode":"get",`+auth+`,`+device(out)+`,"keynumber":"`+revoked["clientkeynumber"].(string)+`","catype":"ca1","filepath":"/k"}`)
		expectRefused(status, refused, "the certificate revoked before the restart", 1306)
		k := c.ok(clmwire.PathKeyInfo, `{"mode":"get",`+auth+`,`+device(out)+`,"keynumber":"`+key["keynumber"].(string)+`","filepath":"/f"}`)
		Expect(k["commonkey"]).To(Equal(key["commonkey"]), "the key after the restart")
		Expect(k["expiration"]).To(Equal(key["expiration"]), "the key's expiration after the restart")
		Expect(crlSerials(fetchCRL(c, "ca1"))).To(ContainElement(serialHex(revoked["clientserial"].(string))), "the CRL after the restart")
		c.answersKeptContract()
	})
})

// clmValidities are the declared validities of IDs, keys and certificates: the reference's
// in-process, CONF_CLM_*_VALIDITY otherwise (not applicable when one is not declared).
func clmValidities() (id, key, cert time.Duration) {
	decl := []string{conf.CLMIDValidity, conf.CLMKeyValidity, conf.CLMCertValidity}
	if conf.CLMURL == "" {
		decl = []string{referenceIDValidity, referenceKeyValidity, referenceCertValidity}
	}
	var out [3]time.Duration
	for i, name := range []string{"clm.id_validity (CONF_CLM_ID_VALIDITY)", "clm.key_validity (CONF_CLM_KEY_VALIDITY)", "clm.cert_validity (CONF_CLM_CERT_VALIDITY)"} {
		if decl[i] == "" {
			notApplicable("%s (the validity the CLM gives, e.g. 876000h) is not declared", name)
		}
		d, err := time.ParseDuration(decl[i])
		if err != nil || d <= 0 {
			harnessFail("%s: %q is not a positive duration (e.g. 8760h)", name, decl[i])
		}
		out[i] = d
	}
	return out[0], out[1], out[2]
}

// expectIssuedFor requires an expiration (milliseconds since 1970, a string) issued between
// before and after to be that time plus validity, within validitySkew.
func expectIssuedFor(what string, v any, before, after time.Time, validity time.Duration) {
	s, _ := v.(string)
	ms, err := strconv.ParseInt(s, 10, 64)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "%s: expiration %v is milliseconds as a string", what, v)
	at := time.UnixMilli(ms).UTC()
	lo, hi := before.Add(validity-validitySkew), after.Add(validity+validitySkew)
	ExpectWithOffset(1, at).To(BeTemporally(">=", lo), "%s: expiration %s is not issuance + %v (from %s)", what, at, validity, lo.UTC())
	ExpectWithOffset(1, at).To(BeTemporally("<=", hi), "%s: expiration %s is not issuance + %v (until %s)", what, at, validity, hi.UTC())
}

// parseCert parses a certificate answered as pem text or base64 der.
func parseCert(cert, format string) *x509.Certificate {
	der := []byte(cert)
	if format == "pem" {
		block, _ := pem.Decode(der)
		ExpectWithOffset(1, block).NotTo(BeNil(), "the certificate is not PEM: %.60q", cert)
		der = block.Bytes
	} else {
		var err error
		der, err = base64.StdEncoding.DecodeString(cert)
		ExpectWithOffset(1, err).NotTo(HaveOccurred(), "the certificate is not base64")
	}
	crt, err := x509.ParseCertificate(der)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return crt
}

// publicKeyDER is a certificate's public key as PKIX DER.
func publicKeyDER(crt *x509.Certificate) []byte {
	der, err := x509.MarshalPKIXPublicKey(crt.PublicKey)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return der
}

// privateKeyPublic is the PKIX DER public key of an answered privatekey (PKCS#8 PEM, encrypted
// under passphrase or not), as openssl reads it. An encrypted key is recorded as an observation.
func privateKeyPublic(key any, passphrase string) []byte {
	s, ok := key.(string)
	ExpectWithOffset(1, ok).To(BeTrue(), "privatekey %v is a string", key)
	if strings.HasPrefix(s, "-----BEGIN ENCRYPTED PRIVATE KEY-----") {
		observe("the privatekey is encrypted under the request's passphrase")
	}
	dir := GinkgoT().TempDir()
	in := filepath.Join(dir, "key.pem")
	ExpectWithOffset(1, os.WriteFile(in, []byte(s), 0o600)).To(Succeed())
	out := openssl("pkey", "-in", in, "-passin", "pass:"+passphrase, "-pubout", "-outform", "PEM")
	block, _ := pem.Decode([]byte(out[strings.Index(out, "-----BEGIN"):]))
	ExpectWithOffset(1, block).NotTo(BeNil(), "openssl pkey -pubout: %s", out)
	return block.Bytes
}

// fetchCRL gets the CRL of catype (DER) with the license and parses it.
func fetchCRL(c clmClient, catype string) *x509.RevocationList {
	req, err := http.NewRequest("GET", c.url+strings.Replace(clmwire.PathCRL, "{catype}", catype, 1), nil)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	req.SetBasicAuth(clmwire.LicenseUser, c.license)
	resp, err := (&http.Client{Transport: c.rt, Timeout: time.Minute}).Do(req)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	der, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	ExpectWithOffset(1, resp.StatusCode).To(Equal(http.StatusOK), "GET %s", req.URL)
	crl, err := x509.ParseRevocationList(der)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "the CRL is DER")
	return crl
}

// serialHex is a certificate serial given in hex as a number in upper-case hex without leading
// zeros (crlSerials' form).
func serialHex(s string) string {
	n, ok := new(big.Int).SetString(s, 16)
	ExpectWithOffset(1, ok).To(BeTrue(), "serial %q is hex", s)
	return strings.ToUpper(n.Text(16))
}

// crlSerials are the serials a CRL lists, in upper-case hex without leading zeros.
func crlSerials(crl *x509.RevocationList) []string {
	var out []string
	for _, e := range crl.RevokedCertificateEntries {
		out = append(out, strings.ToUpper(e.SerialNumber.Text(16)))
	}
	return out
}

// restartCLM restarts the CLM under test: the in-process reference on its store, or an external
// CLM with CONF_CLM_RESTART (a shell command), after which it waits, bounded, until SystemStatus
// answers again. Without a declared restart command the test is not applicable.
func restartCLM() {
	switch {
	case conf.CLMURL == "" && targets.reference != nil:
		if err := targets.reference.restart(); err != nil {
			harnessFail("%v", err)
		}
		return
	case conf.CLMRestart == "":
		notApplicable("clm.restart (CONF_CLM_RESTART, a shell command that restarts the CLM) is not declared")
	}
	runRestart("CLM", "CONF_CLM_RESTART", conf.CLMRestart, func(client *http.Client) bool {
		req, _ := http.NewRequest(http.MethodGet, targets.clmURL+clmwire.PathSystemStatus, nil)
		req.SetBasicAuth(clmwire.LicenseUser, conf.CLMLicense)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// twineLongLength finds the longer TWINE key lengths the CLM supports: 256 bits (the document,
// 5.1), 128 (SPEC's reading, and the document's default keylength) or both; one not supported
// must be refused with 1103 or 1104, and the choice is an observation. It returns the first
// supported length in bits (as the request gives it) and in bytes.
func twineLongLength(c clmClient, auth string) (string, int) {
	var supported []string
	for _, bits := range []string{"128", "256"} {
		status, out := c.call("POST", clmwire.PathKeyInfo, `{"mode":"create",`+auth+`,"devicename":"`+clmFresh("dev-twine")+`","alias":"k","keytype":"TWINE",`+
			`"keylength":"`+bits+`","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`)
		if out["errorcode"] != float64(0) {
			expectRefused(status, out, "a TWINE key of "+bits+" bits, which the CLM does not support", 1103, 1104)
			continue
		}
		key, err := base64.StdEncoding.DecodeString(fmt.Sprint(out["commonkey"]))
		ExpectWithOffset(1, err).NotTo(HaveOccurred(), "commonkey is base64")
		n, _ := strconv.Atoi(bits)
		ExpectWithOffset(1, key).To(HaveLen(n/8), "a TWINE key of %s bits", bits)
		supported = append(supported, bits)
	}
	ExpectWithOffset(1, supported).NotTo(BeEmpty(), "TWINE keys of 80 and 256 bits (the document) or 128 (SPEC)")
	observe("TWINE key lengths: 80 and %s bits", strings.Join(supported, " and "))
	n, _ := strconv.Atoi(supported[0])
	return supported[0], n / 8
}
