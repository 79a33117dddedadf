package ecu

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// scriptedECU is a transport whose peer answers each request with answer(req) at once (nil: no
// answer), and records the requests.
type scriptedECU struct {
	mu     sync.Mutex
	sent   [][]byte
	answer func(req []byte) []byte
	out    chan []byte
}

func newScriptedECU(answer func(req []byte) []byte) *scriptedECU {
	return &scriptedECU{answer: answer, out: make(chan []byte, 16)}
}

func (s *scriptedECU) Send(_ context.Context, msg []byte) error {
	s.mu.Lock()
	s.sent = append(s.sent, bytes.Clone(msg))
	s.mu.Unlock()
	if a := s.answer(msg); a != nil {
		s.out <- a
	}
	return nil
}

func (s *scriptedECU) Receive(ctx context.Context) ([]byte, error) {
	select {
	case m := <-s.out:
		return m, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *scriptedECU) Close() error { return nil }

// requests returns the requests sent, in hex, cut to n bytes each.
func (s *scriptedECU) requests(n int) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.sent {
		out = append(out, hex.EncodeToString(r[:min(n, len(r))]))
	}
	return out
}

// h decodes hex, spaces allowed.
func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func testerProfile(t *testing.T, name string) *profile.Profile {
	t.Helper()
	p, err := profile.Find(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	testSeed = h("01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10")
	testM4M5 = bytes.Repeat([]byte{0x44}, 48)
)

// defaultAnswers answers the default profile's requests as a good ECU does.
func defaultAnswers(req []byte) []byte {
	switch {
	case req[0] == 0x10:
		return []byte{0x50, req[1], 0x00, 0x32, 0x01, 0xF4}
	case bytes.Equal(req, h("27 01")):
		return append(h("67 01"), testSeed...)
	case req[0] == 0x27 && req[1] == 0x02:
		return h("67 02")
	case bytes.Equal(req, h("22 FD 00")):
		return append(h("62 FD 00"), bytes.Repeat([]byte{0x11}, 15)...)
	case bytes.HasPrefix(req, h("31 01 FD 10")):
		return append(h("71 01 FD 10 00"), testM4M5...)
	}
	return uds.Negative(req[0], uds.ServiceNotSupported)
}

func TestDefaultProfileClientSendsTheKitsBytes(t *testing.T) {
	ecu := newScriptedECU(defaultAnswers)
	c := NewClient(ecu)
	ctx := ctxFor(t)
	if err := c.Prepare(ctx, &DefaultSecurityKey); err != nil {
		t.Fatal(err)
	}
	if uid, err := c.UID(ctx); err != nil || uid != she.UID(bytes.Repeat([]byte{0x11}, 15)) {
		t.Fatalf("UID %x, %v", uid, err)
	}
	m1, m2, m3 := [16]byte{1}, [32]byte{2}, [16]byte{3}
	res, err := c.LoadKey(ctx, m1, m2, m3)
	if err != nil || res.ERC != she.NoError || res.M4 != [32]byte(testM4M5[:32]) || res.M5 != [16]byte(testM4M5[32:]) {
		t.Fatalf("LoadKey %+v, %v", res, err)
	}
	key := she.CMAC(DefaultSecurityKey, testSeed)
	want := []string{"1003", "2701", "2702" + hex.EncodeToString(key[:]), "22fd00",
		"3101fd10" + hex.EncodeToString(m1[:]) + hex.EncodeToString(m2[:]) + hex.EncodeToString(m3[:])}
	if got := ecu.requests(100); !slices.Equal(got, want) {
		t.Fatalf("requests\n%q\nwant\n%q", got, want)
	}
}

func TestNegativeAnswerStaysANegativeResponse(t *testing.T) {
	// The default profile says NRC 0x72 carries ERC_MEMORY_FAILURE; the client still reports the
	// refusal as the NRC (a station may try again), not as an ERC.
	ecu := newScriptedECU(func(req []byte) []byte {
		if req[0] == 0x31 {
			return h("7F 31 72")
		}
		return defaultAnswers(req)
	})
	c := NewClient(ecu)
	res, err := c.LoadKey(ctxFor(t), [16]byte{}, [32]byte{}, [16]byte{})
	var nr *uds.NegativeResponseError
	if !errors.As(err, &nr) || nr.NRC != uds.GeneralProgrammingFailure || res.ERC != 0 {
		t.Fatalf("%+v, %v; want NRC 0x72", res, err)
	}
}

func TestERCInTheAnswer(t *testing.T) {
	ecu := newScriptedECU(func(req []byte) []byte {
		if req[0] == 0x31 {
			return h("71 01 FD 10 06") // ERC_KEY_WRITE_PROTECTED, nothing after it
		}
		return defaultAnswers(req)
	})
	res, err := NewClient(ecu).LoadKey(ctxFor(t), [16]byte{}, [32]byte{}, [16]byte{})
	if err != nil || res.ERC != she.ERC(6) {
		t.Fatalf("%+v, %v; want ERC 06", res, err)
	}
}

func TestCallerTakesSessionsOver(t *testing.T) {
	// After Prepare the caller returns to the default session itself: LoadKey is sent as it is
	// (a test of the ECU expects the refusal), not after a new session and SecurityAccess.
	ecu := newScriptedECU(defaultAnswers)
	c := NewClient(ecu)
	ctx := ctxFor(t)
	if err := c.Prepare(ctx, &DefaultSecurityKey); err != nil {
		t.Fatal(err)
	}
	if err := c.StartSession(ctx, uds.DefaultSession); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LoadKey(ctx, [16]byte{}, [32]byte{}, [16]byte{}); err != nil {
		t.Fatal(err)
	}
	got := ecu.requests(2)
	if want := []string{"1003", "2701", "2702", "1001", "3101"}; !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
}

// seedKeyXOR is the built-in seedkey-xor.sh by hand: key[i] = ((seed[i] ^ mask[i%4]) + i) & 0xFF.
const seedKeyXOR = "5bc2973b" // seed 01 02 03 04

// extendedAnswers answers the extended-seedkey profile's requests as a good ECU does.
func extendedAnswers(req []byte) []byte {
	switch {
	case req[0] == 0x10:
		return []byte{0x50, req[1], 0x00, 0x32, 0x01, 0xF4}
	case bytes.Equal(req, h("27 03")):
		return h("67 03 01 02 03 04")
	case bytes.Equal(req, h("27 04"+seedKeyXOR)):
		return h("67 04")
	case req[0] == 0x27:
		return h("7F 27 35")
	case bytes.Equal(req, h("34 00 24 00 FF 00 00 00 40")):
		return h("74 20 00 42")
	case bytes.HasPrefix(req, h("36 01")) && len(req) == 66:
		return h("76 01")
	case bytes.Equal(req, h("37")):
		return append(h("77 00"), testM4M5...)
	case bytes.HasPrefix(req, h("31 01 02 02")):
		return h("71 01 02 02")
	case bytes.Equal(req, h("31 03 02 02")):
		return append(h("71 03 02 02 00"), bytes.Repeat([]byte{0x22}, 15+1+16)...)
	}
	return uds.Negative(req[0], uds.RequestOutOfRange)
}

func TestExtendedSeedKeyProfileKeepsEachOperationInItsSession(t *testing.T) {
	ecu := newScriptedECU(extendedAnswers)
	c := NewProfileClient(ecu, testerProfile(t, "extended-seedkey"))
	t.Cleanup(func() { c.Close() })
	ctx := ctxFor(t)
	if err := c.Prepare(ctx, &DefaultSecurityKey); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if res, err := c.LoadKey(ctx, [16]byte{1}, [32]byte{2}, [16]byte{3}); err != nil || res.M5 != [16]byte(testM4M5[32:]) {
			t.Fatalf("LoadKey %+v, %v", res, err)
		}
	}
	if res, err := c.GetID(ctx, [16]byte{9}); err != nil || res.SREG != 0x22 || res.MAC != [16]byte(bytes.Repeat([]byte{0x22}, 16)) {
		t.Fatalf("GetID %+v, %v", res, err)
	}
	if _, err := c.LoadKey(ctx, [16]byte{1}, [32]byte{2}, [16]byte{3}); err != nil {
		t.Fatal(err)
	}
	unlock := []string{"2703", "2704" + seedKeyXOR}
	download := []string{"340024", "360101", "37"} // M1 starts with 01
	want := slices.Concat([]string{"1002"}, unlock, download, download,
		[]string{"1003"}, unlock, []string{"31010202", "31030202"},
		[]string{"1002"}, unlock, download)
	if got := ecu.requests(3); !slices.Equal(got, cut(want, 3)) {
		t.Fatalf("requests\n%q\nwant\n%q", got, cut(want, 3))
	}
}

