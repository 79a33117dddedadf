package ecu

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/uds/profile"
	"go.einride.tech/can"
)

// functionalProfile is the kit's default profile with the OBD functional request ID 0x7DF.
func functionalProfile(t *testing.T) *profile.Profile {
	t.Helper()
	data, err := os.ReadFile("../../vcan/uds/profile/builtin/shekit-default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "  response_id: 0x7E8\n", "  response_id: 0x7E8\n  functional_id: 0x7DF\n", 1)
	p, err := profile.Parse("functional.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if ids := p.Addressing.IDs(); !ids.HasFunctional || ids.Functional != 0x7DF {
		t.Fatalf("test profile: functional %v %#x", ids.HasFunctional, ids.Functional)
	}
	return p
}

// classicFrame is an 11-bit frame with data.
func classicFrame(id uint32, data ...byte) can.Frame {
	f := can.Frame{ID: id, Length: uint8(len(data))}
	copy(f.Data[:], data)
	return f
}

// payloads returns the data of the frames tap receives within d (simulated time).
func payloads(tap *vcan.Node, d time.Duration) [][]byte {
	var out [][]byte
	for _, tf := range tap.ReceiveFor(d) {
		out = append(out, tf.Frame.Data[:tf.Frame.Length])
	}
	return out
}

// TestFunctionalRequests: an ECU whose profile declares a functional ID answers the single
// frames sent to it on its physical response ID, suppresses the positive answer when asked,
// withholds NRC 0x11 (and the other NRCs ISO 14229-1 withholds from functional requests) and
// ignores a functional first frame; physical requests are answered as before.
func TestFunctionalRequests(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := vcan.NewHub()
		defer h.Close()
		tap := h.Connect(vcan.ExactID(0x7E8, false))
		f, err := StartFleet(context.Background(), HubDialer(h), Config{UID: she.UID{1}, DiagProfile: functionalProfile(t)}, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Stop()
		tester := h.Connect(vcan.ExactID(0x7E8, false))
		pad := func(b ...byte) []byte { return append(b, bytes.Repeat([]byte{0xCC}, 8-len(b))...) }
		for _, tc := range []struct {
			name  string
			frame can.Frame
			want  [][]byte
		}{
			{"functional 3E 00", classicFrame(0x7DF, 0x02, 0x3E, 0x00, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC), [][]byte{pad(0x02, 0x7E, 0x00)}},
			{"functional 3E 80 (suppressed)", classicFrame(0x7DF, 0x02, 0x3E, 0x80), nil},
			{"functional unknown service", classicFrame(0x7DF, 0x02, 0x85, 0x01), nil},
			{"functional sub-function not supported", classicFrame(0x7DF, 0x02, 0x3E, 0x05), nil},
			{"functional too short (0x13 is sent)", classicFrame(0x7DF, 0x01, 0x10), [][]byte{pad(0x03, 0x7F, 0x10, 0x13)}},
			{"functional first frame", classicFrame(0x7DF, 0x10, 0x08, 0x3E, 0x00, 0x00, 0x00, 0x00, 0x00), nil},
			{"physical 3E 00", classicFrame(0x7E0, 0x02, 0x3E, 0x00), [][]byte{pad(0x02, 0x7E, 0x00)}},
			{"physical unknown service", classicFrame(0x7E0, 0x02, 0x85, 0x01), [][]byte{pad(0x03, 0x7F, 0x85, 0x11)}},
		} {
			if err := tester.Send(context.Background(), tc.frame); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			got := payloads(tap, 100*time.Millisecond)
			if len(got) != len(tc.want) {
				t.Fatalf("%s: frames % X, want % X", tc.name, got, tc.want)
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Fatalf("%s: frame % X, want % X", tc.name, got[i], tc.want[i])
				}
			}
		}
	})
}

// TestFunctionalFleet: one functional TesterPresent is answered by every ECU of a fleet, each on
// its own response ID.
func TestFunctionalFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 3
		h := vcan.NewHub()
		defer h.Close()
		tap := h.Connect(vcan.Filter{ID: 0x7E8, Mask: 0x7F8})
		f, err := StartFleet(context.Background(), HubDialer(h), Config{UID: she.UID{1}, DiagProfile: functionalProfile(t)}, n)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Stop()
		tester := h.Connect()
		if err := tester.Send(context.Background(), classicFrame(0x7DF, 0x02, 0x3E, 0x00)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		seen := map[uint32]bool{}
		for _, tf := range tap.ReceiveFor(100 * time.Millisecond) {
			if !bytes.Equal(tf.Frame.Data[:3], []byte{0x02, 0x7E, 0x00}) || seen[tf.Frame.ID] {
				t.Fatalf("answer %v", tf.Frame)
			}
			seen[tf.Frame.ID] = true
		}
		for i := range uint32(n) {
			if !seen[0x7E8+i] {
				t.Errorf("no answer on %#x (answers on %v)", 0x7E8+i, seen)
			}
		}
	})
}

