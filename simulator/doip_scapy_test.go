package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
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

// TestScapyDoIPFleet: scapy's DoIP and UDS layers, a tester nobody here wrote, identify the
// gateway of `fleet --doip`, activate routing, unlock each of three ECUs behind it, read its UID,
// load a key and compare M4/M5, and get NACK 0x03 for an unknown address.
func TestScapyDoIPFleet(t *testing.T) {
	if _, err := os.Stat(scapyPython); err != nil {
		skipWithoutScapy(t, "no %s: %v", scapyPython, err)
	}
	const base = "0001001d0000000000000000000000"
	_, addr := startDoIPCommand(t, "fleet", "--can", "mem", "--count", "3", "--uid", base, "--doip", "127.0.0.1:0")
	host, port, _ := net.SplitHostPort(addr)
	baseUID, _ := she.ParseUID(base)
	args := []string{"testdata/scapy_doip.py", host, port, "1000", hex.EncodeToString(ecu.DefaultSecurityKey[:])}
	for i := range 3 {
		uid := ecu.FleetUID(baseUID, i)
		m, err := she.BuildMessages(she.KeyUpdate{UID: uid, KeyID: she.MasterECUKey, AuthID: she.MasterECUKey,
			NewKey: [16]byte{0x3C, byte(i)}, Counter: 1})
		if err != nil {
			t.Fatal(err)
		}
		args = append(args, fmt.Sprintf("%04x,%x,%x,%x,%x,%x,%x", 0x1001+i, uid[:], m.M1, m.M2, m.M3, m.M4, m.M5))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, scapyPython, args...).CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == scapyMissing {
		skipWithoutScapy(t, "scapy_doip.py: %s", out)
	}
	if err != nil {
		t.Fatalf("scapy_doip.py: %v\n%s", err, out)
	}
	t.Logf("scapy_doip.py:\n%s", out)
}
