package ecu

import (
	"bytes"
	"context"
	"crypto/aes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aead/cmac"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// diagRig is one ECU serving a diagnostic profile and a tiny tester on an in-memory bus: a UDS
// client on an ISO-TP transport set up from the profile by hand, and a tap.
type diagRig struct {
	p      *profile.Profile
	ids    profile.CANIDs
	client *uds.Client
	tap    *vcan.Node
}

func newDiagRig(t *testing.T, p *profile.Profile, cfg Config) *diagRig {
	t.Helper()
	cfg.DiagProfile = p
	h := vcan.NewHub()
	ids := p.Addressing.IDs()
	tap := h.Connect()
	et, err := Transport(HubDialer(h), ids.Response, ids.Request, cfg.TransportOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	tt := isotp.New(h.Connect(vcan.ExactID(ids.Response, ids.Extended)), ids.Request, ids.Response, testerOptions(p)...)
	t.Cleanup(func() { h.Close() })
	r := serveDiag(t, cfg, et, tt)
	r.tap = tap
	return r
}

// testerOptions are the tester's ISO-TP options for profile p, written here apart from the code
// under test.
func testerOptions(p *profile.Profile) []isotp.Option {
	ids := p.Addressing.IDs()
	var opts []isotp.Option
	if ids.Extended {
		opts = append(opts, isotp.WithExtendedIDs())
	}
	if p.Link.FD {
		opts = append(opts, isotp.WithCANFD(p.Link.TxDL, p.Link.BRS))
	}
	if ids.RequestPrefix != nil {
		opts = append(opts, isotp.WithAddressExtension(ids.RequestPrefix[0], ids.ResponsePrefix[0]))
	}
	return opts
}

// serveDiag starts the ECU of cfg on transport et and a UDS client on tt.
func serveDiag(t *testing.T, cfg Config, et, tt isotp.Transport, opts ...uds.ClientOption) *diagRig {
	t.Helper()
	p := cfg.DiagProfile
	e, err := New(cfg, et)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; tt.Close(); et.Close() })
	return &diagRig{p: p, ids: p.Addressing.IDs(), client: uds.NewClient(tt, opts...)}
}

// testerKey is the key a tester computes for seed, written here apart from the code under test:
// AES-CMAC under the profile's key, or the sample script's XOR algorithm.
func testerKey(t *testing.T, p *profile.Profile, seed []byte) []byte {
	if p.Security.Algorithm == profile.AlgorithmAESCMAC {
		b, _ := aes.NewCipher(p.Security.Key)
		k, _ := cmac.Sum(seed, b, 16)
		return k
	}
	if p.Security.Command[0] != "./seedkey-xor.sh" {
		t.Fatalf("no tester key for %v", p.Security.Command)
	}
	mask := []byte{0x5A, 0xC3, 0x96, 0x3C}
	key := make([]byte, len(seed))
	for i, s := range seed {
		key[i] = (s ^ mask[i%4]) + byte(i)
	}
	return key
}

