//go:build linux

package isotp

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan"
)

// recordFrames keeps what the tap sees, classic and CAN FD, as record does.
func recordFrames(ctx context.Context, tap vcan.FrameConn, done <-chan struct{}) []vcan.Frame {
	return recordUntilQuiet(ctx, tap.ReceiveFrame, done)
}

// fdUserConn opens our user-space ISO-TP over CAN FD (TX_DL 64, BRS) on vcan0.
func fdUserConn(t *testing.T, ctx context.Context, txID, rxID uint32, opts ...Option) *Conn {
	t.Helper()
	bus, err := vcan.DialSocketCANFD(ctx, "vcan0", vcan.ExactID(rxID, false))
	if err != nil {
		t.Fatal(err)
	}
	c := New(bus, txID, rxID, append([]Option{WithCANFD(64, true)}, opts...)...)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestKernelInteropCANFD: our user-space ISO-TP and the kernel's CAN_ISOTP (CAN_ISOTP_LL_OPTS:
// mtu 72, tx_dl 64, BRS) exchange single frames with and without the length escape, first frames
// of 64 bytes with one or more consecutive frames, and the 32-bit escape's size class' neighbour
// 4095, in both directions on vcan0; every frame on the bus is CAN FD with BRS, of a CAN FD length
// up to 64, and a message of 63 to 4095 bytes starts with a 64-byte first frame.
func TestKernelInteropCANFD(t *testing.T) {
	requireVCAN0(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := uint32(0x640)
	for _, kernelSends := range []bool{false, true} {
		for _, n := range []int{5, 8, 33, 62, 63, 64, 200, 4095} {
			id += 2
			userID, kernelID := id, id+1
			t.Run(fmt.Sprintf("kernel-sends=%v/%d", kernelSends, n), func(t *testing.T) {
				tap, err := vcan.DialSocketCANFD(ctx, "vcan0", vcan.ExactID(userID, false), vcan.ExactID(kernelID, false))
				if err != nil {
					t.Fatal(err)
				}
				defer tap.Close()
				// The kernel's 6.1 sender drops a flow control that comes before the echo of its
				// own frame (see WithFlowControlDelay).
				user := fdUserConn(t, ctx, userID, kernelID, WithFlowControlDelay(30*time.Millisecond))
				kernel, err := DialKernel("vcan0", kernelID, userID, WithCANFD(64, true))
				if err != nil {
					t.Fatal(err)
				}
				defer kernel.Close()
				msg := make([]byte, n)
				for i := range msg {
					msg[i] = byte(i*11 + n)
				}
				var send func(context.Context, []byte) error = user.Send
				var receive func(context.Context) ([]byte, error) = kernel.Receive
				if kernelSends {
					send, receive = kernel.Send, user.Receive
				}
				done := make(chan struct{})
				seen := make(chan []vcan.Frame, 1)
				go func() { seen <- recordFrames(ctx, tap, done) }()
				got := make(chan []byte, 1)
				errs := make(chan error, 1)
				go func() { m, err := receive(ctx); errs <- err; got <- m }()
				if err := send(ctx, msg); err != nil {
					t.Fatalf("send: %v", err)
				}
				err = <-errs
				close(done)
				frames := <-seen
				if err != nil {
					t.Fatalf("receive: %v; frames %+v", err, frames)
				}
				if m := <-got; !bytes.Equal(m, msg) {
					t.Fatalf("received %d bytes % x…, want %d", len(m), m[:min(8, len(m))], n)
				}
				checkFDFrames(t, frames, n)
			})
		}
	}
}

// checkFDFrames checks the frames of one CAN FD exchange of an n-byte message.
func checkFDFrames(t *testing.T, frames []vcan.Frame, n int) {
	t.Helper()
	if len(frames) == 0 {
		t.Fatal("the tap saw no frame")
	}
	for _, f := range frames {
		if !f.FD || !f.BRS || f.Length > 64 || !vcan.ValidFDLength(int(f.Length)) {
			t.Errorf("frame %03X FD=%v BRS=%v of %d bytes", f.ID, f.FD, f.BRS, f.Length)
		}
	}
	first := frames[0]
	switch {
	case n <= 7 && first.Data[0] != byte(n):
		t.Errorf("single frame of %d: % X", n, first.Payload())
	case n > 7 && n <= 62 && (first.Data[0] != 0 || first.Data[1] != byte(n)):
		t.Errorf("escaped single frame of %d: % X", n, first.Payload())
	case n > 62 && (first.Length != 64 || first.Data[0] != 0x10|byte(n>>8) || first.Data[1] != byte(n)):
		t.Errorf("first frame of %d: % X", n, first.Payload())
	}
}

// TestCanUtilsInteropCANFD: can-utils' isotpsend and isotprecv with -L 72:64:1 (CAN FD MTU, TX_DL
// 64, BRS) and our user-space ISO-TP over CAN FD exchange single and multi-frame messages both
// ways.
func TestCanUtilsInteropCANFD(t *testing.T) {
	requireVCAN0(t)
	send, recv := canUtil(t, "isotpsend"), canUtil(t, "isotprecv")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := uint32(0x560)
	for _, n := range []int{3, 20, 62, 64, 500} {
		for _, weSend := range []bool{true, false} {
			id += 2
			ours, theirs := id, id+1
			t.Run(fmt.Sprintf("we-send=%v/%d", weSend, n), func(t *testing.T) {
				conn := fdUserConn(t, ctx, ours, theirs, WithPadding(0xAA), WithFlowControlDelay(30*time.Millisecond))
				msg := make([]byte, n)
				for i := range msg {
					msg[i] = byte(i*5 + n)
				}
				spaced := strings.ToUpper(strings.Join(strings.Fields(fmt.Sprintf("% x", msg)), " "))
				args := []string{"-s", fmt.Sprintf("%x", theirs), "-d", fmt.Sprintf("%x", ours), "-p", "AA:AA", "-L", "72:64:1", "vcan0"}
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
					if got := strings.TrimSpace(out.String()); got != spaced {
						t.Fatalf("isotprecv printed %q, want %q", got, spaced)
					}
					return
				}
				got, errs := make(chan []byte, 1), make(chan error, 1)
				go func() { m, err := conn.Receive(ctx); errs <- err; got <- m }()
				cmd := exec.CommandContext(ctx, send, args...)
				cmd.Stdin = strings.NewReader(spaced + "\n")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("isotpsend: %v: %s", err, out)
				}
				if err := <-errs; err != nil {
					t.Fatalf("receive: %v", err)
				}
				if m := <-got; !bytes.Equal(m, msg) {
					t.Fatalf("received % X, want % X", m, msg)
				}
			})
		}
	}
}

