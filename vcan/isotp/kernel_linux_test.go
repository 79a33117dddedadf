package isotp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"go.einride.tech/can"

	"github.com/shekit/shekit/vcan"
)

// requireVCAN0 skips the test where there is no vcan0, unless SHEKIT_REQUIRE_VCAN is set (as in
// the VM of vcan/run-in-vm.sh, where a missing vcan0 is a failure).
func requireVCAN0(t *testing.T) {
	t.Helper()
	if _, err := net.InterfaceByName("vcan0"); err != nil {
		if os.Getenv("SHEKIT_REQUIRE_VCAN") != "" {
			t.Fatalf("no vcan0: %v", err)
		}
		t.Skip("no vcan0 on this machine (vcan/setup-vcan.sh brings it up where the kernel has CAN; vcan/run-in-vm.sh runs tests in a VM that has one)")
	}
}

// TestKernelInterop: our user-space ISO-TP and the Linux kernel's CAN_ISOTP talk to each other on
// vcan0 in both directions, for single and multi-frame messages, with and without padding and with
// the receiver asking for a block size and STmin, which the frames on the bus must show.
func TestKernelInterop(t *testing.T) {
	requireVCAN0(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	type setup struct {
		name string
		opts []Option
		pad  bool
		bs   uint8
		st   byte // STmin as sent in the flow control frame
	}
	setups := []setup{
		{"padded", nil, true, 0, 0},
		{"unpadded", []Option{WithoutPadding()}, false, 0, 0},
		// Our receiver pauses before each flow control: kernel 6.1's sender drops one that
		// arrives before the echo of its own last consecutive frame (see WithFlowControlDelay).
		// 30 ms, as an emulated VM on a loaded host can take longer than 5 ms to echo a frame.
		{"bs4-stmin2ms", []Option{WithFlowControl(4, 2*time.Millisecond), WithFlowControlDelay(30 * time.Millisecond)}, true, 4, 2},
	}
	id := uint32(0x600)
	for _, s := range setups {
		for _, kernelSends := range []bool{false, true} {
			for _, n := range []int{5, 62, 4095} {
				id += 2
				name := fmt.Sprintf("%s/kernel-sends=%v/%d", s.name, kernelSends, n)
				userID, kernelID := id, id+1
				t.Run(name, func(t *testing.T) {
					tap, err := vcan.DialSocketCAN(ctx, "vcan0", vcan.ExactID(userID, false), vcan.ExactID(kernelID, false))
					if err != nil {
						t.Fatal(err)
					}
					defer tap.Close()
					bus, err := vcan.DialSocketCAN(ctx, "vcan0", vcan.ExactID(kernelID, false))
					if err != nil {
						t.Fatal(err)
					}
					user := New(bus, userID, kernelID, s.opts...)
					defer user.Close()
					kernel, err := DialKernel("vcan0", kernelID, userID, s.opts...)
					if err != nil {
						t.Fatal(err)
					}
					defer kernel.Close()

					msg := make([]byte, n)
					for i := range msg {
						msg[i] = byte(i*7 + n)
					}
					var send func(context.Context, []byte) error = user.Send
					var receive func(context.Context) ([]byte, error) = kernel.Receive
					receiverID := kernelID
					if kernelSends {
						send, receive, receiverID = kernel.Send, user.Receive, userID
					}
					done := make(chan struct{})
					seen := make(chan []can.Frame, 1)
					go func() { seen <- record(ctx, tap, done) }()
					got := make(chan []byte, 1)
					errs := make(chan error, 1)
					go func() {
						m, err := receive(ctx)
						errs <- err
						got <- m
					}()
					if err := send(ctx, msg); err != nil {
						close(done)
						frames := <-seen
						t.Fatalf("send: %v; %d frames, the bus's last: %v", err, len(frames), frames[max(0, len(frames)-6):])
					}
					if err := <-errs; err != nil {
						close(done)
						frames := <-seen
						t.Fatalf("receive: %v; the bus's last frames: %v", err, frames[max(0, len(frames)-6):])
					}
					if m := <-got; !bytes.Equal(m, msg) {
						t.Fatalf("received %d bytes %x…, want %d bytes %x…", len(m), m[:min(8, len(m))], n, msg[:8])
					}
					close(done)
					frames := <-seen
					checkFrames(t, frames, s.pad, n, receiverID, s.bs, s.st)
				})
			}
		}
	}
}

// record keeps what the tap sees until done is closed and then the tap has been quiet for 500 ms
// (a loaded VM may hand the tap its frames well after the exchange ended).
func record(ctx context.Context, tap vcan.Conn, done <-chan struct{}) []can.Frame {
	return recordUntilQuiet(ctx, tap.Receive, done)
}

// recordUntilQuiet calls receive until done is closed and a whole 500 ms window after it brought
// nothing, or ctx ends. Before done, it polls in 50 ms windows; a short window that ends after
// done closed is followed by a long one, so a late frame is not lost.
func recordUntilQuiet[F any](ctx context.Context, receive func(context.Context) (F, error), done <-chan struct{}) []F {
	var frames []F
	for {
		long := false
		window := 50 * time.Millisecond
		select {
		case <-done:
			long, window = true, 500*time.Millisecond
		default:
		}
		c, cancel := context.WithTimeout(ctx, window)
		f, err := receive(c)
		cancel()
		switch {
		case err == nil:
			frames = append(frames, f)
		case ctx.Err() != nil || long:
			return frames
		}
	}
}

// checkFrames checks the frames of one exchange: every frame 8 bytes long when padded, and for a
// multi-frame message the receiver's flow control asking for bs and st.
func checkFrames(t *testing.T, frames []can.Frame, pad bool, n int, receiverID uint32, bs, st byte) {
	t.Helper()
	if len(frames) == 0 {
		t.Fatal("the tap saw no frame")
	}
	for _, f := range frames {
		if pad && f.Length != 8 {
			t.Errorf("padded exchange, frame %v of %d bytes", f, f.Length)
		}
	}
	if n <= 7 {
		if len(frames) != 1 || frames[0].Data[0] != byte(n) {
			t.Errorf("single frame %d bytes: frames %v", n, frames)
		}
		return
	}
	if !pad && frames[len(frames)-1].Length == 8 && (n-6)%7 != 0 {
		t.Errorf("unpadded exchange, last frame %v is 8 bytes", frames[len(frames)-1])
	}
	var fc *can.Frame
	for i := range frames {
		if frames[i].ID == receiverID && frames[i].Data[0]>>4 == 3 {
			fc = &frames[i]
			break
		}
	}
	if fc == nil {
		t.Fatalf("no flow control from 0x%X in %v", receiverID, frames)
	}
	if fc.Data[0] != 0x30 || fc.Data[1] != bs || fc.Data[2] != st {
		t.Errorf("flow control %v, want CTS with BS %d STmin %d", fc, bs, st)
	}
	wantFC := 1
	if bs > 0 {
		wantFC = (((n-6)+6)/7 + int(bs) - 1) / int(bs)
	}
	gotFC := 0
	for _, f := range frames {
		if f.ID == receiverID && f.Data[0]>>4 == 3 {
			gotFC++
		}
	}
	if gotFC != wantFC {
		t.Errorf("%d flow control frames for %d bytes with BS %d, want %d", gotFC, n, bs, wantFC)
	}
}

// TestKernelCancelAfterCallLeavesNextCall: a call's context cancelled just after the call returned
// (as every caller with a per-call timeout does) must not fail the next call with a stale past
// deadline.
func TestKernelCancelAfterCallLeavesNextCall(t *testing.T) {
	requireVCAN0(t)
	a, err := DialKernel("vcan0", 0x6F0, 0x6F1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := DialKernel("vcan0", 0x6F1, 0x6F0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for i := range 300 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := a.Send(ctx, []byte{byte(i)}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		m, err := b.Receive(ctx)
		cancel()
		if err != nil || len(m) != 1 || m[0] != byte(i) {
			t.Fatalf("receive %d: %x %v", i, m, err)
		}
	}
}

// TestKernelAbandonedMessage: a message the kernel's receiver abandons (a consecutive frame with
// the wrong sequence number) comes back as ErrSequence, which Abandoned recognises, and the
// socket then receives the next message.
func TestKernelAbandonedMessage(t *testing.T) {
	requireVCAN0(t)
	rx, err := DialKernel("vcan0", 0x6E1, 0x6E0)
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bus, err := vcan.DialSocketCAN(ctx, "vcan0", vcan.ExactID(0x6E1, false))
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	send := func(data ...byte) {
		t.Helper()
		f := can.Frame{ID: 0x6E0, Length: uint8(len(data))}
		copy(f.Data[:], data)
		if err := bus.Send(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan error, 1)
	go func() { _, err := rx.Receive(ctx); got <- err }()
	send(0x10, 20, 1, 2, 3, 4, 5, 6) // first frame of 20 bytes
	if fc, err := bus.Receive(ctx); err != nil || fc.Data[0] != 0x30 {
		t.Fatalf("flow control: %v %v", fc, err)
	}
	send(0x22, 7, 8, 9, 10, 11, 12, 13) // SN 2 where 1 is due
	err = <-got
	if !errors.Is(err, ErrSequence) || !Abandoned(err) {
		t.Fatalf("receive after a wrong sequence number: %v", err)
	}
	send(0x03, 0xAA, 0xBB, 0xCC)
	if m, err := rx.Receive(ctx); err != nil || !bytes.Equal(m, []byte{0xAA, 0xBB, 0xCC}) {
		t.Fatalf("next message: %x %v", m, err)
	}
}
