package conformance_test

import (
	"testing"

	"github.com/shekit/shekit/conformance/report"
)

// TestECUSuiteUnderCSEc: the ecu and e2e suites pass against simulated ECUs of the csec profile,
// where an empty MASTER_ECU_KEY authorizes only its own first update, with no test skipped.
func TestECUSuiteUnderCSEc(t *testing.T) {
	t.Parallel()
	res, out, err := runSuites(t, "CONF_SUITES=ecu,e2e", "CONF_PROFILE=csec")
	if err != nil {
		t.Fatalf("the ecu and e2e suites failed under csec: %v\n%s", err, out)
	}
	passed := map[string]int{}
	for _, tr := range res.Tests {
		if tr.Suite != "ecu" && tr.Suite != "e2e" {
			continue
		}
		if tr.Outcome != report.Pass {
			t.Errorf("%s: %s %s", tr.Name, tr.Outcome, tr.Message)
		}
		passed[tr.Suite]++
	}
	if passed["ecu"] == 0 || passed["e2e"] == 0 {
		t.Fatalf("tests run: %v:\n%s", passed, out)
	}
}