func cut(s []string, n int) []string {
	out := slices.Clone(s)
	for i := range out {
		out[i] = out[i][:min(len(out[i]), 2*n)]
	}
	return out
}

func TestWithoutSecurityNoSeedIsRequested(t *testing.T) {
	ecu := newScriptedECU(extendedAnswers)
	c := NewProfileClient(ecu, testerProfile(t, "extended-seedkey"))
	if err := c.Prepare(ctxFor(t), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetID(ctxFor(t), [16]byte{}); err != nil {
		t.Fatal(err)
	}
	if got, want := ecu.requests(4), []string{"1002", "1003", "31010202", "31030202"}; !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
}

func TestDIDProfileKeyCheck(t *testing.T) {
	slot := [16]byte{0x5A}
	// The read returns the MAC of the last challenge written under the slot's key.
	var last []byte
	ecu := newScriptedECU(func(req []byte) []byte {
		switch {
		case bytes.HasPrefix(req, h("2E 0E 50")) && len(req) == 20:
			last = bytes.Clone(req[4:])
			return h("6E 0E 50")
		case bytes.Equal(req, h("22 0E 51")):
			mac := she.CMAC(slot, last)
			return append(h("62 0E 51 00"), mac[:]...)
		}
		return uds.Negative(req[0], uds.RequestOutOfRange)
	})
	c := NewProfileClient(ecu, testerProfile(t, "did-canfd"))
	ctx := ctxFor(t)
	if erc, ok, err := c.KeyCheck(ctx, 4, slot); err != nil || erc != 0 || !ok {
		t.Fatalf("the slot's own key: %v %v %v", erc, ok, err)
	}
	if _, ok, err := c.KeyCheck(ctx, 4, [16]byte{0x5B}); err != nil || ok {
		t.Fatalf("another key: matches %v, %v", ok, err)
	}
	if got := ecu.requests(4); len(got) != 4 || got[0] != "2e0e5004" || got[1] != "220e51" {
		t.Fatalf("requests %q", got)
	}
}

func TestOperationNotInProfile(t *testing.T) {
	p, err := profile.Parse("mini.yaml", []byte(`version: 1
name: mini
addressing: {mode: normal, id_bits: 11, request_id: 0x700, response_id: 0x708}
operations:
  ReadUID:
    steps: [{service: read-did, did: 0x0100, response: [UID]}]
  LoadKey:
    steps: [{service: routine-start, rid: 0x0101, request: [M1, M2, M3], response: [ERC, M4, M5]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	ecu := newScriptedECU(func([]byte) []byte { return nil })
	c := NewProfileClient(ecu, p)
	ctx := ctxFor(t)
	if _, err := c.GetID(ctx, [16]byte{}); !errors.Is(err, ErrNotInProfile) {
		t.Fatalf("GetID: %v", err)
	}
	if _, _, err := c.KeyCheck(ctx, 1, [16]byte{}); !errors.Is(err, ErrNotInProfile) {
		t.Fatalf("KeyCheck: %v", err)
	}
	if len(ecu.requests(1)) != 0 {
		t.Fatalf("sent %q", ecu.requests(8))
	}
}

func TestDialProfileAddressesTheECU(t *testing.T) {
	for _, c := range []struct {
		profile string
		id      uint32
		ext, fd bool
		data    string // the first frame of 22 xx xx
		length  int
	}{
		{"shekit-default", 0x7E0, false, false, "0322fd00cccccccc", 8},
		{"did-canfd", 0x18DA4AF1, true, true, "03220e00aaaaaaaa", 8},
		{"extended-seedkey", 0x6F1, false, false, "40032202", 5},
	} {
		t.Run(c.profile, func(t *testing.T) {
			hub := vcan.NewHub()
			t.Cleanup(func() { hub.Close() })
			tap := hub.Connect()
			p := testerProfile(t, c.profile)
			cl, err := DialProfile(HubDialer(hub), p, p.Addressing.IDs())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cl.Close() })
			ctx, cancel := context.WithCancel(ctxFor(t))
			go cl.ReadDID(ctx, p.Operations[profile.ReadUID].Steps[0].ID)
			f, err := tap.ReceiveFrame(ctxFor(t))
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if f.ID != c.id || f.Extended != c.ext || f.FD != c.fd || int(f.Length) != c.length ||
				hex.EncodeToString(f.Data[:f.Length])[:len(c.data)] != c.data {
				t.Fatalf("frame %#x ext %v fd %v % x, want %#x ext %v fd %v %s", f.ID, f.Extended, f.FD, f.Data[:f.Length], c.id, c.ext, c.fd, c.data)
			}
		})
	}
}

// TestEachBuiltinProfileAgainstTheSimulatedECU: the OEM document's SecOCKey example through the
// client and the simulated ECU speaking each built-in profile: the document's M4 and M5, then
// GetID, KeyCheck, GenerateMAC and VerifyMAC with the new key.
func TestEachBuiltinProfileAgainstTheSimulatedECU(t *testing.T) {
	for _, p := range profile.Builtin() {
		t.Run(p.Name, func(t *testing.T) {
			ctx := ctxFor(t)
			uid, m1, m2, m3, m4, m5, secoc := docVector(t, "oem-doc-d-secoc-key")
			c := startProfileECU(t, p, Config{UID: uid})
			if err := c.Prepare(ctx, &DefaultSecurityKey); err != nil {
				t.Fatal(err)
			}
			if got, err := c.UID(ctx); err != nil || got != uid {
				t.Fatalf("UID %v, %v", got, err)
			}
			if res, err := c.LoadKey(ctx, m1, m2, m3); err != nil || res.ERC != she.NoError || res.M4 != m4 || res.M5 != m5 {
				t.Fatalf("LoadKey: %+v, %v; want the document's M4/M5", res, err)
			}
			if res, err := c.LoadKey(ctx, m1, m2, m3); err != nil || res.ERC != she.KeyUpdateError {
				t.Fatalf("replayed LoadKey: %+v, %v; want ERC_KEY_UPDATE_ERROR", res, err)
			}
			if id, err := c.GetID(ctx, [16]byte{0xf6}); err != nil || id.ERC != she.NoError || id.UID != uid {
				t.Fatalf("GetID: %+v, %v", id, err)
			}
			const slot = she.KeyID(5)
			if erc, ok, err := c.KeyCheck(ctx, slot, secoc); err != nil || erc != she.NoError || !ok {
				t.Fatalf("KeyCheck of the loaded key: %v %v %v", erc, ok, err)
			}
			if _, ok, err := c.KeyCheck(ctx, slot, [16]byte{1}); err != nil || ok {
				t.Fatalf("KeyCheck of another key: matches %v, %v", ok, err)
			}
			text := [16]byte([]byte("SecOC PDU 000001"))
			if erc, mac, err := c.GenerateMAC(ctx, slot, text); err != nil || erc != she.NoError || mac != independentCMAC(secoc, text[:]) {
				t.Fatalf("GenerateMAC: %v %x %v", erc, mac, err)
			}
			if erc, ok, err := c.VerifyMAC(ctx, slot, text, [16]byte{}); err != nil || erc != she.NoError || ok {
				t.Fatalf("VerifyMAC of a wrong MAC: %v %v %v", erc, ok, err)
			}
		})
	}
}

// startProfileECU starts a simulated ECU of cfg speaking profile p on a fresh bus and returns a
// client dialed with the profile.
func startProfileECU(t *testing.T, p *profile.Profile, cfg Config) *Client {
	hub := vcan.NewHub()
	ids := p.Addressing.IDs()
	et := isotp.New(hub.Connect(vcan.ExactID(ids.Request, ids.Extended)), ids.Response, ids.Request, DiagTransportOptions(p)...)
	cfg.DiagProfile = p
	e, err := New(cfg, et)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Serve(ctx); close(done) }()
	c, err := DialProfile(HubDialer(hub), p, ids)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done; c.Close(); et.Close(); hub.Close() })
	return c
}

func TestClientEntersTheSessionAnewWhenTheECULeftIt(t *testing.T) {
	// The ECU's session ended (S3) while the station talked to the KMS: the first LoadKey after
	// that is refused with NRC 0x7F; the client enters the session again and sends it once more.
	refused := false
	ecu := newScriptedECU(func(req []byte) []byte {
		if req[0] == 0x31 && !refused {
			refused = true
			return h("7F 31 7F")
		}
		return defaultAnswers(req)
	})
	c := NewClient(ecu)
	ctx := ctxFor(t)
	if err := c.Prepare(ctx, &DefaultSecurityKey); err != nil {
		t.Fatal(err)
	}
	if res, err := c.LoadKey(ctx, [16]byte{}, [32]byte{}, [16]byte{}); err != nil || res.ERC != she.NoError {
		t.Fatalf("LoadKey %+v, %v", res, err)
	}
	if got, want := ecu.requests(2), []string{"1003", "2701", "2702", "3101", "1003", "2701", "2702", "3101"}; !slices.Equal(got, want) {
		t.Fatalf("requests %q, want %q", got, want)
	}
	// Refused again right after entering anew: the refusal stands.
	ecu2 := newScriptedECU(func(req []byte) []byte {
		if req[0] == 0x31 {
			return h("7F 31 33")
		}
		return defaultAnswers(req)
	})
	c2 := NewClient(ecu2)
	if err := c2.Prepare(ctx, &DefaultSecurityKey); err != nil {
		t.Fatal(err)
	}
	var nr *uds.NegativeResponseError
	if _, err := c2.LoadKey(ctx, [16]byte{}, [32]byte{}, [16]byte{}); !errors.As(err, &nr) || nr.NRC != uds.SecurityAccessDenied {
		t.Fatalf("LoadKey: %v, want NRC 0x33", err)
	}
	if n := len(ecu2.requests(1)); n != 8 {
		t.Fatalf("%d requests, want 8 (one retry): %q", n, ecu2.requests(4))
	}
}
