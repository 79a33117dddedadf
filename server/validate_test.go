package main

import (
	"net/http"
	"sync"
	"testing"

	"github.com/shekit/shekit/openapi"
)

var contract = sync.OnceValues(func() (*openapi.Spec, error) { return openapi.Load(openapi.KMSSpec) })

// checkedTransport is an openapi.Transport whose base can be set after creation.
type checkedTransport struct{ *openapi.Transport }

func (c checkedTransport) setBase(rt http.RoundTripper) { c.Base = rt }

// validatingClient returns a client whose every exchange must keep openapi/kms.yaml.
func validatingClient(t *testing.T) *http.Client {
	spec, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	tr := &openapi.Transport{Spec: spec}
	t.Cleanup(func() {
		for _, v := range tr.Violations() {
			t.Error(v)
		}
	})
	return &http.Client{Transport: checkedTransport{tr}}
}
