package conformance_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/shekit/shekit/conformance/report"
)

// runSuites runs TestConformance again in a child process of this test binary with the CONF_*
// variables of env only (the parent's are dropped; later values win) and its reports in a
// temporary folder. It returns the run's results, its output and its exit error.
func runSuites(t *testing.T, env ...string) (report.Results, []byte, error) {
	t.Helper()
	return runFocused(t, "", env...)
}

// runFocused is runSuites, running only the tests matching the Ginkgo focus ("" all).
func runFocused(t *testing.T, focus string, env ...string) (report.Results, []byte, error) {
	t.Helper()
	dir := t.TempDir()
	args := []string{"-test.run=^TestConformance$", "-test.count=1"}
	if focus != "" {
		args = append(args, "-ginkgo.focus="+focus)
	}
	cmd := exec.Command(os.Args[0], args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONF_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "CONF_REPORT_DIR="+dir), env...)
	out, runErr := cmd.CombinedOutput()
	var res report.Results
	b, err := os.ReadFile(filepath.Join(dir, "results.yaml"))
	if err == nil {
		err = yaml.Unmarshal(b, &res)
	}
	if err != nil {
		t.Fatalf("no results.yaml (%v); the run:\n%s", err, out)
	}
	return res, out, runErr
}

// TestSuitesCatchFaults shows that the suites have teeth: it runs them again (this test binary,
// as a child process) against simulated ECUs started with each fault flag and against a KMS
// whose error message was altered, and requires each run to fail, on the test named here.
func TestSuitesCatchFaults(t *testing.T) {
	skipUnderRace(t)
	if os.Getenv("CONF_SIM_FAULT") != "" || os.Getenv("CONF_SIM_ALTER_MESSAGE") != "" {
		t.Skip("a child run of this test")
	}
	const (
		loadKey  = "ECU: SHE through UDS / answers LoadKey with the M4 and M5 of the SHE model"
		e2eFleet = "End to end: station, KMS and ECUs / provisions every ECU through the station: master, supplier and nine SecOC keys, each synced"
	)
	for _, c := range []struct {
		name   string
		env    []string
		caught []string // tests that must fail
	}{
		{"wrong-proof", []string{"CONF_SIM_FAULT=wrong-proof"}, []string{loadKey, e2eFleet}},
		{"no-counter-check", []string{"CONF_SIM_FAULT=no-counter-check"},
			[]string{"ECU: SHE through UDS / refuses a counter that is not greater than the slot's with ERC_KEY_UPDATE_ERROR"}},
		{"accept-wildcard", []string{"CONF_SIM_FAULT=accept-wildcard"},
			[]string{"ECU: SHE through UDS / takes the wildcard UID for a key whose WILDCARD flag is clear, and refuses it where set"}},
		{"nvm-failure", []string{"CONF_SIM_FAULT=nvm-failure"}, []string{loadKey, e2eFleet}},
		{"slow-nvm", []string{"CONF_SIM_FAULT=slow-nvm", "CONF_SUITES=ecu"},
			[]string{"ECU: SHE through UDS / keeps P2 and P2*: LoadKey, which writes the key store, answers in time (with response pending if needed)"}},
		{"silent", []string{"CONF_SIM_FAULT=silent"},
			[]string{"ECU: SHE through UDS / enters the extended session and unlocks SecurityAccess with the security key", e2eFleet}},
		{"boot-failure", []string{"CONF_SIM_FAULT=boot-failure"},
			[]string{"ECU: SHE through UDS / reports a 15-byte UID, and SREG with secure boot finished and OK"}},
		{"altered-message", []string{"CONF_SIM_ALTER_MESSAGE=NOT_REGISTERED=The SupplierID is not registered.", "CONF_SUITES=kms"},
			[]string{"KMS supplier API / documented messages and codes / answers doc-supplierid-not-registerd with NOT_REGISTERED as documented"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res, out, err := runSuites(t, append([]string{"CONF_SUITES=ecu,e2e"}, c.env...)...)
			if err == nil {
				t.Fatalf("the suites passed against a faulty target:\n%s", out)
			}
			var failed []string
			for _, tr := range res.Tests {
				if tr.Outcome == report.Fail {
					failed = append(failed, tr.Name)
				}
				if tr.Outcome == report.Error {
					t.Errorf("harness error instead of a failure: %s: %s", tr.Name, tr.Message)
				}
			}
			for _, want := range c.caught {
				if !slices.Contains(failed, want) {
					t.Errorf("not caught by %q; failed: %q", want, failed)
				}
			}
		})
	}
}