// TestCandumpLogOfCANFDLoadKey: candump -L records a LoadKey-sized exchange over CAN FD (a 64-byte
// request from our ISO-TP, a 33-byte answer from the kernel's) on vcan0, and vcan.ReadLog reads
// the log back as the four frames of the exchange: FF 10 40 of 64 bytes, FC, CF 21 of 8 bytes
// (padded), the answer as an escaped single frame 00 21 padded to 48 bytes, all CAN FD with BRS.
func TestCandumpLogOfCANFDLoadKey(t *testing.T) {
	requireVCAN0(t)
	candump := canUtil(t, "candump")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const testerID, ecuID = 0x6D0, 0x6D8
	logPath := filepath.Join(t.TempDir(), "canfd.log")
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, candump, "-L", fmt.Sprintf("vcan0,%03X:7F7", testerID))
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitReading(t, cmd.Process.Pid)
	tester := fdUserConn(t, ctx, testerID, ecuID)
	ecu, err := DialKernel("vcan0", ecuID, testerID, WithCANFD(64, true))
	if err != nil {
		t.Fatal(err)
	}
	defer ecu.Close()
	request := make([]byte, 64)
	for i := range request {
		request[i] = byte(i)
	}
	answer := make([]byte, 33)
	for i := range answer {
		answer[i] = 0xA0 + byte(i)
	}
	got, errs := make(chan []byte, 1), make(chan error, 1)
	go func() { m, err := ecu.Receive(ctx); errs <- err; got <- m }()
	if err := tester.Send(ctx, request); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil || !bytes.Equal(<-got, request) {
		t.Fatalf("the kernel's side received the request: %v", err)
	}
	if err := ecu.Send(ctx, answer); err != nil {
		t.Fatal(err)
	}
	if m, err := tester.Receive(ctx); err != nil || !bytes.Equal(m, answer) {
		t.Fatalf("answer % X, %v", m, err)
	}
	time.Sleep(500 * time.Millisecond) // let candump write the last frame
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines, err := vcan.ReadLog(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		id     uint32
		length uint8
		head   []byte
	}{
		{testerID, 64, []byte{0x10, 0x40, 0x00, 0x01}},
		{ecuID, 8, []byte{0x30, 0x00, 0x00}},
		{testerID, 8, []byte{0x21, 0x3E, 0x3F, 0xCC}},
		{ecuID, 48, []byte{0x00, 0x21, 0xA0, 0xA1}},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d frames in the log, want %d: %+v", len(lines), len(want), lines)
	}
	for i, l := range lines {
		w := l.Wire
		if l.Interface != "vcan0" || w.ID != want[i].id || !w.FD || !w.BRS || w.Length != want[i].length ||
			!bytes.HasPrefix(w.Payload(), want[i].head) {
			t.Errorf("log line %d: %s %03X FD=%v BRS=%v % X", i, l.Interface, w.ID, w.FD, w.BRS, w.Payload())
		}
	}
}