// run enters op's session, unlocks when op needs it, and runs op with in.
func (r *diagRig) run(t *testing.T, name profile.OpName, in profile.Values) profile.Values {
	t.Helper()
	ctx := ctxFor(t)
	op := r.p.Operations[name]
	if op == nil {
		t.Fatalf("%s has no %s", r.p.Name, name)
	}
	if op.Session != uds.DefaultSession {
		if err := r.client.StartSession(ctx, op.Session); err != nil {
			t.Fatalf("%s: session %#02x: %v", name, op.Session, err)
		}
	}
	if op.Security {
		key := func(seed []byte) []byte {
			if len(seed) != r.p.Security.SeedLength {
				t.Errorf("seed of %d bytes, want %d", len(seed), r.p.Security.SeedLength)
			}
			return testerKey(t, r.p, seed)
		}
		if err := r.client.Unlock(ctx, r.p.Security.Level, key); err != nil {
			t.Fatalf("%s: SecurityAccess %#02x: %v", name, r.p.Security.Level, err)
		}
	}
	out, err := op.Run(ctx, r.client.Do, in)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

func builtinProfile(t *testing.T, name string) *profile.Profile {
	t.Helper()
	p, err := profile.Find(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBuiltinProfilesEndToEnd drives an ECU of each built-in profile through session, security,
// ReadUID, LoadKey (the document's examples: M4/M5 as published), GetID, VerifyMAC,
// GenerateMAC and KeyCheck, and a replayed LoadKey whose SHE error comes back as the profile says.
func TestBuiltinProfilesEndToEnd(t *testing.T) {
	for _, name := range []string{"shekit-default", "did-canfd", "extended-seedkey"} {
		t.Run(name, func(t *testing.T) {
			p := builtinProfile(t, name)
			uid, m1, m2, m3, m4, m5, master := docVector(t, "oem-doc-a-master-ecu-key")
			r := newDiagRig(t, p, Config{UID: uid})
			if got := r.run(t, profile.ReadUID, nil); !bytes.Equal(got["UID"], uid[:]) {
				t.Fatalf("ReadUID: % X, want %s", got["UID"], uid)
			}
			load := profile.Values{"M1": m1[:], "M2": m2[:], "M3": m3[:]}
			got := r.run(t, profile.LoadKey, load)
			if erc, _ := got.ERC(); erc != 0 || !bytes.Equal(got["M4"], m4[:]) || !bytes.Equal(got["M5"], m5[:]) {
				t.Fatalf("LoadKey: %v; want the document's M4/M5", got)
			}
			if erc, _ := r.run(t, profile.LoadKey, load).ERC(); erc != profile.ERC(she.KeyUpdateError) {
				t.Fatalf("replayed LoadKey: %v, want ERC_KEY_UPDATE_ERROR", erc)
			}
			challenge := []byte("challenge 012345")
			id := r.run(t, profile.GetID, profile.Values{"Challenge": challenge})
			sreg := id["SREG"]
			if !bytes.Equal(id["UID"], uid[:]) || len(sreg) != 1 ||
				!bytes.Equal(id["MAC"], mac16(independentCMAC(master, append(append(challenge, uid[:]...), sreg...)))) {
				t.Fatalf("GetID: %v", id)
			}
			checkMACs(t, p)
			checkFrames(t, r)
		})
	}
}

func mac16(m [16]byte) []byte { return m[:] }

// checkMACs loads the document's SecOC key into slot 5 of a fresh ECU and checks VerifyMAC,
// GenerateMAC and KeyCheck against an independent CMAC.
func checkMACs(t *testing.T, p *profile.Profile) {
	uid, m1, m2, m3, _, _, secoc := docVector(t, "oem-doc-d-secoc-key")
	r := newDiagRig(t, p, Config{UID: uid})
	if erc, _ := r.run(t, profile.LoadKey, profile.Values{"M1": m1[:], "M2": m2[:], "M3": m3[:]}).ERC(); erc != 0 {
		t.Fatalf("LoadKey of the SecOC key: %v", erc)
	}
	text := []byte("SecOC PDU 000001")
	mac := independentCMAC(secoc, text)
	if got := r.run(t, profile.VerifyMAC, profile.Values{"KeyID": {5}, "Message": text, "MAC": mac[:]}); !bytes.Equal(got["Status"], []byte{0}) {
		t.Fatalf("VerifyMAC: %v, want Status 00", got)
	}
	wrong := bytes.Clone(mac[:])
	wrong[0] ^= 1
	if got := r.run(t, profile.VerifyMAC, profile.Values{"KeyID": {5}, "Message": text, "MAC": wrong}); !bytes.Equal(got["Status"], []byte{1}) {
		t.Fatalf("VerifyMAC of a wrong MAC: %v, want Status 01", got)
	}
	if got := r.run(t, profile.GenerateMAC, profile.Values{"KeyID": {5}, "Message": text}); !bytes.Equal(got["MAC"], mac[:]) {
		t.Fatalf("GenerateMAC: %v", got)
	}
	if erc, _ := r.run(t, profile.GenerateMAC, profile.Values{"KeyID": {6}, "Message": text}).ERC(); erc != profile.ERC(she.KeyEmpty) {
		t.Fatalf("GenerateMAC with an empty slot: %v, want ERC_KEY_EMPTY", erc)
	}
	// KeyCheck: the tester's MAC under the key it expects (Status back), or the ECU's MAC over
	// the challenge (MAC back), compared here.
	kc := profile.Values{"KeyID": {5}, "Message": text, "MAC": mac[:], "Challenge": text}
	got := r.run(t, profile.KeyCheck, kc)
	if s, ok := got["Status"]; ok && !bytes.Equal(s, []byte{0}) || !ok && !bytes.Equal(got["MAC"], mac[:]) {
		t.Fatalf("KeyCheck: %v", got)
	}
}

// checkFrames: every frame the tester and the ECU sent has the profile's CAN IDs, 29-bit or
// 11-bit, CAN FD or classic, and the address byte of extended addressing.
func checkFrames(t *testing.T, r *diagRig) {
	frames := r.tap.ReceiveFor(20 * time.Millisecond)
	if len(frames) == 0 {
		t.Fatal("no frames on the bus")
	}
	longest := 0
	for _, tf := range frames {
		f := tf.Wire
		prefix := r.ids.RequestPrefix
		if f.ID == r.ids.Response {
			prefix = r.ids.ResponsePrefix
		} else if f.ID != r.ids.Request {
			t.Fatalf("frame with ID %#x, want %#x or %#x", f.ID, r.ids.Request, r.ids.Response)
		}
		if f.Extended != r.ids.Extended || f.FD != r.p.Link.FD || f.BRS != r.p.Link.BRS {
			t.Fatalf("frame %#x: extended %v FD %v BRS %v", f.ID, f.Extended, f.FD, f.BRS)
		}
		if prefix != nil && f.Data[0] != prefix[0] {
			t.Fatalf("frame %#x starts with %#02x, want the address byte %#02x", f.ID, f.Data[0], prefix[0])
		}
		longest = max(longest, int(f.Length))
	}
	if longest != r.p.Link.TxDL {
		t.Fatalf("longest frame %d bytes, want TX_DL %d", longest, r.p.Link.TxDL)
	}
}

// TestBuiltinProfilesSHEErrorAsNRC: a key store that fails (ERC_MEMORY_FAILURE) comes back as
// NRC 0x72 under every built-in profile's errors.nrc, which the tester reads back as that ERC.
func TestBuiltinProfilesSHEErrorAsNRC(t *testing.T) {
	for _, name := range []string{"shekit-default", "did-canfd", "extended-seedkey"} {
		t.Run(name, func(t *testing.T) {
			p := builtinProfile(t, name)
			uid, m1, m2, m3, _, _, _ := docVector(t, "oem-doc-a-master-ecu-key")
			r := newDiagRig(t, p, Config{UID: uid, Faults: Faults{NVMFailure: true}})
			op := p.Operations[profile.LoadKey]
			var nrcs []uds.NRC
			exchange := func(ctx context.Context, req []byte) ([]byte, error) {
				resp, err := r.client.Do(ctx, req)
				var nre *uds.NegativeResponseError
				if errors.As(err, &nre) {
					nrcs = append(nrcs, nre.NRC)
				}
				return resp, err
			}
			if err := r.client.StartSession(ctxFor(t), op.Session); err != nil {
				t.Fatal(err)
			}
			if err := r.client.Unlock(ctxFor(t), p.Security.Level, func(s []byte) []byte { return testerKey(t, p, s) }); err != nil {
				t.Fatal(err)
			}
			got, err := op.Run(ctxFor(t), exchange, profile.Values{"M1": m1[:], "M2": m2[:], "M3": m3[:]})
			if erc, _ := got.ERC(); err != nil || erc != profile.ERC(she.MemoryFailure) {
				t.Fatalf("LoadKey: %v, %v; want ERC_MEMORY_FAILURE", got, err)
			}
			if len(nrcs) != 1 || nrcs[0] != uds.GeneralProgrammingFailure {
				t.Fatalf("negative answers %v, want one 0x72", nrcs)
			}
		})
	}
}

// TestDiagProfileNegativeResponses: the order of checks and the order of an operation's steps
// under the non-default built-in profiles, request by request (requests and answers by hand).
func TestDiagProfileNegativeResponses(t *testing.T) {
	zeros := func(n int) string { return string(bytes.Repeat([]byte(" 00"), n)) }
	for _, tc := range []struct {
		profile    string
		noSecurity bool
		script     [][2]string // request, answer
	}{
		{"did-canfd", false, [][2]string{
			{"2E 0E 10" + zeros(66), "7F 2E 7F"}, // no write in the default session
			{"22 0E 11", "7F 22 31"},             // LoadKey's read is not a default-session DID
			{"10 03", "50 03 00 32 01 F4"},
			{"2E 0E 10" + zeros(66), "7F 2E 33"}, // locked
		}},
		{"did-canfd", true, [][2]string{
			{"10 03", "50 03 00 32 01 F4"},
			{"22 0E 11", "7F 22 24"},             // nothing written yet
			{"2E 12 34 00", "7F 2E 31"},          // not a DID of the profile
			{"2E 0E 10" + zeros(65), "7F 2E 13"}, // one byte short
			{"2E 0E 10" + zeros(66), "7F 2E 31"}, // CRC-16 of zeros is not 0000
		}},
		{"extended-seedkey", true, [][2]string{
			{"10 02", "50 02 00 32 01 F4"},
			{"36 01" + zeros(64), "7F 36 24"}, // no download requested
			{"37", "7F 37 24"},
			{"34 00 24 00 FF 00 00 00 40", "74 20 00 42"},
			{"37", "7F 37 24"}, // the transfer comes first
			{"10 03", "50 03 00 32 01 F4"},
			{"31 03 02 02", "7F 31 24"}, // results before start
			{"31 01 02 02", "7F 31 13"}, // no challenge
			{"31 02 02 02", "7F 31 12"}, // stopRoutine is not in the profile
		}},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			e, err := New(Config{UID: she.UID{1}, DiagProfile: builtinProfile(t, tc.profile), NoSecurity: tc.noSecurity}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.script {
				req, want := hexOf(t, s[0]), hexOf(t, s[1])
				if got := e.Handle(req, func() {}); !bytes.Equal(got, want) {
					t.Fatalf("% X: answered % X, want % X", req, got, want)
				}
			}
		})
	}
}

func hexOf(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDiagProfileTiming: DiagnosticSessionControl announces the profile's P2 and P2* and enters
// a session of the profile's own, and the profile's SecurityAccess level and seed length apply.
func TestDiagProfileTiming(t *testing.T) {
	data, err := os.ReadFile("../../vcan/uds/profile/builtin/did-canfd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(strings.Replace(string(data), "p2: 50ms", "p2: 30ms", 1), "p2_star: 5000ms", "p2_star: 2000ms", 1)
	text = strings.Replace(text, "seed_length: 16", "seed_length: 7", 1)
	text = strings.Replace(text, "  GetID:\n    session: extended", "  GetID:\n    session: 0x60", 1)
	p, err := profile.Parse("timing.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{UID: she.UID{1}, DiagProfile: p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range [][2]string{
		{"10 03", "50 03 00 1E 00 C8"},
		{"27 01", "7F 27 12"}, // level 0x01 is not the profile's
		{"10 61", "7F 10 12"}, // no operation of the profile runs in session 0x61
		{"10 60", "50 60 00 1E 00 C8"},
	} {
		if got := e.Handle(hexOf(t, s[0]), func() {}); !bytes.Equal(got, hexOf(t, s[1])) {
			t.Fatalf("%s: answered % X, want %s", s[0], got, s[1])
		}
	}
	if got := e.Handle([]byte{0x27, 0x11}, func() {}); len(got) != 2+7 || got[0] != 0x67 || got[1] != 0x11 {
		t.Fatalf("requestSeed 0x11: % X, want 67 11 and 7 bytes of seed", got)
	}
}

// TestDiagProfileReadAgain: the answer of an operation's last step that sends nothing of its own
// may be read again (the same answer) until another operation starts.
func TestDiagProfileReadAgain(t *testing.T) {
	e, err := New(Config{UID: she.UID{1}, DiagProfile: builtinProfile(t, "extended-seedkey"), NoSecurity: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := " 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F"
	send := func(req string) []byte { return e.Handle(hexOf(t, req), func() {}) }
	for _, s := range [][2]string{
		{"10 03", "50 03 00 32 01 F4"},
		{"31 03 02 02", "7F 31 24"}, // GetID's results before its start
		{"31 01 02 02" + data, "71 01 02 02"},
	} {
		if got := send(s[0]); !bytes.Equal(got, hexOf(t, s[1])) {
			t.Fatalf("%s: answered % X, want %s", s[0], got, s[1])
		}
	}
	first := send("31 03 02 02")
	if len(first) != 4+1+15+1+16 || !bytes.HasPrefix(first, hexOf(t, "71 03 02 02 00")) {
		t.Fatalf("GetID results: % X", first)
	}
	if again := send("31 03 02 02"); !bytes.Equal(again, first) {
		t.Fatalf("read again: % X, want % X", again, first)
	}
	for _, s := range [][2]string{
		{"31 01 02 04 05" + data, "71 01 02 04 04"}, // GenerateMAC on an empty slot: ERC_KEY_EMPTY
		{"31 03 02 02", "7F 31 24"},                 // GetID is over
	} {
		if got := send(s[0]); !bytes.Equal(got, hexOf(t, s[1])) {
			t.Fatalf("%s: answered % X, want %s", s[0], got, s[1])
		}
	}
}
