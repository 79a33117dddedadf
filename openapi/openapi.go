// Package openapi embeds the OpenAPI 3 contracts of the reference server's HTTP APIs and checks
// HTTP exchanges against them with kin-openapi.
package openapi

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// KMSSpec is openapi/kms.yaml, the KMS supplier API.
//
//go:embed kms.yaml
var KMSSpec []byte

// CLMSpec is openapi/clm.yaml, the SecureWare/CLM WebAPI.
//
//go:embed clm.yaml
var CLMSpec []byte

// KMS and CLM return the two contracts as written, loaded and validated once per process: an
// answer with a field the contract does not name breaks them.
var (
	KMS = sync.OnceValues(func() (*Spec, error) { return Load(KMSSpec) })
	CLM = sync.OnceValues(func() (*Spec, error) { return Load(CLMSpec) })
)

// KMSTolerant and CLMTolerant return the contracts with unknown fields allowed everywhere
// (LoadTolerant): the documents never forbid them, so only a strict run refuses them.
var (
	KMSTolerant = sync.OnceValues(func() (*Spec, error) { return LoadTolerant(KMSSpec) })
	CLMTolerant = sync.OnceValues(func() (*Spec, error) { return LoadTolerant(CLMSpec) })
)

func init() {
	// The CLM's revocation list is DER: checked as opaque bytes.
	openapi3filter.RegisterBodyDecoder("application/pkix-crl", openapi3filter.FileBodyDecoder)
}

// Spec is a loaded, validated contract with a router.
type Spec struct {
	Doc    *openapi3.T
	router routers.Router
}

// Load parses and validates a contract.
func Load(data []byte) (*Spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi: invalid contract: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi: %w", err)
	}
	return &Spec{Doc: doc, router: router}, nil
}

// LoadTolerant parses and validates a contract, then lifts every `additionalProperties: false`:
// objects may carry fields the contract does not name; the named ones are checked as before.
func LoadTolerant(data []byte) (*Spec, error) {
	s, err := Load(data)
	if err != nil {
		return nil, err
	}
	seen := map[*openapi3.Schema]bool{}
	for _, ref := range s.Doc.Components.Schemas {
		allowExtraFields(ref, seen)
	}
	for _, ref := range s.Doc.Components.Responses {
		allowExtraFieldsIn(ref.Value.Content, seen)
	}
	for _, ref := range s.Doc.Components.RequestBodies {
		allowExtraFieldsIn(ref.Value.Content, seen)
	}
	for _, item := range s.Doc.Paths.Map() {
		for _, op := range item.Operations() {
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				allowExtraFieldsIn(op.RequestBody.Value.Content, seen)
			}
			for _, r := range op.Responses.Map() {
				if r.Value != nil {
					allowExtraFieldsIn(r.Value.Content, seen)
				}
			}
		}
	}
	return s, nil
}

// allowExtraFieldsIn lifts `additionalProperties: false` in the schemas of every media type of c.
func allowExtraFieldsIn(c openapi3.Content, seen map[*openapi3.Schema]bool) {
	for _, mt := range c {
		allowExtraFields(mt.Schema, seen)
	}
}

// allowExtraFields lifts `additionalProperties: false` in ref and every schema it contains.
func allowExtraFields(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	s := ref.Value
	seen[s] = true
	if s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has {
		s.AdditionalProperties.Has = nil
	}
	allowExtraFields(s.AdditionalProperties.Schema, seen)
	allowExtraFields(s.Items, seen)
	allowExtraFields(s.Not, seen)
	for _, p := range s.Properties {
		allowExtraFields(p, seen)
	}
	for _, list := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf, s.AllOf} {
		for _, r := range list {
			allowExtraFields(r, seen)
		}
	}
}

// CheckRequest checks req (whose body is body) against the contract and returns what
// CheckResponse needs; err says how the request breaks the contract.
func (s *Spec) CheckRequest(req *http.Request, body []byte) (*openapi3filter.RequestValidationInput, error) {
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		return nil, err
	}
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	return in, openapi3filter.ValidateRequest(req.Context(), in)
}

// CheckResponse checks a response to the request of in against the contract.
func (s *Spec) CheckResponse(in *openapi3filter.RequestValidationInput, status int, header http.Header, body []byte) error {
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status,
		Header: header, Body: io.NopCloser(bytes.NewReader(body)), Options: &openapi3filter.Options{MultiError: true}}
	return openapi3filter.ValidateResponse(in.Request.Context(), out)
}

// Violation is an HTTP exchange that breaks the contract.
type Violation struct {
	Method, Path string
	Request      bool // the request breaks it (else the response)
	Err          error
	Status       int
	Body         string
}

func (v Violation) String() string {
	side := "response"
	if v.Request {
		side = "request"
	}
	return fmt.Sprintf("%s %s: %s breaks the contract: %v (status %d, body %s)", v.Method, v.Path, side, v.Err, v.Status, v.Body)
}

// Transport is an http.RoundTripper that checks every exchange against a contract and keeps
// the violations.
type Transport struct {
	Spec *Spec
	Base http.RoundTripper // default http.DefaultTransport

	mu         sync.Mutex
	violations []Violation
}

// Violations returns the violations seen so far.
func (t *Transport) Violations() []Violation {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Violation(nil), t.violations...)
}

func (t *Transport) note(v Violation) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.violations = append(t.violations, v)
}

// RoundTrip sends req and checks it and its response.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	var body []byte
	if req.Body != nil {
		var err error
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	in, err := t.Spec.CheckRequest(req, body)
	if err != nil {
		t.note(Violation{Method: req.Method, Path: req.URL.Path, Request: true, Err: err})
	}
	if in == nil { // no route: nothing to check the response against
		return base.RoundTrip(req)
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err := t.Spec.CheckResponse(in, resp.StatusCode, resp.Header, respBody); err != nil {
		t.note(Violation{Method: req.Method, Path: req.URL.Path, Err: err, Status: resp.StatusCode, Body: string(respBody)})
	}
	return resp, nil
}
