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
	route, params, err := t.Spec.router.FindRoute(req)
	if err != nil {
		t.note(Violation{Method: req.Method, Path: req.URL.Path, Request: true, Err: err})
		return base.RoundTrip(req)
	}
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil {
		t.note(Violation{Method: req.Method, Path: req.URL.Path, Request: true, Err: err})
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
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
		Header: resp.Header, Body: io.NopCloser(bytes.NewReader(respBody)), Options: &openapi3filter.Options{MultiError: true}}
	if err := openapi3filter.ValidateResponse(req.Context(), out); err != nil {
		t.note(Violation{Method: req.Method, Path: req.URL.Path, Err: err, Status: resp.StatusCode, Body: string(respBody)})
	}
	return resp, nil
}
