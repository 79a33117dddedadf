package conformance_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shekit/shekit/conformance/report"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// TestSuitesDriveEachBuiltinDiagProfile runs the ecu and e2e suites (this test binary, as a child
// process) against simulated ECUs speaking each built-in diagnostic profile, as
// CONF_DIAG_PROFILE=NAME CONF_SUITES=ecu,e2e make run does: every test of both suites must pass,
// none not-applicable, so that each profile is exercised end to end. Profiles that travel over
// DoIP are TestSuitesOverDoIP's.
func TestSuitesDriveEachBuiltinDiagProfile(t *testing.T) {
	skipUnderRace(t)
	for _, p := range profile.Builtin() {
		if p.OverDoIP() {
			// A DoIP profile's suites run against `simulator fleet --doip` in TestSuitesOverDoIP.
			if p.Name != doipSuitesProfile {
				t.Errorf("built-in profile %s travels over DoIP: drive it in TestSuitesOverDoIP", p.Name)
			}
			continue
		}
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

func TestDiagProfileDeclaration(t *testing.T) {
	var c Config
	if err := decodeDeclaration("d.yaml", []byte("version: 1\necu:\n  diag_profile: extended-seedkey\n"), &c, nil); err != nil || c.DiagProfile != "extended-seedkey" {
		t.Fatalf("ecu.diag_profile: %q, %v", c.DiagProfile, err)
	}
	c.defaults()
	d, err := c.ecuDeclaration()
	if want := (ecuDeclaration{maxAttempts: 3, lockout: simLockout, seedLength: 4, sacrificial: 9}); err != nil || d != want {
		t.Fatalf("the profile's SecurityAccess as the declaration's defaults: %+v, %v; want %+v", d, err, want)
	}
	c.ECUSeedLength = 8
	if d, err := c.ecuDeclaration(); err != nil || d.seedLength != 8 {
		t.Fatalf("a declared seed length wins over the profile's: %+v, %v", d, err)
	}
	good, err := os.ReadFile(filepath.Join("..", "vcan", "uds", "profile", "builtin", "did-canfd.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Count(string(good[:strings.Index(string(good), "tx_dl: 64")]), "\n") + 1
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(good), "tx_dl: 64", "tx_dl: 65", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"no-such": `CONF_DIAG_PROFILE (ecu.diag_profile): profile "no-such": no such built-in profile`,
		bad:       fmt.Sprintf("bad.yaml:%d: link.tx_dl", line),
	} {
		c := Config{DiagProfile: name}
		c.defaults()
		if _, err := c.decode(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CONF_DIAG_PROFILE=%s: %v; want %q", name, err, want)
		}
	}
}
