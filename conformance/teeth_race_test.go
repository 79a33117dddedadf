package conformance_test

import "testing"

// skipUnderRace skips a teeth table in a -race build. Each row is a whole suite run against a
// target: under the race detector a table takes minutes of CPU and checks nothing more (the suites
// themselves run under -race in TestConformance). `make test-host` runs the tables in a go test of
// their own, without -race, so they never go unrun.
func skipUnderRace(t *testing.T) {
	t.Helper()
	if raceDetector {
		t.Skip("teeth tables run without -race: make test-host runs them apart (see the Makefile's test-host)")
	}
}
