package main

import (
	"net/http"
	"testing"

	"github.com/shekit/shekit/openapi"
	"github.com/shekit/shekit/openapi/openapitest"
)

var contract = openapi.KMS

// validatingClient returns a client whose every exchange must keep openapi/kms.yaml, and its
// transport.
func validatingClient(t *testing.T) (*http.Client, *openapi.Transport) {
	spec, err := contract()
	if err != nil {
		t.Fatal(err)
	}
	return openapitest.NewClient(t, spec, false)
}
