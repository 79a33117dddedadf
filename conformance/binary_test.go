package conformance_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// buildVendorBinary builds the conformance binary as make conformance does (static, stamped) into
// dir and returns its path.
func buildVendorBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "shekit-conformance")
	cmd := exec.Command("go", "test", "-c", "-trimpath", "-ldflags",
		"-X github.com/shekit/shekit/conformance_test.version=v0.0.0-test -X github.com/shekit/shekit/conformance_test.commit=feedc0de",
		"-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	return bin
}

// runVendorBinary runs bin in dir as a vendor would: no Go toolchain on the PATH, no source tree,
// no CONF_ variable.
func runVendorBinary(t *testing.T, bin, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestVendorBinary: the binary make conformance builds runs from an empty directory with no Go
// toolchain: --version, --list and --init answer without a server.
func TestVendorBinary(t *testing.T) {
	skipUnderRace(t)
	t.Parallel()
	bin := buildVendorBinary(t, t.TempDir())
	empty := t.TempDir()
	out, err := runVendorBinary(t, bin, empty, "--version")
	if err != nil || out != "shekit-conformance v0.0.0-test (commit feedc0de)\n" {
		t.Errorf("--version: %v %q", err, out)
	}
	out, err = runVendorBinary(t, bin, empty, "--list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	count := map[string]int{}
	listed := regexp.MustCompile("^(kms|clm|ecu|station|self-test)\t[^\t]+\t[^\t]+$")
	for _, l := range lines {
		if m := listed.FindStringSubmatch(l); m != nil {
			count[m[1]]++
		}
	}
	if err != nil || count["kms"] == 0 || count["clm"] == 0 || count["self-test"] == 0 {
		t.Errorf("--list: %v, per target %v\n%s", err, count, out)
	}
	out, err = runVendorBinary(t, bin, empty, "--list", "--target", "clm")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if listed.MatchString(l) && !strings.HasPrefix(l, "clm\t") {
			t.Errorf("--list --target clm lists %q", l)
		}
	}
	if err != nil || !strings.Contains(out, "clm\tCLM WebAPI / answers SystemStatus\t") {
		t.Errorf("--list --target clm: %v\n%s", err, out)
	}
	out, err = runVendorBinary(t, bin, empty, "--init")
	if err != nil || out != string(templateYAML) {
		t.Errorf("--init: %v, wrote %d bytes, want the template", err, len(out))
	}
	if _, err := runVendorBinary(t, bin, empty, "--init", "decl.yaml"); err != nil {
		t.Errorf("--init decl.yaml: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(empty, "decl.yaml")); err != nil || string(b) != string(templateYAML) {
		t.Errorf("decl.yaml: %v", err)
	}
	if out, err := runVendorBinary(t, bin, empty, "--target", "kms", "--config", "nosuch.yaml"); err == nil || !strings.Contains(out, "nosuch.yaml") {
		t.Errorf("a missing declaration: %v\n%s", err, out)
	}
}

// TestVendorBinaryCertifiesReference: the binary certifies targets kms and clm of the reference
// server started as a separate process (go run ./server's program, on a free port), twice in a
// row against the same instance, with the declaration --init writes (its URLs changed).
func TestVendorBinaryCertifiesReference(t *testing.T) {
	skipUnderRace(t)
	t.Parallel()
	dir := t.TempDir()
	bin := buildVendorBinary(t, dir)
	url := startServerProcess(t, dir)
	work := t.TempDir()
	decl := strings.ReplaceAll(string(templateYAML), "http://127.0.0.1:8080", url)
	if err := os.WriteFile(filepath.Join(work, "decl.yaml"), []byte(decl), 0o600); err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		out, err := runVendorBinary(t, bin, work, "--config", "decl.yaml", "--target", "kms,clm", "--report-dir", "report")
		if err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out)
		}
		for _, want := range []string{"kms: certified, ", "clm: certified, ", "conformance (kit v0.0.0-test, commit feedc0de)"} {
			if !strings.Contains(out, want) {
				t.Errorf("run %d: no %q in\n%s", run, want, out)
			}
		}
		if strings.Contains(out, "\x1b[") {
			t.Errorf("run %d: ANSI colour codes off a terminal", run)
		}
		if _, err := os.Stat(filepath.Join(work, "report", "results.yaml")); err != nil {
			t.Errorf("run %d: %v", run, err)
		}
	}
}

// startServerProcess builds the reference server (./server) and starts it on a free loopback
// port with its defaults (demo registry, no authentication), stopped when the test ends; it
// returns its URL.
func startServerProcess(t *testing.T, dir string) string {
	t.Helper()
	server := filepath.Join(dir, "server")
	if out, err := exec.Command("go", "build", "-o", server, "../server").CombinedOutput(); err != nil {
		t.Fatalf("go build ./server: %v\n%s", err, out)
	}
	cmd := exec.Command(server, "-listen", "127.0.0.1:0", "-data", filepath.Join(dir, "data"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer // its log: shown if the test fails
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() { // the log is complete once the server has exited
			t.Logf("the server's log:\n%s", tail(stderr.String(), 4000))
		}
	})
	found := make(chan string, 1)
	listening := regexp.MustCompile(`listening on (http://127\.0\.0\.1:[0-9]+)`)
	go func() { // reads the server's output to its end, so that the server never blocks on it
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if m := listening.FindStringSubmatch(s.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case url := <-found:
		return url
	case <-time.After(2 * time.Minute):
		t.Fatal("the server did not say where it listens within 2 minutes")
		return ""
	}
}

// tail is the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
