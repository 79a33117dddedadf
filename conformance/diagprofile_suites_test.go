package conformance_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shekit/shekit/conformance/report"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// TestSuitesDriveEachBuiltinDiagProfile runs the ecu and e2e suites (this test binary, as a child
// process) against simulated ECUs speaking each built-in diagnostic profile, as
// CONF_DIAG_PROFILE=NAME CONF_SUITES=ecu,e2e make run does: every test of both suites must pass,
// none not-applicable, so that each profile is exercised end to end.
func TestSuitesDriveEachBuiltinDiagProfile(t *testing.T) {
	skipUnderRace(t)
	for _, p := range profile.Builtin() {
		t.Run(p.Name, func(t *testing.T) {
			res, out, runErr := runSuites(t, "CONF_SUITES=ecu,e2e", "CONF_DIAG_PROFILE="+p.Name)
			ran := map[string]int{}
			var notPassed []string
			for _, tr := range res.Tests {
				if tr.Suite != "ecu" && tr.Suite != "e2e" {
					continue
				}
				ran[tr.Suite]++
				if tr.Outcome != report.Pass {
					notPassed = append(notPassed, fmt.Sprintf("%s: %s %s", tr.Outcome, tr.Name, firstLine(tr.Message)))
				}
			}
			if len(notPassed) > 0 || runErr != nil {
				t.Fatalf("%v; not passed:\n%s\nthe run:\n%s", runErr, strings.Join(notPassed, "\n"), tail(string(out), 4000))
			}
			if ran["ecu"] == 0 || ran["e2e"] == 0 {
				t.Fatalf("tests run per suite %v; the run:\n%s", ran, tail(string(out), 4000))
			}
		})
	}
}
