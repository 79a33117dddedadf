//go:build linux

package isotp

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan"
)

// TestKernelInteropAddressExtension: our user-space ISO-TP with WithAddressExtension and the
// kernel's CAN_ISOTP with CAN_ISOTP_EXTEND_ADDR and CAN_ISOTP_RX_EXT_ADDR exchange messages both
// ways on vcan0, classic CAN and CAN FD (TX_DL 64): single frames up to the one byte shorter limit,
// first and consecutive frames; every frame each side sends starts with its address byte.
func TestKernelInteropAddressExtension(t *testing.T) {
	requireVCAN0(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const userAE, kernelAE = 0x40, 0xF1 // each side's frames start with the other's address
	id := uint32(0x680)
	for _, fd := range []bool{false, true} {
		for _, kernelSends := range []bool{false, true} {
			for _, n := range []int{5, 6, 7, 61, 62, 300} {
				id += 2
				userID, kernelID := id, id+1
				t.Run(fmt.Sprintf("fd=%v/kernel-sends=%v/%d", fd, kernelSends, n), func(t *testing.T) {
					tap, err := vcan.DialSocketCANFD(ctx, "vcan0", vcan.ExactID(userID, false), vcan.ExactID(kernelID, false))
					if err != nil {
						t.Fatal(err)
					}
					defer tap.Close()
					opts := []Option{WithFlowControlDelay(30 * time.Millisecond)}
					kopts := []Option{WithAddressExtension(userAE, kernelAE)}
					var bus vcan.Conn
					if fd {
						opts = append(opts, WithCANFD(64, false))
						kopts = append(kopts, WithCANFD(64, false))
						bus, err = vcan.DialSocketCANFD(ctx, "vcan0", vcan.ExactID(kernelID, false))
					} else {
						bus, err = vcan.DialSocketCAN(ctx, "vcan0", vcan.ExactID(kernelID, false))
					}
					if err != nil {
						t.Fatal(err)
					}
					user := New(bus, userID, kernelID, append(opts, WithAddressExtension(kernelAE, userAE))...)
					defer user.Close()
					kernel, err := DialKernel("vcan0", kernelID, userID, kopts...)
					if err != nil {
						t.Fatal(err)
					}
					defer kernel.Close()
					msg := make([]byte, n)
					for i := range msg {
						msg[i] = byte(i*13 + n)
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
					for _, f := range frames {
						want := byte(kernelAE) // what the user side sends
						if f.ID == kernelID {
							want = userAE
						}
						if f.Length == 0 || f.Data[0] != want || f.FD != fd {
							t.Fatalf("frame %#x % X (FD %v): want address byte %#02x, FD %v", f.ID, f.Data[:f.Length], f.FD, want, fd)
						}
					}
					if wantFrames := n > 6 && !fd || n > 61 && fd; wantFrames != (len(frames) > 1) {
						t.Fatalf("%d frames for %d bytes", len(frames), n)
					}
				})
			}
		}
	}
}
