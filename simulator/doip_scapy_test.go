package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
)

// scapyPython is the interpreter of Debian's python3-scapy; the python on PATH may be another.
const scapyPython = "/usr/bin/python3"

// scapyMissing is the exit status of testdata/scapy_doip.py when scapy or cryptography is missing.
const scapyMissing = 77

// skipWithoutScapy skips the test for a missing third-party tool, or fails it under
// SHEKIT_REQUIRE_SCAPY (make test sets it; CI installs the packages).
func skipWithoutScapy(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (Debian packages python3-scapy and python3-cryptography)"
	if os.Getenv("SHEKIT_REQUIRE_SCAPY") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// runScapyScript runs testdata/scapy_doip.py with args and returns its output and exit status;
// a missing scapy or cryptography module skips the test (skipWithoutScapy).
func runScapyScript(t *testing.T, args ...string) (string, int) {
	t.Helper()
	if _, err := os.Stat(scapyPython); err != nil {
		skipWithoutScapy(t, "no %s: %v", scapyPython, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, scapyPython, append([]string{"testdata/scapy_doip.py"}, args...)...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() == scapyMissing:
		skipWithoutScapy(t, "scapy_doip.py: %s", out)
	case errors.As(err, &exit):
		return string(out), exit.ExitCode()
	case err != nil:
		t.Fatalf("scapy_doip.py: %v\n%s", err, out)
	}
	return string(out), 0
}

// TestScapySHESelfCheck: the script's own SHE functions (KDF, M1-M5) give the reference vectors'
// values, and a vector altered by one bit makes the self-check fail.
func TestScapySHESelfCheck(t *testing.T) {
	ref := filepath.Join("..", "vectors", "she-reference.json")
	out, code := runScapyScript(t, "--self-check", ref)
	if code != 0 || !strings.Contains(out, " 0 mismatches") {
		t.Fatalf("self-check against %s: exit %d\n%s", ref, code, out)
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		t.Fatal(err)
	}
	const m5 = "820d8d95dc11b4668878160cb2a4e23e" // she-load-key-spec-example's M5
	if !strings.Contains(string(b), m5) {
		t.Fatalf("%s no longer holds M5 %s", ref, m5)
	}
	altered := filepath.Join(t.TempDir(), "altered.json")
	if err := os.WriteFile(altered, []byte(strings.Replace(string(b), m5, "820d8d95dc11b4668878160cb2a4e23f", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code = runScapyScript(t, "--self-check", altered)
	if code != 1 || !strings.Contains(out, "FAIL: she-load-key-spec-example: m5") {
		t.Fatalf("self-check against an altered M5: exit %d, want 1 naming the vector\n%s", code, out)
	}
}

// scapyECUArgs are the script's ECU arguments for n ECUs at 0x1001+i: what a tester knows (the
// slot, the current MASTER_ECU_KEY, all-zero while empty, the new key and the counter); the
// script reads each UID and derives M1-M5 itself.
func scapyECUArgs(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%04x,1,%032x,3c%02x%028x,1", 0x1001+i, 0, i, 0))
	}
	return out
}

// TestScapyDoIPFleet: scapy's DoIP and UDS layers, a tester nobody here wrote, identify the
// gateway of `fleet --doip`, activate routing, unlock each of three ECUs behind it, read its UID,
// load a key with the M1-M3 it derives and check M4/M5 itself, and get NACK 0x03 for an unknown
// address.
func TestScapyDoIPFleet(t *testing.T) {
	if _, err := os.Stat(scapyPython); err != nil {
		skipWithoutScapy(t, "no %s: %v", scapyPython, err)
	}
	const base = "0001001d0000000000000000000000"
	_, addr := startDoIPCommand(t, "fleet", "--can", "mem", "--count", "3", "--uid", base, "--doip", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(addr)
	args := append([]string{host, port, "1000", hex.EncodeToString(ecu.DefaultSecurityKey[:])}, scapyECUArgs(3)...)
	out, code := runScapyScript(t, args...)
	if code != 0 {
		t.Fatalf("scapy_doip.py: exit %d\n%s", code, out)
	}
	baseUID, _ := she.ParseUID(base)
	for i := range 3 {
		uid := ecu.FleetUID(baseUID, i)
		want := fmt.Sprintf("ecu %04x: unlocked, UID %x, LoadKey ERC 00 with the M4/M5 derived here", 0x1001+i, uid[:])
		if !strings.Contains(out, want) {
			t.Errorf("no line %q", want)
		}
	}
	if !strings.Contains(out, "unknown target 2000: NACK 03") {
		t.Error("no NACK 03 for the unknown target")
	}
	t.Logf("scapy_doip.py:\n%s", out)
}

// TestScapyDoIPWrongProof: against ECUs that answer LoadKey with a wrong M5, the script's own
// check of the proof fails, naming M5.
func TestScapyDoIPWrongProof(t *testing.T) {
	if _, err := os.Stat(scapyPython); err != nil {
		skipWithoutScapy(t, "no %s: %v", scapyPython, err)
	}
	_, addr := startDoIPCommand(t, "fleet", "--can", "mem", "--count", "1", "--fault-wrong-proof", "--doip", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(addr)
	args := append([]string{host, port, "1000", hex.EncodeToString(ecu.DefaultSecurityKey[:])}, scapyECUArgs(1)...)
	out, code := runScapyScript(t, args...)
	if code != 1 || !strings.Contains(out, "FAIL: loadkey: M5 ") {
		t.Fatalf("scapy_doip.py against a wrong proof: exit %d, want 1 and a failing M5\n%s", code, out)
	}
}
