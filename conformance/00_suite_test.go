// Package conformance holds the kit's Ginkgo suites. Each numbered file is one workflow; this file
// runs them all as one suite.
package conformance_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

func TestConformance(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "SHE kit conformance")
}
