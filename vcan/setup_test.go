package vcan

import (
	"bytes"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// TestSetupScript: where the kernel has CAN the script brings vcan0 up with the CAN FD MTU; where
// it has not, it says so in one line on standard error and fails.
func TestSetupScript(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("sh", "setup-vcan.sh", "vcan0")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		ifi, ierr := net.InterfaceByName("vcan0")
		if ierr != nil {
			t.Fatalf("script succeeded but vcan0 is missing: %v", ierr)
		}
		if ifi.MTU != 72 {
			t.Fatalf("vcan0's MTU is %d, want 72 (CAN FD)", ifi.MTU)
		}
		if again := exec.Command("sh", "setup-vcan.sh", "vcan0").Run(); again != nil {
			t.Fatalf("second run (must be idempotent): %v", again)
		}
		return
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "setup-vcan: ") {
		t.Fatalf("failure output %q: want one line", stderr.String())
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("exit: %v", err)
	}
}
