package isotp

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan"
)

// canUtil returns the path of a can-utils command, skipping the test where there is none (or
// failing it under SHEKIT_REQUIRE_VCAN).
func canUtil(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("SHEKIT_REQUIRE_VCAN") != "" {
			t.Fatalf("%s: %v (Debian package can-utils)", name, err)
		}
		t.Skipf("no %s (Debian package can-utils)", name)
	}
	return p
}

// TestCanUtilsInterop: our user-space ISO-TP on vcan0 and can-utils' isotpsend/isotprecv (the
// kernel's ISO-TP driven by a program nobody here wrote) exchange single and multi-frame
// messages in both directions, padded as both sides are told.
func TestCanUtilsInterop(t *testing.T) {
	requireVCAN0(t)
	send, recv := canUtil(t, "isotpsend"), canUtil(t, "isotprecv")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := uint32(0x500)
	for _, n := range []int{3, 7, 8, 100, 4095} {
		for _, weSend := range []bool{true, false} {
			id += 2
			ours, theirs := id, id+1
			t.Run(fmt.Sprintf("we-send=%v/%d", weSend, n), func(t *testing.T) {
				bus, err := vcan.DialSocketCAN(ctx, "vcan0", vcan.ExactID(theirs, false))
				if err != nil {
					t.Fatal(err)
				}
				conn := New(bus, ours, theirs, WithPadding(0xAA))
				defer conn.Close()
				msg := make([]byte, n)
				for i := range msg {
					msg[i] = byte(i*13 + n)
				}
				// can-utils take and print the bytes as space-separated hex.
				spaced := strings.ToUpper(strings.Join(strings.Fields(fmt.Sprintf("% x", msg)), " "))
				args := []string{"-s", fmt.Sprintf("%x", theirs), "-d", fmt.Sprintf("%x", ours), "-p", "AA:AA", "vcan0"}
				if weSend {
					cmd := exec.CommandContext(ctx, recv, args...)
					var out bytes.Buffer
					cmd.Stdout, cmd.Stderr = &out, &out
					if err := cmd.Start(); err != nil {
						t.Fatal(err)
					}
					waitReading(t, cmd.Process.Pid)
					if err := conn.Send(ctx, msg); err != nil {
						cmd.Process.Kill()
						t.Fatalf("send: %v (isotprecv: %s)", err, out.String())
					}
					if err := cmd.Wait(); err != nil {
						t.Fatalf("isotprecv: %v: %s", err, out.String())
					}
					got, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(out.String()), " ", ""))
					if err != nil || !bytes.Equal(got, msg) {
						t.Fatalf("isotprecv printed %q, want %d bytes %s…", out.String(), n, spaced[:min(24, len(spaced))])
					}
					return
				}
				received := make(chan []byte, 1)
				errs := make(chan error, 1)
				go func() { m, err := conn.Receive(ctx); errs <- err; received <- m }()
				cmd := exec.CommandContext(ctx, send, args...)
				cmd.Stdin = strings.NewReader(spaced + "\n")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("isotpsend: %v: %s", err, out)
				}
				if err := <-errs; err != nil {
					t.Fatalf("receive: %v", err)
				}
				if got := <-received; !bytes.Equal(got, msg) {
					t.Fatalf("received % x, want % x", got, msg)
				}
			})
		}
	}
}

// waitReading waits until process pid has a socket open and sleeps (isotprecv blocked reading its
// bound ISO-TP socket), so that what is sent next is not sent before it listens.
func waitReading(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		socket := false
		for _, fd := range fds {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); strings.HasPrefix(l, "socket:") {
				socket = true
			}
		}
		if f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); socket && len(f) > 0 && f[0] == "S" {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("process %d never waited on a socket", pid)
}