// TestFunctionalExtendedAddressing: with extended addressing, a functional request carries the
// functional address byte; one with the ECU's own address byte on the functional ID is a
// physical request, and one with another byte is not for this ECU.
func TestFunctionalExtendedAddressing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := builtinProfile(t, "extended-seedkey")
		h := vcan.NewHub()
		defer h.Close()
		tap := h.Connect(vcan.ExactID(0x640, false))
		f, err := StartFleet(context.Background(), HubDialer(h), Config{UID: she.UID{1}, DiagProfile: p}, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Stop()
		tester := h.Connect()
		for _, tc := range []struct {
			name string
			data []byte
			want [][]byte
		}{
			{"functional address 0xDF", []byte{0xDF, 0x02, 0x3E, 0x00}, [][]byte{{0xF1, 0x02, 0x7E, 0x00}}},
			{"functional unknown service", []byte{0xDF, 0x02, 0x85, 0x01}, nil},
			{"another address", []byte{0xDE, 0x02, 0x3E, 0x00}, nil},
			{"physical unknown service", []byte{0x40, 0x02, 0x85, 0x01}, [][]byte{{0xF1, 0x03, 0x7F, 0x85, 0x11}}},
		} {
			if err := tester.Send(context.Background(), classicFrame(0x6F1, tc.data...)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			got := payloads(tap, 100*time.Millisecond)
			if len(got) != len(tc.want) || len(got) == 1 && !bytes.Equal(got[0], tc.want[0]) {
				t.Fatalf("%s: frames % X, want % X", tc.name, got, tc.want)
			}
		}
	})
}

// TestFunctionalNormalFixedCANFD: under normal-fixed addressing on CAN FD (did-canfd), one
// functional request to 0x18DB33F1 reaches both ECUs of a fleet (ECU addresses 0x4A and 0x4B),
// each answering on 0x18DAF1<its address> in a CAN FD frame padded with 0xAA.
func TestFunctionalNormalFixedCANFD(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := vcan.NewHub()
		defer h.Close()
		tap := h.Connect(vcan.Filter{ID: 0x18DAF100, Mask: 0x1FFFFF00, Extended: true})
		f, err := StartFleet(context.Background(), HubDialer(h), Config{UID: she.UID{1}, DiagProfile: builtinProfile(t, "did-canfd")}, 2)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Stop()
		tester := h.Connect()
		req := vcan.Frame{ID: 0x18DB33F1, Extended: true, FD: true, BRS: true, Length: 8, Data: [64]byte{0x02, 0x3E, 0x00, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}}
		if err := tester.SendFrame(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		want := []byte{0x02, 0x7E, 0x00, 0xAA, 0xAA, 0xAA, 0xAA, 0xAA}
		seen := map[uint32]bool{}
		for _, tf := range tap.ReceiveFor(100 * time.Millisecond) {
			if w := tf.Wire; !w.FD || !bytes.Equal(w.Payload(), want) || seen[w.ID] {
				t.Fatalf("answer %08X FD=%v % X, want % X", w.ID, w.FD, w.Payload(), want)
			}
			seen[tf.Wire.ID] = true
		}
		if len(seen) != 2 || !seen[0x18DAF14A] || !seen[0x18DAF14B] {
			t.Fatalf("answers on %v, want 0x18DAF14A and 0x18DAF14B", seen)
		}
	})
}

// TestFunctionalIDSameAsPhysical: a functional ID equal to the physical request ID (normal
// addressing, no address byte to tell them apart) is not listened to twice: a request on it is
// answered once, as a physical one (NRC 0x11 included).
func TestFunctionalIDSameAsPhysical(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data, err := os.ReadFile("../../vcan/uds/profile/builtin/shekit-default.yaml")
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Replace(string(data), "  response_id: 0x7E8\n", "  response_id: 0x7E8\n  functional_id: 0x7E0\n", 1)
		p, err := profile.Parse("same.yaml", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		h := vcan.NewHub()
		defer h.Close()
		tap := h.Connect(vcan.ExactID(0x7E8, false))
		f, err := StartFleet(context.Background(), HubDialer(h), Config{UID: she.UID{1}, DiagProfile: p}, 1)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Stop()
		tester := h.Connect()
		for _, tc := range [][2][]byte{
			{{0x02, 0x3E, 0x00}, {0x02, 0x7E, 0x00, 0xCC, 0xCC, 0xCC, 0xCC, 0xCC}},
			{{0x02, 0x85, 0x01}, {0x03, 0x7F, 0x85, 0x11, 0xCC, 0xCC, 0xCC, 0xCC}},
		} {
			if err := tester.Send(context.Background(), classicFrame(0x7E0, tc[0]...)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if got := payloads(tap, 100*time.Millisecond); len(got) != 1 || !bytes.Equal(got[0], tc[1]) {
				t.Fatalf("% X: frames % X, want one: % X", tc[0], got, tc[1])
			}
		}
	})
}
