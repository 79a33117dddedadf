package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
)

func TestProfilesCommandListsBuiltins(t *testing.T) {
	out, errOut, code := runFor(t, time.Second, "profiles")
	if code != 0 || errOut != "" {
		t.Fatalf("exit %d, %s", code, errOut)
	}
	for _, want := range []string{
		"shekit-default: normal 11-bit 0x7e0/0x7e8",
		"did-canfd: normal-fixed 29-bit 0x18da4af1/0x18daf14a, CAN FD TX_DL 64",
		"extended-seedkey: extended 11-bit 0x6f1/0x640 (address bytes 0x40/0xf1)",
		"--diag-profile FILE.yaml",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestDiagProfileFileWithAMistake: a profile file with a mistake stops the profiles, ecu and
// fleet commands with exit 2 and the parser's error: file, line and field.
func TestDiagProfileFileWithAMistake(t *testing.T) {
	good, err := os.ReadFile("../vcan/uds/profile/builtin/did-canfd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(good), "\n")
	line := slices.Index(lines, "  tx_dl: 64") + 1
	if line == 0 {
		t.Fatal("did-canfd.yaml has no tx_dl: 64 line")
	}
	lines[line-1] = "  tx_dl: 65"
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s:%d: link.tx_dl: 65", bad, line)
	for _, args := range [][]string{{"profiles", bad}, {"ecu", "--diag-profile", bad}, {"fleet", "--diag-profile", bad}} {
		_, errOut, code := runFor(t, time.Second, args...)
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("%v: exit %d, %q; want 2 and %s", args, code, errOut, want)
		}
	}
	_, errOut, code := runFor(t, time.Second, "ecu", "--diag-profile", "no-such-profile")
	if code != 2 || !strings.Contains(errOut, "--diag-profile") || !strings.Contains(errOut, "did-canfd") {
		t.Errorf("unknown name: exit %d, %q", code, errOut)
	}
}

// TestECUCommandsTakeADiagProfile: the ecu and fleet commands listen on the profile's CAN IDs.
func TestECUCommandsTakeADiagProfile(t *testing.T) {
	out, errOut, code := runFor(t, 200*time.Millisecond, "ecu", "--can", "mem", "--diag-profile", "did-canfd")
	if code != 0 || !strings.Contains(out, "request 0x18da4af1, response 0x18daf14a") {
		t.Fatalf("ecu: exit %d, %s%s", code, out, errOut)
	}
	out, errOut, code = runFor(t, 200*time.Millisecond, "fleet", "--can", "mem", "--count", "3", "--diag-profile", "extended-seedkey")
	if code != 0 || !strings.Contains(out, "3 ECUs listening on mem") || !strings.Contains(out, "request 0x6f1, response 0x640") {
		t.Fatalf("fleet: exit %d, %s%s", code, out, errOut)
	}
	out, errOut, code = runFor(t, 200*time.Millisecond, "ecu", "--can", "mem", "--diag-profile", "did-canfd", "--tx", "0x18daf14b", "--rx", "0x18da4bf1")
	if code != 0 || !strings.Contains(out, "request 0x18da4bf1, response 0x18daf14b") {
		t.Fatalf("ecu with --tx/--rx: exit %d, %s%s", code, out, errOut)
	}
}

// TestDiagProfileFlagsOverrideOnlyWhenGiven: under another profile than the default, the
// security key, seed length and padding flags' defaults leave the profile's values alone; given,
// they override them.
func TestDiagProfileFlagsOverrideOnlyWhenGiven(t *testing.T) {
	parse := func(args ...string) ecu.Config {
		t.Helper()
		fs := flag.NewFlagSet("ecu", flag.ContinueOnError)
		var f ecuFlags
		f.register(fs, false)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		f.set = map[string]bool{}
		fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
		cfg, err := f.config()
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	cfg := parse("--diag-profile", "extended-seedkey")
	if cfg.SecurityKey != nil || cfg.SeedLength != 0 || cfg.Padding != (ecu.Padding{}) || cfg.DiagProfile.Name != "extended-seedkey" {
		t.Fatalf("profile's values overridden: %+v", cfg)
	}
	cfg = parse("--diag-profile", "did-canfd", "--seed-length", "8", "--padding", "none", "--security-key", strings.Repeat("ab", 16))
	if cfg.SecurityKey == nil || cfg.SecurityKey[0] != 0xAB || cfg.SeedLength != 8 || cfg.Padding != ecu.NoPadding {
		t.Fatalf("flags given but not applied: %+v", cfg)
	}
}
