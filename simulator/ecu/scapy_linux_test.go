package ecu

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan/isotp"
)

// scapyPython is the interpreter of Debian's python3-scapy; the python on PATH may be another.
const scapyPython = "/usr/bin/python3"

// scapyMissing is the exit status of testdata/scapy_uds.py when scapy or cryptography is missing.
const scapyMissing = 77

// skipWithoutScapy skips the test for a missing third-party tool, or fails it under
// SHEKIT_REQUIRE_VCAN, where the VM is expected to have everything.
func skipWithoutScapy(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...) + " (Debian package python3-scapy)"
	if os.Getenv("SHEKIT_REQUIRE_VCAN") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// pendingCounter counts the response-pending answers (7F 31 78) sent through its transport.
type pendingCounter struct {
	isotp.Transport
	n atomic.Int32
}

func (p *pendingCounter) Send(ctx context.Context, msg []byte) error {
	if bytes.Equal(msg, []byte{0x7F, 0x31, 0x78}) {
		p.n.Add(1)
	}
	return p.Transport.Send(ctx, msg)
}

// TestScapyUDSOnVCAN0: scapy's UDS layer over its kernel ISO-TP socket, a tester nobody here
// wrote, takes the simulated ECU on vcan0 through the extended session, SecurityAccess, the UID
// and the OEM document's MasterECUKey update, and gets the document's M4 and M5, with the ECU on
// the kernel's ISO-TP and on ours. A slow key store makes LoadKey answer "response pending"
// first, which scapy must wait past.
func TestScapyUDSOnVCAN0(t *testing.T) {
	uid, m1, m2, m3, m4, m5, _ := docVector(t, "oem-doc-a-master-ecu-key")
	h := hex.EncodeToString
	for _, c := range []struct {
		name   string
		kernel bool
	}{{"kernel-isotp", true}, {"user-isotp", false}} {
		t.Run(c.name, func(t *testing.T) {
			et := &pendingCounter{Transport: vcan0Transport(t, c.kernel, DefaultResponseID, DefaultRequestID)}
			if _, err := os.Stat(scapyPython); err != nil {
				skipWithoutScapy(t, "no %s: %v", scapyPython, err)
			}
			// Python is slow under emulation: the session must outlive a few seconds per request.
			e, err := New(Config{UID: uid, S3: time.Minute, Faults: Faults{SlowNVM: 300 * time.Millisecond}}, et)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			done := make(chan struct{})
			go func() { e.Serve(ctx); close(done) }()
			defer func() { cancel(); <-done }()

			cmd := exec.CommandContext(ctx, scapyPython, "testdata/scapy_uds.py", "vcan0",
				fmt.Sprintf("%X", DefaultRequestID), fmt.Sprintf("%X", DefaultResponseID),
				h(DefaultSecurityKey[:]), h(uid[:]), h(m1[:]), h(m2[:]), h(m3[:]), h(m4[:]), h(m5[:]))
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if errors.As(err, &exit) && exit.ExitCode() == scapyMissing {
				skipWithoutScapy(t, "scapy_uds.py: %s", out)
			}
			if err != nil {
				t.Fatalf("scapy_uds.py: %v\n%s", err, out)
			}
			t.Logf("scapy_uds.py:\n%s", out)
			if et.n.Load() == 0 {
				t.Error("the ECU never answered response pending: the slow key store did not slow LoadKey")
			}
		})
	}
}
