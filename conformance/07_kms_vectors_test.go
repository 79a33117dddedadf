package conformance_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/openapi"
	"github.com/shekit/shekit/openapi/kmswire"
)

// kmsRequest is a request of a kms_error vector.
type kmsRequest struct {
	Method string
	Path   string
	Body   json.RawMessage
}

// kmsContract is openapi/kms.yaml as a KMS under test must keep it: fields the contract does not
// name are allowed unless CONF_STRICT (the document never forbids them).
func kmsContract() (*openapi.Spec, error) {
	if conf.Strict {
		return openapi.KMS()
	}
	return openapi.KMSTolerant()
}

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

// kmsAnswer is an answer a kms_error vector expects: HTTP status and envelope.
type kmsAnswer struct {
	HTTP          int    `json:"http"`
	ResultStatus  string `json:"ResultStatus"`
	ResultReason  string `json:"ResultReason"`
	ResultMessage string `json:"ResultMessage"`
	Why           string `json:"why"` // a tolerated answer: why the document allows it
}

// kmsErrorVector is a kms_error vector: a request (after some that must succeed) and the exact
// envelope it must get; Tolerated are other answers a KMS under test may give where the document
// is silent (the reference gives Expect).
type kmsErrorVector struct {
	kmsRequest
	Registry  string
	Auth      string
	Token     string
	Before    []kmsRequest
	Expect    kmsAnswer
	Tolerated []kmsAnswer
}

// replayOptions say how a replay judges the answer.
type replayOptions struct {
	tolerate bool   // accept a tolerated answer (recorded as an observation)
	strict   bool   // the envelope has no field but the three
	answers  func() // checks the answers of this replay against the contract
}

// replay sends the vector's requests to the KMS at url and compares the answer's HTTP status and
// envelope to the character; the answers must keep the contract (the requests break it on
// purpose).
func (v kmsErrorVector) replay(tr http.RoundTripper, url, token string, o replayOptions) {
	if token == "" {
		token = v.Token
	}
	for _, b := range v.Before {
		resp, body := b.send(tr, url, token)
		Expect(resp.StatusCode).To(Equal(http.StatusOK), "before: %s", body)
	}
	resp, body := v.send(tr, url, token)
	Expect(jsonMediaType(resp.Header.Get("Content-Type"))).To(BeTrue(), "Content-Type %q is not application/json", resp.Header.Get("Content-Type"))
	var env map[string]any
	Expect(json.Unmarshal(body, &env)).To(Succeed(), "the answer is not JSON: %s", body)
	got := kmsAnswer{HTTP: resp.StatusCode}
	for field, dst := range map[string]*string{"ResultStatus": &got.ResultStatus, "ResultReason": &got.ResultReason, "ResultMessage": &got.ResultMessage} {
		*dst, _ = env[field].(string)
		delete(env, field)
	}
	if o.strict {
		Expect(env).To(BeEmpty(), "CONF_STRICT: the envelope has no field but ResultStatus, ResultReason and ResultMessage")
	}
	o.answers()
	want := v.Expect
	want.Why = ""
	if got == want {
		return
	}
	if o.tolerate {
		for _, t := range v.Tolerated {
			why := t.Why
			if t.Why = ""; got == t {
				observe("%s: the KMS answered %s %q (%s) where the reference answers %s: %s", v.kmsRequest.Method+" "+v.Path,
					got.ResultStatus, got.ResultMessage, got.ResultReason, want.ResultReason, why)
				return
			}
		}
	}
	Expect(got).To(Equal(want), "HTTP status and envelope, to the character: %s", body)
}

// The demo registry the vectors' EcuIDs and secrets belong to: (EcuType, SupplierID) pairs, the
// suppliers, and the SupplierSecretKey of 001D.
var (
	demoTypes     = map[[4]byte]bool{{0x00, 0x01, 0x00, 0x1D}: true, {0x00, 0x03, 0x00, 0x01}: true}
	demoSuppliers = map[[2]byte]bool{{0x00, 0x1D}: true, {0x00, 0x01}: true}
)

const demoSecret = "1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d"

