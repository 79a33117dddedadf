package conformance_test

import (
	"testing"

	"github.com/shekit/shekit/conformance/report"
)

// TestECUSuiteUnderCSEc: the ecu suite passes against simulated ECUs of the csec profile, where
// an empty MASTER_ECU_KEY authorizes only its own first update, with no test skipped.
func TestECUSuiteUnderCSEc(t *testing.T) {
	t.Parallel()
	res, out, err := runSuites(t, "CONF_SUITES=ecu", "CONF_PROFILE=csec")
	if err != nil {
		t.Fatalf("the ecu suite failed under csec: %v\n%s", err, out)
	}
	passed := 0
	for _, tr := range res.Tests {
		if tr.Suite != "ecu" {
			continue
		}
		if tr.Outcome != report.Pass {
			t.Errorf("%s: %s %s", tr.Name, tr.Outcome, tr.Message)
		}
		passed++
	}
	if passed == 0 {
		t.Fatalf("no ecu test ran:\n%s", out)
	}
}
