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

// timedSend is a transport that records how long each Send took.
type timedSend struct {
	isotp.Transport
	took []time.Duration
}

func (t *timedSend) Send(ctx context.Context, msg []byte) error {
	start := time.Now()
	err := t.Transport.Send(ctx, msg)
	t.took = append(t.took, time.Since(start))
	return err
}

// TestLongRequestOnKernelISOTPVCAN0: P2 counts from the end of the transmission on the kernel's
// ISO-TP too. A 4095-byte request (585 frames) goes out through a CAN_ISOTP socket to a
// user-space server on vcan0 that answers at once. Send must not return before the server's flow
// control, which comes 30 ms after the first frame (so no earlier than that), and every answer
// must then come within P2 = 50 ms, however long the kernel took to send. The margin (ΔP2) is
// 250 ms: an emulated VM on a loaded host may not run for that long, and without the wait the
// client's timer would run out during the transmission (1-5 s under load, 0.25 s at best).
func TestLongRequestOnKernelISOTPVCAN0(t *testing.T) {
	if _, err := net.InterfaceByName("vcan0"); err != nil {
		if os.Getenv("SHEKIT_REQUIRE_VCAN") != "" {
			t.Fatalf("no vcan0: %v", err)
		}
		t.Skip("no vcan0 on this machine (vcan/run-in-vm.sh runs tests in a VM that has one)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bus, err := vcan.DialSocketCAN(ctx, "vcan0", vcan.ExactID(0x6E0, false))
	if err != nil {
		t.Fatal(err)
	}
	// The pause before the flow control also keeps kernel 6.1's sender from dropping one that
	// arrives before the echo of its own first frame (isotp.WithFlowControlDelay).
	const fcDelay = 30 * time.Millisecond
	server := isotp.New(bus, 0x6E8, 0x6E0, isotp.WithFlowControlDelay(fcDelay))
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
	tr := &timedSend{Transport: kernel}
	c := NewClient(tr, WithTiming(50*time.Millisecond, 5*time.Second, 250*time.Millisecond))
	req := make([]byte, 4095)
	req[0], req[1], req[2], req[3] = RoutineControl, 0x01, 0xFD, 0x10
	for i := range 20 {
		start := time.Now()
		_, err := c.Do(ctx, req)
		var nr *NegativeResponseError
		if !errors.As(err, &nr) || nr.NRC != IncorrectMessageLengthOrInvalidFormat {
			t.Fatalf("request %d: %v after %v, want NRC 0x13", i, err, time.Since(start))
		}
		if took := tr.took[len(tr.took)-1]; took < fcDelay {
			t.Fatalf("request %d: Send returned after %v, before the flow control (%v): not at the end of the transmission", i, took, fcDelay)
		}
		t.Logf("request %d: sent in %v, answered %v after the start", i, tr.took[len(tr.took)-1], time.Since(start))
	}
	if st := c.Stats(); st.Timeouts != 0 {
		t.Fatalf("stats %+v", st)
	}
}
