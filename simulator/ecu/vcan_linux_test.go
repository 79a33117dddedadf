package ecu

import (
	"context"
	"net"
	"os"
	"testing"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
)

// vcan0Transports makes the ECU's and the tester's ISO-TP transports on vcan0: the kernel's
// CAN_ISOTP sockets, or our user-space ISO-TP over SocketCAN.
func vcan0Transports(tb testing.TB, kernel bool) (ecuSide, testerSide isotp.Transport) {
	tb.Helper()
	ecuSide = vcan0Transport(tb, kernel, DefaultResponseID, DefaultRequestID)
	return ecuSide, vcan0Transport(tb, kernel, DefaultRequestID, DefaultResponseID)
}

// vcan0Transport makes one ISO-TP transport on vcan0 that sends with txID and receives rxID,
// closed when the test ends. Without vcan0 it skips, or fails under SHEKIT_REQUIRE_VCAN.
func vcan0Transport(tb testing.TB, kernel bool, txID, rxID uint32) isotp.Transport {
	tb.Helper()
	if _, err := net.InterfaceByName("vcan0"); err != nil {
		if os.Getenv("SHEKIT_REQUIRE_VCAN") != "" {
			tb.Fatalf("no vcan0: %v", err)
		}
		tb.Skip("no vcan0 on this machine (vcan/run-in-vm.sh runs tests in a VM that has one)")
	}
	if kernel {
		c, err := isotp.DialKernel("vcan0", txID, rxID)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { c.Close() })
		return c
	}
	c, err := Transport(func(filters ...vcan.Filter) (vcan.Conn, error) {
		return vcan.DialSocketCAN(context.Background(), "vcan0", filters...)
	}, txID, rxID)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkUDSLoadKeyVCAN0 is one LoadKey routine from a tester to the simulated ECU on a real
// kernel's vcan0, both sides on the kernel's ISO-TP or both on ours, in one run.
func BenchmarkUDSLoadKeyVCAN0(b *testing.B) {
	for _, c := range []struct {
		name   string
		kernel bool
	}{{"kernel-isotp", true}, {"user-isotp", false}} {
		b.Run(c.name, func(b *testing.B) {
			uid := she.UID{0x00, 0x01, 0x00, 0x1d, 14: 1}
			et, ct := vcan0Transports(b, c.kernel)
			client := NewClient(ct)
			stop := func() {}
			defer func() { stop() }()
			loadKeyLoop(b, uid, func() *Client {
				stop()
				e, err := New(Config{UID: uid, NoSecurity: true}, et)
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { e.Serve(ctx); close(done) }()
				stop = func() { cancel(); <-done }
				if err := client.StartSession(ctx, uds.ExtendedSession); err != nil {
					b.Fatal(err)
				}
				return client
			})
			b.StopTimer()
		})
	}
}
