package uds

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
)

// TestLongRequestOnKernelISOTPVCAN0: P2 counts from the end of the transmission on the kernel's
// ISO-TP too. A 4095-byte request (585 frames) goes out through a CAN_ISOTP socket to a
// user-space server on vcan0 that answers at once; with P2 = 50 ms (and the default 50 ms margin)
// every answer must be in time, however long the kernel took to send.
func TestLongRequestOnKernelISOTPVCAN0(t *testing.T) {
	if _, err := net.InterfaceByName("vcan0"); err != nil {
		if os.Getenv("SHEKIT_REQUIRE_VCAN") != "" {
			t.Fatalf("no vcan0: %v", err)
		}
		t.Skip("no vcan0 on this machine (vcan/run-in-vm.sh runs tests in a VM that has one)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bus, err := vcan.DialSocketCAN(ctx, "vcan0", vcan.ExactID(0x6E0, false))
	if err != nil {
		t.Fatal(err)
	}
	// The server pauses before its flow control: kernel 6.1's sender drops one that arrives
	// before the echo of its own first frame (isotp.WithFlowControlDelay); 30 ms, as an emulated
	// VM on a loaded host can take longer than a few to echo a frame.
	server := isotp.New(bus, 0x6E8, 0x6E0, isotp.WithFlowControlDelay(30*time.Millisecond))
	defer server.Close()
	kernel, err := isotp.DialKernel("vcan0", 0x6E0, 0x6E8)
	if err != nil {
		t.Fatal(err)
	}
	defer kernel.Close()
	go func() {
		for {
			req, err := server.Receive(ctx)
			if err != nil {
				return
			}
			server.Send(ctx, Negative(req[0], IncorrectMessageLengthOrInvalidFormat))
		}
	}()
	c := NewClient(kernel, WithTiming(50*time.Millisecond, 5*time.Second, 50*time.Millisecond))
	req := make([]byte, 4095)
	req[0], req[1], req[2], req[3] = RoutineControl, 0x01, 0xFD, 0x10
	for i := range 20 {
		start := time.Now()
		_, err := c.Do(ctx, req)
		var nr *NegativeResponseError
		if !errors.As(err, &nr) || nr.NRC != IncorrectMessageLengthOrInvalidFormat {
			t.Fatalf("request %d: %v after %v, want NRC 0x13", i, err, time.Since(start))
		}
		t.Logf("request %d: answered %v after the start of its transmission", i, time.Since(start))
	}
	if st := c.Stats(); st.Timeouts != 0 {
		t.Fatalf("stats %+v", st)
	}
}
