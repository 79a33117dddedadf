package vcan

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"go.einride.tech/can"
	"go.einride.tech/can/pkg/socketcan"
)

// connFactory makes connected nodes of one bus for the backend suite.
type connFactory func(t *testing.T, filters ...Filter) Conn

// backendSuite is what every backend must do: deliver frames to other nodes, filter by ID,
// honour contexts, and end receives on Close.
func backendSuite(t *testing.T, dial connFactory) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := dial(t)
	b := dial(t, ExactID(0x7E0, false), ExactID(0x18DA00F1, true))
	time.Sleep(50 * time.Millisecond) // let the receivers start
	sent := []can.Frame{
		{ID: 0x123, Length: 1, Data: can.Data{1}}, // filtered out at b
		{ID: 0x7E0, Length: 8, Data: can.Data{0x10, 0x44, 0x31, 0x01, 0xFD, 0x10, 0, 1}},
		{ID: 0x18DA00F1, IsExtended: true, Length: 3, Data: can.Data{0x02, 0x3E, 0x00}},
		{ID: 0x7E0, Length: 0},
	}
	for _, f := range sent {
		if err := a.Send(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range sent[1:] {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		got, err := b.Receive(rctx)
		rcancel()
		if err != nil || got != want {
			t.Fatalf("received %v, %v; want %v", got, err, want)
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	if f, err := b.Receive(rctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unexpected frame %v, %v", f, err)
	}
	rcancel()
	if err := a.Send(ctx, can.Frame{ID: 0x800}); err == nil {
		t.Fatal("sent an invalid frame")
	}
	errc := make(chan error)
	go func() {
		_, err := b.Receive(context.Background())
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	b.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Receive after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock Receive")
	}
	if err := b.Send(ctx, sent[1]); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}

func TestHubBackend(t *testing.T) {
	h := NewHub()
	defer h.Close()
	backendSuite(t, func(t *testing.T, filters ...Filter) Conn {
		n := h.Connect(filters...)
		t.Cleanup(func() { n.Close() })
		return n
	})
}

// TestSocketCANBackendOnEmulator runs the suite through the SocketCAN code path (einride's
// frame encoding, the reader goroutine, filters, Close) over go.einride.tech/can's UDP multicast
// emulator, which needs no kernel CAN.
func TestSocketCANBackendOnEmulator(t *testing.T) {
	emu, err := socketcan.NewEmulator(socketcan.NoLogger)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go emu.Run(ctx)
	backendSuite(t, func(t *testing.T, filters ...Filter) Conn {
		s, err := dialSocket(ctx, "udp", emu.Addr().String(), filters)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestSocketCANBackendOnVCAN0 runs the suite on a real vcan0 where the kernel has one
// (vcan/setup-vcan.sh, or vcan/run-in-vm.sh on kernels without CAN).
func TestSocketCANBackendOnVCAN0(t *testing.T) {
	if _, err := net.InterfaceByName("vcan0"); err != nil {
		if os.Getenv("SHEKIT_REQUIRE_VCAN") != "" {
			t.Fatalf("no vcan0: %v", err)
		}
		t.Skip("no vcan0 on this machine (vcan/setup-vcan.sh brings it up where the kernel has CAN; vcan/run-in-vm.sh runs tests in a VM that has one)")
	}
	backendSuite(t, func(t *testing.T, filters ...Filter) Conn {
		s, err := DialSocketCAN(context.Background(), "vcan0", filters...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}
