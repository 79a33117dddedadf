// Package openapitest gives tests an HTTP client whose exchanges must keep a contract.
package openapitest

import (
	"net/http"
	"testing"

	"github.com/shekit/shekit/openapi"
)

// NewClient returns a client that checks every exchange against spec. When the test ends, each
// violation fails it: of a response always, of a request unless badRequests (a test that sends
// invalid requests on purpose). The transport is returned too, to set its Base.
func NewClient(t testing.TB, spec *openapi.Spec, badRequests bool) (*http.Client, *openapi.Transport) {
	tr := &openapi.Transport{Spec: spec}
	t.Cleanup(func() {
		for _, v := range tr.Violations() {
			if !v.Request || !badRequests {
				t.Error(v)
			}
		}
	})
	return &http.Client{Transport: tr}, tr
}