// forTarget makes the vector's requests for this run against the configured KMS: each EcuID gets
// a fresh UID (so that a second run finds no state of the first) inside the configured supplier
// and EcuType, keeping the vector's defect (an unregistered SupplierID or EcuType stays
// unregistered, a malformed EcuID stays as it is); the demo SupplierSecretKey becomes the
// configured one, and a wrong one stays wrong. The expected messages get the same substitutions.
func (v kmsErrorVector) forTarget() kmsErrorVector {
	var pairs []string // old, new
	note := func(body json.RawMessage) {
		var fields map[string]any
		if json.Unmarshal(body, &fields) != nil {
			return
		}
		if id, ok := fields["EcuID"].(string); ok && !slices.Contains(pairs, id) {
			pairs = append(pairs, id, targetEcuID(id))
		}
		if s, ok := fields["SupplierSecretKey"].(string); ok && !slices.Contains(pairs, s) {
			if t := targetSecret(s); t != s {
				pairs = append(pairs, s, t)
			}
		}
	}
	note(v.Body)
	for _, b := range v.Before {
		note(b.Body)
	}
	r := strings.NewReplacer(pairs...)
	out := v
	out.Body = json.RawMessage(r.Replace(string(v.Body)))
	out.Before = nil
	for _, b := range v.Before {
		b.Body = json.RawMessage(r.Replace(string(b.Body)))
		out.Before = append(out.Before, b)
	}
	out.Expect.ResultMessage = r.Replace(v.Expect.ResultMessage)
	out.Tolerated = nil
	for _, t := range v.Tolerated {
		t.ResultMessage = r.Replace(t.ResultMessage)
		out.Tolerated = append(out.Tolerated, t)
	}
	return out
}

// ownerTolerated adds, when the suite authenticates to the KMS (CONF_KMS_TOKEN), the refusal of
// an ECU of another supplier to the answers tolerated for a request naming one: such a request
// then has two defects (an unregistered supplier, and not the caller's ECU), and the document
// does not order the two checks.
func (v kmsErrorVector) ownerTolerated() kmsErrorVector {
	var body map[string]any
	if conf.KMSToken == "" || json.Unmarshal(v.Body, &body) != nil {
		return v
	}
	ecuID, _ := body["EcuID"].(string)
	id, ok := kmswire.ParseEcuID(ecuID)
	if !ok || strings.EqualFold(hex.EncodeToString(id.UID[2:4]), conf.SupplierID) {
		return v
	}
	f := vectorByID("forbidden-other-suppliers-ecu")
	var fb map[string]any
	json.Unmarshal(f.Body, &fb)
	t := f.Expect
	t.ResultMessage = strings.NewReplacer(fmt.Sprint(fb["EcuID"]), ecuID, "supplier 0001", "supplier "+strings.ToUpper(conf.SupplierID)).Replace(t.ResultMessage)
	t.Why = "the request names an ECU of another supplier than the caller's, and the document does not order that check and the registration's"
	v.Tolerated = append(slices.Clip(v.Tolerated), t)
	return v
}

// targetEcuID is a fresh EcuID in the configured supplier and EcuType for a vector's EcuID of the
// demo registry, with the same cluster layout and the same defect (see forTarget).
func targetEcuID(vectorID string) string {
	id, ok := kmswire.ParseEcuID(vectorID)
	if !ok {
		return vectorID
	}
	prefix := confKeys.uidPrefix
	typ, sup := [2]byte(id.UID[0:2]), [2]byte(id.UID[2:4])
	switch {
	case demoTypes[[4]byte(id.UID[:4])]:
		typ, sup = [2]byte(prefix[:2]), [2]byte(prefix[2:])
	case !demoSuppliers[sup]: // a SupplierID no registry has: keep it, unless it is the configured one
		typ = [2]byte(prefix[:2])
		if sup == [2]byte(prefix[2:]) {
			sup[1]++
		}
	default: // an EcuType the supplier does not have
		sup = [2]byte(prefix[2:])
		if typ == [2]byte(prefix[:2]) {
			typ[1]++
		}
	}
	uid := freshUID()
	copy(uid[:2], typ[:])
	copy(uid[2:4], sup[:])
	return strings.ToUpper(kmswire.EcuID{ClusterID: typeCluster(), Model: id.Model, UID: uid}.String())
}

// targetSecret is the configured supplier's counterpart of a vector's SupplierSecretKey s: the
// demo secret becomes the configured one; a wrong secret that is the configured one becomes wrong
// again; a prefix of the demo secret becomes the prefix of the configured one of that length; the
// demo secret with one digit changed becomes the configured one with that digit changed. Any other
// wrong secret stays as it is.
func targetSecret(s string) string {
	key := conf.SupplierKey
	switch {
	case s == demoSecret:
		return key
	case strings.EqualFold(s, key): // a wrong key of the vector is this supplier's
		return wrongSecret(s)
	case s != "" && len(s) < len(demoSecret) && strings.HasPrefix(demoSecret, s) && len(s) <= len(key):
		return key[:len(s)]
	case len(s) == len(demoSecret) && len(key) == len(s):
		diff := -1
		for i := range s {
			if s[i] != demoSecret[i] {
				if diff >= 0 {
					return s
				}
				diff = i
			}
		}
		return key[:diff] + wrongSecret(key[:diff+1])[diff:] + key[diff+1:]
	}
	return s
}

// wrongSecret is a SupplierSecretKey that differs from s in its last digit.
func wrongSecret(s string) string {
	last := "0"
	if strings.HasSuffix(s, "0") {
		last = "1"
	}
	return s[:len(s)-1] + last
}
