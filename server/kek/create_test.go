package kek

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// crashEnv makes the test binary create a key at the path it names and die (SIGKILL) just
// before the key file takes its name.
const crashEnv = "SHEKIT_TEST_KEK_CRASH"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashEnv); path != "" {
		beforeLink = func() { syscall.Kill(os.Getpid(), syscall.SIGKILL) }
		Load(path)
		os.Exit(3) // not reached
	}
	os.Exit(m.Run())
}

// TestCrashWhileCreatingLeavesNoKeyFile: a process killed while it creates the key leaves no file
// under the key's name (no empty or partial key), and the next start creates a whole key.
func TestCrashWhileCreatingLeavesNoKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek.key")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	err := cmd.Run()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the child was not killed at the crash point: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a crash while creating the key left %s (%v)", path, err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("start after the crash: %v", err)
	}
	if info, err := os.Stat(path); err != nil || info.Size() != 32 || info.Mode().Perm() != 0o600 {
		t.Fatalf("key after the crash: %v %v", info, err)
	}
}

// TestShortKeyFileIsAnError: an empty or short key file is refused with a clear error and left
// as it is, never replaced by a new key (which would lose every sealed secret).
func TestShortKeyFileIsAnError(t *testing.T) {
	for _, content := range []string{"", "0123456789"} {
		path := filepath.Join(t.TempDir(), "kek.key")
		os.WriteFile(path, []byte(content), 0o600)
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), "want 32") {
			t.Fatalf("%d-byte key file: %v", len(content), err)
		}
		if got, _ := os.ReadFile(path); string(got) != content {
			t.Fatalf("the %d-byte key file was changed", len(content))
		}
	}
}
