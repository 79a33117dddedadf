package ecu

import (
	"bytes"
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
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

// TestDiagProfilesOnVCAN0KernelISOTP: an ECU of each non-default built-in profile on the kernel's
// CAN_ISOTP socket (29-bit IDs and CAN FD TX_DL 64; extended addressing), the tester on our
// user-space ISO-TP over SocketCAN, through ReadUID and LoadKey (the document's M4/M5).
func TestDiagProfilesOnVCAN0KernelISOTP(t *testing.T) {
	for _, name := range []string{"did-canfd", "extended-seedkey"} {
		t.Run(name, func(t *testing.T) {
			p := builtinProfile(t, name)
			ids := p.Addressing.IDs()
			cfg := Config{UID: docUID(t), DiagProfile: p}
			if _, err := net.InterfaceByName("vcan0"); err != nil && os.Getenv("SHEKIT_REQUIRE_VCAN") == "" {
				t.Skip("no vcan0 on this machine (vcan/run-in-vm.sh runs tests in a VM that has one)")
			}
			et, err := KernelTransport("vcan0", ids.Response, ids.Request, cfg.TransportOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			bus, err := vcan.DialSocketCANFD(context.Background(), "vcan0", vcan.ExactID(ids.Response, ids.Extended))
			if err != nil {
				t.Fatal(err)
			}
			// Kernel 6.1's sender drops a flow control that comes before the echo of its frame.
			tt := isotp.New(bus, ids.Request, ids.Response, append(testerOptions(p), isotp.WithFlowControlDelay(30*time.Millisecond))...)
			// A wide margin over P2: an emulated VM on a loaded host is slow.
			r := serveDiag(t, cfg, et, tt, uds.WithTiming(uds.DefaultP2, uds.DefaultP2Star, 2*time.Second))
			checkReadUIDAndLoadKey(t, r)
		})
	}
}

// TestFunctionalOnVCAN0KernelISOTP: an ECU on the kernel's CAN_ISOTP socket with a functional
// listener on a raw SocketCAN socket answers a functional TesterPresent (0x6F1, address byte
// 0xDF, extended-seedkey) on its physical response ID, and withholds NRC 0x11 from a functional
// request of an unknown service.
func TestFunctionalOnVCAN0KernelISOTP(t *testing.T) {
	if _, err := net.InterfaceByName("vcan0"); err != nil && os.Getenv("SHEKIT_REQUIRE_VCAN") == "" {
		t.Skip("no vcan0 on this machine (vcan/run-in-vm.sh runs tests in a VM that has one)")
	}
	p := builtinProfile(t, "extended-seedkey")
	cfg := Config{UID: she.UID{1}, DiagProfile: p}
	dial := func(filters ...vcan.Filter) (vcan.Conn, error) {
		return vcan.DialSocketCAN(context.Background(), "vcan0", filters...)
	}
	open := func(tx, rx uint32) (isotp.Transport, error) {
		return KernelTransport("vcan0", tx, rx, cfg.TransportOptions()...)
	}
	f, err := StartFleetAddressed(context.Background(), FunctionalOpener(dial, open, cfg.TransportOptions()...), cfg, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	tester, err := vcan.DialSocketCAN(context.Background(), "vcan0", vcan.ExactID(0x640, false))
	if err != nil {
		t.Fatal(err)
	}
	defer tester.Close()
	for _, tc := range []struct {
		req, want []byte
	}{
		{[]byte{0xDF, 0x02, 0x85, 0x01}, nil}, // withheld: the next answer is TesterPresent's
		{[]byte{0xDF, 0x02, 0x3E, 0x00}, []byte{0xF1, 0x02, 0x7E, 0x00}},
	} {
		fr := classicFrame(0x6F1, tc.req...)
		if err := tester.Send(context.Background(), fr); err != nil {
			t.Fatal(err)
		}
		if tc.want == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		got, err := tester.Receive(ctx)
		cancel()
		if err != nil || !bytes.Equal(got.Data[:got.Length], tc.want) {
			t.Fatalf("answer % X (%v), want % X", got.Data[:got.Length], err, tc.want)
		}
	}
}

// TestDiagProfilesOnVCAN0UserISOTP: an ECU of each non-default built-in profile and its tester,
// both on our user-space ISO-TP over raw sockets from SocketCANDialer (CAN FD ones for did-canfd's
// link), as the simulator's and the station's commands and the suites dial an interface: ReadUID
// and LoadKey (the document's M4/M5).
func TestDiagProfilesOnVCAN0UserISOTP(t *testing.T) {
	for _, name := range []string{"did-canfd", "extended-seedkey"} {
		t.Run(name, func(t *testing.T) {
			if _, err := net.InterfaceByName("vcan0"); err != nil && os.Getenv("SHEKIT_REQUIRE_VCAN") == "" {
				t.Skip("no vcan0 on this machine (vcan/run-in-vm.sh runs tests in a VM that has one)")
			}
			p := builtinProfile(t, name)
			ids := p.Addressing.IDs()
			cfg := Config{UID: docUID(t), DiagProfile: p}
			dial := SocketCANDialer(context.Background(), "vcan0", p)
			et, err := Transport(dial, ids.Response, ids.Request, cfg.TransportOptions()...)
			if err != nil {
				t.Fatal(err)
			}
			tt, err := ProfileTransport(dial, p, ids)
			if err != nil {
				t.Fatal(err)
			}
			// A wide margin over P2: an emulated VM on a loaded host is slow.
			r := serveDiag(t, cfg, et, tt, uds.WithTiming(uds.DefaultP2, uds.DefaultP2Star, 2*time.Second))
			checkReadUIDAndLoadKey(t, r)
		})
	}
}

// docUID is the UID of the document's master ECU key example (checkReadUIDAndLoadKey's ECU).
func docUID(t *testing.T) she.UID {
	uid, _, _, _, _, _, _ := docVector(t, "oem-doc-a-master-ecu-key")
	return uid
}

// checkReadUIDAndLoadKey reads the UID of an ECU of docUID through r and loads the document's
// master ECU key example, which must answer the document's M4/M5.
func checkReadUIDAndLoadKey(t *testing.T, r *diagRig) {
	t.Helper()
	uid, m1, m2, m3, m4, m5, _ := docVector(t, "oem-doc-a-master-ecu-key")
	if got := r.run(t, profile.ReadUID, nil); !bytes.Equal(got["UID"], uid[:]) {
		t.Fatalf("ReadUID: % X", got["UID"])
	}
	got := r.run(t, profile.LoadKey, profile.Values{"M1": m1[:], "M2": m2[:], "M3": m3[:]})
	if !bytes.Equal(got["M4"], m4[:]) || !bytes.Equal(got["M5"], m5[:]) {
		t.Fatalf("LoadKey: %v; want the document's M4/M5", got)
	}
}
