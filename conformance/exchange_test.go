package conformance_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/conformance/report"
	"github.com/shekit/shekit/openapi"
	"github.com/shekit/shekit/openapi/kmswire"
)

// keptExchanges bounds how many HTTP exchanges a spec keeps for its report.
const keptExchanges = 40

// exchanges are the current spec's HTTP exchanges, written to the report when it fails.
var exchanges struct {
	sync.Mutex
	log []string
}

// recordExchange keeps one exchange of the current spec (the last keptExchanges of them).
func recordExchange(s string) {
	exchanges.Lock()
	defer exchanges.Unlock()
	exchanges.log = append(exchanges.log, s)
	if len(exchanges.log) > keptExchanges {
		exchanges.log = exchanges.log[len(exchanges.log)-keptExchanges:]
	}
}

// recorders are every recorder made: each spec is charged only with the contract violations of
// the exchanges it made itself.
var recorders struct {
	sync.Mutex
	all []*recorder
}

var _ = BeforeEach(func() {
	exchanges.Lock()
	exchanges.log = nil
	exchanges.Unlock()
	recorders.Lock()
	defer recorders.Unlock()
	for _, r := range recorders.all {
		r.newViolations() // the exchanges of earlier specs are theirs
	}
})

var _ = AfterEach(func() {
	// An answer that broke the contract fails the spec that got it, checked or not; requests
	// only where the spec says it sends good ones (keptContract(false)).
	var broken []string
	recorders.Lock()
	for _, r := range recorders.all {
		for _, v := range r.newViolations() {
			if !v.Request {
				broken = append(broken, v.String())
			}
		}
	}
	recorders.Unlock()
	if CurrentSpecReport().Failed() || len(broken) > 0 {
		exchanges.Lock()
		for _, e := range exchanges.log {
			AddReportEntry(report.ExchangeEntry, e, ReportEntryVisibilityNever)
		}
		exchanges.Unlock()
	}
	if len(broken) > 0 {
		Fail("the exchange breaks the OpenAPI contract: " + strings.Join(broken, "\n"))
	}
})

// observe records which of several acceptable behaviours the target chose, where the documents
// are silent: a line in the test's output and an observation in results.yaml and report.html.
func observe(format string, args ...any) {
	text := fmt.Sprintf(format, args...)
	GinkgoWriter.Println("observation: " + text)
	AddReportEntry(report.ObservationEntry, text, ReportEntryVisibilityNever)
}

// recorder is the suites' HTTP transport: it checks each exchange against the OpenAPI contract
// (through openapi.Transport) and keeps it for the report.
type recorder struct {
	contract *openapi.Transport
	seen     int
	mu       sync.Mutex
}

// newRecorder checks exchanges against spec. Its violations are charged to the spec that made
// the exchange, never to a later one.
func newRecorder(spec *openapi.Spec) *recorder {
	r := &recorder{contract: &openapi.Transport{Spec: spec}}
	r.seen = len(r.contract.Violations())
	recorders.Lock()
	recorders.all = append(recorders.all, r)
	recorders.Unlock()
	return r
}

// jsonMediaType reports whether a Content-Type names application/json, compared as a media type:
// parameters (charset=utf-8) and letter case do not matter.
func jsonMediaType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		body, _ = io.ReadAll(req.Body)
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "> %s %s\n", req.Method, req.URL.Path)
	for _, h := range []string{"Authorization", "Content-Type"} {
		if v := req.Header.Get(h); v != "" {
			fmt.Fprintf(&b, "> %s: %s\n", h, v)
		}
	}
	if len(body) > 0 {
		fmt.Fprintf(&b, "> %s\n", body)
	}
	resp, err := r.contract.RoundTrip(req)
	if err != nil {
		fmt.Fprintf(&b, "< transport error: %v", err)
		recordExchange(b.String())
		return nil, err
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	fmt.Fprintf(&b, "< %d %s\n", resp.StatusCode, resp.Header.Get("Content-Type"))
	if jsonMediaType(resp.Header.Get("Content-Type")) {
		fmt.Fprintf(&b, "< %s", bytes.TrimSpace(respBody))
	} else if len(respBody) > 0 {
		fmt.Fprintf(&b, "< (%d bytes)", len(respBody))
	}
	recordExchange(b.String())
	return resp, nil
}

// newViolations returns the contract violations since the last call (at the latest, since the
// current spec began).
func (r *recorder) newViolations() []openapi.Violation {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.contract.Violations()
	out := v[r.seen:]
	r.seen = len(v)
	return out
}

// keptContract fails the spec on any of its exchanges since the last check that broke the
// contract; requests are excused when the test sends bad requests on purpose.
func (r *recorder) keptContract(badRequestsOnPurpose bool) {
	for _, v := range r.newViolations() {
		if v.Request && badRequestsOnPurpose {
			continue
		}
		Fail("the exchange breaks the OpenAPI contract: "+v.String(), 1)
	}
}

// kmsAPI is a client of the KMS under test.
type kmsAPI struct {
	url   string
	token string
	rec   *recorder
}

// newKMSAPI returns a client of the configured KMS, checking exchanges against openapi/kms.yaml.
func newKMSAPI() *kmsAPI {
	spec, err := kmsContract()
	if err != nil {
		harnessFail("openapi/kms.yaml: %v", err)
	}
	return &kmsAPI{url: targets.kmsURL, token: conf.KMSToken, rec: newRecorder(spec)}
}

// send sends a JSON body (or a raw string body) and returns the status and envelope.
func (k *kmsAPI) send(method, path string, body any) (int, kmswire.Envelope) {
	data, ok := body.(string)
	if !ok {
		b, err := json.Marshal(body)
		Expect(err).NotTo(HaveOccurred())
		data = string(b)
	}
	resp, raw := kmsRequest{Method: method, Path: path, Body: json.RawMessage(data)}.send(k.rec, k.url, k.token)
	var env kmswire.Envelope
	ExpectWithOffset(2, json.Unmarshal(raw, &env)).To(Succeed(), "the answer is not JSON: %s", raw)
	return resp.StatusCode, env
}

// ok sends a request the KMS must accept and returns its Records.
func (k *kmsAPI) ok(method, path string, body any) *kmswire.Records {
	status, env := k.send(method, path, body)
	ExpectWithOffset(1, env.ResultStatus).To(Equal("Success"), "%s %s: %s %s", method, path, env.ResultReason, env.ResultMessage)
	ExpectWithOffset(1, status).To(Equal(http.StatusOK))
	k.rec.keptContract(false)
	return env.Records
}

// alterMessage makes a KMS handler answer text as the ResultMessage of reason: a deliberately
// wrong server, for showing that the kms suite notices.
func alterMessage(next http.Handler, reason, text string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, req)
		var env map[string]any
		body := rec.Body.Bytes()
		if json.Unmarshal(body, &env) == nil && env["ResultReason"] == reason {
			env["ResultMessage"] = text
			body, _ = json.Marshal(env)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		w.Write(body)
	})
}
