package ecu

import (
	"bytes"
	"context"
	"crypto/aes"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aead/cmac"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vectors"
)

// rig is one ECU and a client on an in-memory bus, with a tap.
type rig struct {
	hub    *vcan.Hub
	ecu    *ECU
	client *Client
	tap    *vcan.Node
}

func newRig(t testing.TB, cfg Config, hubOpts ...vcan.HubOption) *rig {
	t.Helper()
	h := vcan.NewHub(hubOpts...)
	r := &rig{hub: h, tap: h.Connect()}
	et, err := Transport(HubDialer(h), DefaultResponseID, DefaultRequestID)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(cfg, et)
	if err != nil {
		t.Fatal(err)
	}
	r.ecu = e
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.Serve(ctx); close(done) }()
	if r.client, err = Dial(HubDialer(h), DefaultRequestID, DefaultResponseID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-done; r.client.Close(); et.Close(); h.Close() })
	return r
}

func ctxFor(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// docVector reads a memory update of she-reference.json.
func docVector(t testing.TB, id string) (she.UID, [16]byte, [32]byte, [16]byte, [32]byte, [16]byte, [16]byte) {
	t.Helper()
	u, err := vectors.LoadMemoryUpdate(id)
	if err != nil {
		t.Fatal(err)
	}
	return u.UID, u.M1, u.M2, u.M3, u.M4, u.M5, u.NewKey
}

func independentCMAC(key [16]byte, msg []byte) [16]byte {
	b, _ := aes.NewCipher(key[:])
	tag, _ := cmac.Sum(msg, b, 16)
	return [16]byte(tag)
}

// TestDocumentExamplesThroughCAN: the OEM document's MasterECUKey and SecOCKey examples, sent to a
// factory-fresh ECU over UDS, ISO-TP and the in-memory bus, give the document's M4 and M5; the
// stored keys then serve GetID, VerifyMAC and GenerateMAC.
func TestDocumentExamplesThroughCAN(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := ctxFor(t)
		uid, m1, m2, m3, m4, m5, master := docVector(t, "oem-doc-a-master-ecu-key")
		r := newRig(t, Config{UID: uid})
		if err := r.client.Prepare(ctx, &DefaultSecurityKey); err != nil {
			t.Fatal(err)
		}
		if got, err := r.client.UID(ctx); err != nil || got != uid {
			t.Fatalf("UID %v, %v", got, err)
		}
		res, err := r.client.LoadKey(ctx, m1, m2, m3)
		if err != nil || res.ERC != she.NoError || res.M4 != m4 || res.M5 != m5 {
			t.Fatalf("LoadKey: %+v, %v; want the document's M4/M5", res, err)
		}
		if p := she.VerifyM4M5(master, res.M4, res.M5); !p.M5Valid || p.Counter != 1 {
			t.Fatalf("proof %+v", p)
		}
		// Replayed: the counter is no longer greater.
		if res, err := r.client.LoadKey(ctx, m1, m2, m3); err != nil || res.ERC != she.KeyUpdateError {
			t.Fatalf("replayed LoadKey: %+v, %v", res, err)
		}
		challenge := [16]byte{0xf6, 0xda}
		id, err := r.client.GetID(ctx, challenge)
		if err != nil || id.ERC != she.NoError || id.UID != uid {
			t.Fatalf("GetID: %+v, %v", id, err)
		}
		msg := append(append(challenge[:], uid[:]...), byte(id.SREG))
		if id.MAC != independentCMAC(master, msg) {
			t.Fatal("GetID MAC is not CMAC(MASTER_ECU_KEY, challenge|UID|SREG)")
		}

		// SecOCKey example (d) on a second, fresh ECU: KEY_2 authorized by the empty master key.
		uid, m1, m2, m3, m4, m5, secoc := docVector(t, "oem-doc-d-secoc-key")
		r = newRig(t, Config{UID: uid})
		if err := r.client.Prepare(ctx, &DefaultSecurityKey); err != nil {
			t.Fatal(err)
		}
		res, err = r.client.LoadKey(ctx, m1, m2, m3)
		if err != nil || res.ERC != she.NoError || res.M4 != m4 || res.M5 != m5 {
			t.Fatalf("SecOC LoadKey: %+v, %v", res, err)
		}
		text := [16]byte([]byte("SecOC PDU 000001"))
		mac := independentCMAC(secoc, text[:])
		if erc, ok, err := r.client.VerifyMAC(ctx, 5, text, mac); err != nil || erc != she.NoError || !ok {
			t.Fatalf("VerifyMAC: %v %v %v", erc, ok, err)
		}
		mac[0] ^= 1
		if erc, ok, err := r.client.VerifyMAC(ctx, 5, text, mac); err != nil || erc != she.NoError || ok {
			t.Fatalf("VerifyMAC of a wrong MAC: %v %v %v", erc, ok, err)
		}
		if erc, got, err := r.client.GenerateMAC(ctx, 5, text); err != nil || erc != she.NoError || got != independentCMAC(secoc, text[:]) {
			t.Fatalf("GenerateMAC: %v %x %v", erc, got, err)
		}
		if erc, _, err := r.client.GenerateMAC(ctx, 6, text); err != nil || erc != she.KeyEmpty {
			t.Fatalf("GenerateMAC with an empty slot: %v %v", erc, err)
		}
	})
}

// nrcOf sends req and returns the NRC of the negative response.
func nrcOf(t *testing.T, c *Client, req ...byte) uds.NRC {
	t.Helper()
	_, err := c.Do(ctxFor(t), req)
	var nr *uds.NegativeResponseError
	if !errors.As(err, &nr) {
		t.Fatalf("% x: %v, want a negative response", req, err)
	}
	return nr.NRC
}

func TestServicesAndNegativeResponses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := ctxFor(t)
		uid, m1, m2, m3, _, _, _ := docVector(t, "oem-doc-a-master-ecu-key")
		r := newRig(t, Config{UID: uid, Lockout: 100 * time.Millisecond})
		c := r.client
		check := func(name string, got, want uds.NRC) {
			t.Helper()
			if got != want {
				t.Errorf("%s: NRC %v, want %v", name, got, want)
			}
		}
		check("unknown service", nrcOf(t, c, 0x85, 0x01), uds.ServiceNotSupported)
		check("session 04", nrcOf(t, c, 0x10, 0x04), uds.SubFunctionNotSupported)
		check("session request too long", nrcOf(t, c, 0x10, 0x03, 0x00), uds.IncorrectMessageLengthOrInvalidFormat)
		check("security in the default session", nrcOf(t, c, 0x27, 0x01), uds.ServiceNotSupportedInActiveSession)
		check("routine in the default session", nrcOf(t, c, 0x31, 0x01, 0xFD, 0x11), uds.ServiceNotSupportedInActiveSession)
		check("soft reset", nrcOf(t, c, 0x11, 0x03), uds.SubFunctionNotSupported)
		check("reset type 02", nrcOf(t, c, 0x11, 0x02), uds.SubFunctionNotSupported)
		check("unknown DID", nrcOf(t, c, 0x22, 0xF1, 0x90), uds.RequestOutOfRange)
		check("DID cut short", nrcOf(t, c, 0x22, 0xFD), uds.IncorrectMessageLengthOrInvalidFormat)
		check("tester present 01", nrcOf(t, c, 0x3E, 0x01), uds.SubFunctionNotSupported)
		check("tester present too long", nrcOf(t, c, 0x3E, 0x00, 0x00), uds.IncorrectMessageLengthOrInvalidFormat)

		resp, err := c.Do(ctx, []byte{0x22, 0xF1, 0x8C, 0xFD, 0x00, 0xFD, 0x01})
		want := append(append(append([]byte{0x62, 0xF1, 0x8C}, []byte(r.ecu.Config().Serial)...), 0xFD, 0x00), uid[:]...)
		if err != nil || !bytes.HasPrefix(resp, want) || len(resp) != len(want)+3 {
			t.Fatalf("RDBI of three DIDs: % x, %v", resp, err)
		}
		if err := c.TesterPresent(ctx, false); err != nil {
			t.Fatal(err)
		}
		if err := c.TesterPresent(ctx, true); err != nil {
			t.Fatal(err)
		}

		if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
			t.Fatal(err)
		}
		if p2, p2s := c.Timing(); p2 != 50*time.Millisecond || p2s != 5*time.Second {
			t.Fatalf("announced P2 %v, P2* %v", p2, p2s)
		}
		check("routine while locked", nrcOf(t, c, 0x31, 0x01, 0xFD, 0x11), uds.SecurityAccessDenied)
		check("key before seed", nrcOf(t, c, append([]byte{0x27, 0x02}, make([]byte, 16)...)...), uds.RequestSequenceError)
		check("security level 05", nrcOf(t, c, 0x27, 0x05), uds.SubFunctionNotSupported)
		for attempt := 1; attempt <= 3; attempt++ {
			if _, err := c.Do(ctx, []byte{0x27, 0x01}); err != nil {
				t.Fatal(err)
			}
			want := uds.InvalidKey
			if attempt == 3 {
				want = uds.ExceededNumberOfAttempts
			}
			check("wrong key", nrcOf(t, c, append([]byte{0x27, 0x02}, make([]byte, 16)...)...), want)
		}
		check("seed during the lockout", nrcOf(t, c, 0x27, 0x01), uds.RequiredTimeDelayNotExpired)
		time.Sleep(120 * time.Millisecond)
		if _, err := c.Do(ctx, []byte{0x27, 0x01}); err != nil {
			t.Fatal(err)
		}
		check("key of the wrong length", nrcOf(t, c, 0x27, 0x02, 0x01), uds.IncorrectMessageLengthOrInvalidFormat)
		if err := c.Prepare(ctx, &DefaultSecurityKey); err != nil {
			t.Fatal(err)
		}
		if resp, err := c.Do(ctx, []byte{0x27, 0x01}); err != nil || !bytes.Equal(resp[2:], make([]byte, 16)) {
			t.Fatalf("seed when unlocked: % x, %v", resp, err)
		}
		check("unknown routine", nrcOf(t, c, 0x31, 0x01, 0xFD, 0x20), uds.RequestOutOfRange)
		check("stop routine", nrcOf(t, c, 0x31, 0x02, 0xFD, 0x11), uds.SubFunctionNotSupported)
		check("routine too short", nrcOf(t, c, 0x31, 0x01, 0xFD), uds.IncorrectMessageLengthOrInvalidFormat)
		check("GetID of 15 bytes", nrcOf(t, c, append([]byte{0x31, 0x01, 0xFD, 0x11}, make([]byte, 15)...)...), uds.IncorrectMessageLengthOrInvalidFormat)
		check("KeyID 16", nrcOf(t, c, append([]byte{0x31, 0x01, 0xFD, 0x13, 0x10}, make([]byte, 16)...)...), uds.RequestOutOfRange)

		// The key store busy with another command: conditions not correct.
		slow := newRig(t, Config{UID: uid, NoSecurity: true, Faults: Faults{SlowNVM: 200 * time.Millisecond}})
		busy := make(chan struct{})
		go func() { slow.ecu.Engine().LoadKey(m1, m2, m3); close(busy) }()
		defer func() { <-busy }()
		time.Sleep(50 * time.Millisecond)
		if resp := slow.ecu.Handle([]byte{0x10, 0x03}, func() {}); !uds.IsPositive(resp, 0x10) {
			t.Fatalf("session: % x", resp)
		}
		resp = slow.ecu.Handle(append([]byte{0x31, 0x01, 0xFD, 0x11}, make([]byte, 16)...), func() {})
		if _, nrc, ok := uds.ParseNegative(resp); !ok || nrc != uds.ConditionsNotCorrect {
			t.Fatalf("GetID while the SHE is busy: % x", resp)
		}

		// ECUReset: answered, then a power cycle: default session, locked, RAM key gone.
		r.ecu.Engine().LoadPlainKey([16]byte{1})
		if err := c.Reset(ctx, 0x01); err != nil {
			t.Fatal(err)
		}
		check("routine after reset", nrcOf(t, c, 0x31, 0x01, 0xFD, 0x11), uds.ServiceNotSupportedInActiveSession)
		if erc := r.ecu.Engine().EncryptECB(she.RAMKey, make([]byte, 16), make([]byte, 16)); erc != she.KeyEmpty {
			t.Fatalf("RAM key after ECUReset: %v", erc)
		}
		if s, err := c.Status(ctx); err != nil || s&she.StatusBootOK == 0 {
			t.Fatalf("SREG after reset: %08b, %v (secure boot re-run)", s, err)
		}
	})
}

func TestSessionTimeoutS3(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{UID: she.UID{1}, NoSecurity: true, S3: 60 * time.Millisecond})
		ctx := ctxFor(t)
		if err := r.client.StartSession(ctx, uds.ExtendedSession); err != nil {
			t.Fatal(err)
		}
		for range 3 { // tester present keeps the session
			time.Sleep(30 * time.Millisecond)
			if err := r.client.TesterPresent(ctx, true); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := r.client.GetID(ctx, [16]byte{}); err != nil {
			t.Fatalf("GetID within S3: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
		if nrc := nrcOf(t, r.client, append([]byte{0x31, 0x01, 0xFD, 0x11}, make([]byte, 16)...)...); nrc != uds.ServiceNotSupportedInActiveSession {
			t.Fatalf("after S3: %v", nrc)
		}
	})
}

func TestSuppressPositiveResponse(t *testing.T) {
	r := newRig(t, Config{UID: she.UID{1}})
	if resp := r.ecu.Handle([]byte{0x10, 0x83}, func() {}); resp != nil {
		t.Fatalf("suppressed session change answered % x", resp)
	}
	if resp := r.ecu.Handle([]byte{0x10, 0x84}, func() {}); !bytes.Equal(resp, []byte{0x7F, 0x10, 0x12}) {
		t.Fatalf("negative response with the suppress bit: % x", resp)
	}
}

// TestSuppressedAnswerAfterResponsePending: a routine with the suppress bit that needed a
// response pending sends its final positive answer after all (ISO 14229-1); one that did not
// sends none.
func TestSuppressedAnswerAfterResponsePending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		uid, m1, m2, m3, m4, _, _ := docVector(t, "oem-doc-a-master-ecu-key")
		r := newRig(t, Config{UID: uid, NoSecurity: true, Faults: Faults{SlowNVM: 250 * time.Millisecond}})
		if resp := r.ecu.Handle([]byte{0x10, 0x03}, func() {}); !uds.IsPositive(resp, 0x10) {
			t.Fatalf("session: % x", resp)
		}
		pending := 0
		req := append(append(append([]byte{0x31, 0x81, 0xFD, 0x10}, m1[:]...), m2[:]...), m3[:]...)
		resp := r.ecu.Handle(req, func() { pending++ })
		want := append([]byte{0x71, 0x01, 0xFD, 0x10, 0x00}, m4[:]...)
		if pending == 0 || len(resp) != 5+48 || !bytes.Equal(resp[:5+32], want) {
			t.Fatalf("LoadKey with the suppress bit and a slow store: %d response pending, then % x; want %x…", pending, resp, want)
		}
		pending = 0
		if resp := r.ecu.Handle(append([]byte{0x31, 0x81, 0xFD, 0x11}, make([]byte, 16)...), func() { pending++ }); resp != nil || pending != 0 {
			t.Fatalf("GetID with the suppress bit: %d response pending, then % x; want neither", pending, resp)
		}
	})
}

func countPending(frames []vcan.TimedFrame) int {
	n := 0
	for _, tf := range frames {
		d := tf.Frame.Data[:tf.Frame.Length]
		if tf.Frame.ID == DefaultResponseID && len(d) >= 4 && bytes.Equal(d[:4], []byte{0x03, 0x7F, 0x31, 0x78}) {
			n++
		}
	}
	return n
}

// TestResponsePending: a slow key store makes the ECU answer 0x78 before P2 runs out, repeated
// within P2*; the client waits P2* after each and gets the result.
func TestResponsePending(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		uid, m1, m2, m3, m4, _, _ := docVector(t, "oem-doc-a-master-ecu-key")
		r := newRig(t, Config{UID: uid, NoSecurity: true, P2Star: 200 * time.Millisecond,
			Faults: Faults{SlowNVM: 250 * time.Millisecond}})
		ctx := ctxFor(t)
		if err := r.client.StartSession(ctx, uds.ExtendedSession); err != nil {
			t.Fatal(err)
		}
		res, err := r.client.LoadKey(ctx, m1, m2, m3)
		if err != nil || res.M4 != m4 {
			t.Fatalf("LoadKey with a slow store: %+v, %v", res, err)
		}
		if n := countPending(r.tap.ReceiveFor(20 * time.Millisecond)); n < 2 {
			t.Fatalf("%d response pending frames, want several", n)
		}
	})
}

func TestFaults(t *testing.T) {
	ctx := context.Background() // each subtest runs in its own bubble of simulated time
	uid, m1, m2, m3, m4, m5, master := docVector(t, "oem-doc-a-master-ecu-key")
	prepare := func(t *testing.T, f Faults) *rig {
		r := newRig(t, Config{UID: uid, NoSecurity: true, Faults: f})
		if err := r.client.StartSession(ctx, uds.ExtendedSession); err != nil {
			t.Fatal(err)
		}
		return r
	}
	t.Run("wrong proof", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			res, err := prepare(t, Faults{WrongProof: true}).client.LoadKey(ctx, m1, m2, m3)
			if err != nil || res.M4 != m4 || res.M5 == m5 || she.VerifyM4M5(master, res.M4, res.M5).M5Valid {
				t.Fatalf("%+v, %v", res, err)
			}
		})
	})
	t.Run("no counter check", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// KEY_1 at counter 5, then counter 3, both authorized by the empty master key.
			key1 := func(counter uint32) she.Messages {
				m, _ := she.BuildMessages(she.KeyUpdate{UID: uid, KeyID: she.Key1, AuthID: she.MasterECUKey,
					NewKey: [16]byte{byte(counter)}, Counter: counter})
				return m
			}
			for _, tc := range []struct {
				faults Faults
				want   she.ERC
			}{{Faults{}, she.KeyUpdateError}, {Faults{NoCounterCheck: true}, she.NoError}} {
				r := prepare(t, tc.faults)
				m := key1(5)
				if res, err := r.client.LoadKey(ctx, m.M1, m.M2, m.M3); err != nil || res.ERC != she.NoError {
					t.Fatalf("counter 5: %+v, %v", res, err)
				}
				m = key1(3)
				if res, err := r.client.LoadKey(ctx, m.M1, m.M2, m.M3); err != nil || res.ERC != tc.want {
					t.Fatalf("%+v: counter 3 after 5: %+v, %v; want %v", tc.faults, res, err, tc.want)
				}
			}
		})
	})
	t.Run("wildcard accepted", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := prepare(t, Faults{AcceptWildcard: true})
			r.client.LoadKey(ctx, m1, m2, m3) // master stored with WILDCARD set (flags 01101)
			w, _ := she.BuildMessages(she.KeyUpdate{UID: she.WildcardUID, KeyID: she.MasterECUKey, AuthID: she.MasterECUKey,
				AuthKey: master, NewKey: [16]byte{9}, Counter: 2, Flags: 0x0D})
			if res, err := r.client.LoadKey(ctx, w.M1, w.M2, w.M3); err != nil || res.ERC != she.NoError {
				t.Fatalf("%+v, %v", res, err)
			}
		})
	})
	t.Run("NVM failure", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, err := prepare(t, Faults{NVMFailure: true}).client.LoadKey(ctx, m1, m2, m3)
			var nr *uds.NegativeResponseError
			if !errors.As(err, &nr) || nr.NRC != uds.GeneralProgrammingFailure {
				t.Fatalf("%v", err)
			}
		})
	})
	t.Run("silent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, Config{UID: uid, Faults: Faults{Silent: true}})
			start := time.Now()
			if err := r.client.StartSession(ctx, uds.ExtendedSession); !errors.Is(err, uds.ErrTimeout) {
				t.Fatalf("%v", err)
			}
			if d := time.Since(start); d != 100*time.Millisecond { // simulated time: exact
				t.Fatalf("gave up after %v, want P2 and its margin", d)
			}
		})
	})
	t.Run("late answers", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRig(t, Config{UID: uid, NoSecurity: true, Faults: Faults{LateAnswers: 300 * time.Millisecond}})
			start := time.Now()
			if err := r.client.StartSession(ctx, uds.ExtendedSession); !errors.Is(err, uds.ErrTimeout) {
				t.Fatalf("first session request: %v", err)
			}
			// Asked again: the late answer is discarded when it comes (at 300 ms), the repeated
			// request answered at once.
			if err := r.client.StartSession(ctx, uds.ExtendedSession); err != nil {
				t.Fatalf("repeated: %v", err)
			}
			if d := time.Since(start); d != 300*time.Millisecond {
				t.Fatalf("answered after %v, want 300ms", d)
			}
			// Another kind of request is late again.
			if _, err := r.client.UID(ctx); !errors.Is(err, uds.ErrTimeout) {
				t.Fatalf("UID: %v", err)
			}
			if st := r.client.Stats(); st.Timeouts != 2 || st.Late != 1 {
				t.Fatalf("client stats %+v", st)
			}
		})
	})
	t.Run("boot failure", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := prepare(t, Faults{BootFailure: true})
			if res, _ := r.client.LoadKey(ctx, m1, m2, m3); res.ERC != she.NoError {
				t.Fatalf("LoadKey: %v", res.ERC)
			}
			// The master key carries BOOT_PROTECTION: GetID still works, but SREG shows no BOOT_OK.
			if s, err := r.client.Status(ctx); err != nil || s&she.StatusBootOK != 0 || s&she.StatusBootFinished == 0 {
				t.Fatalf("SREG %08b, %v", s, err)
			}
		})
	})
}

func TestKeyStorePersistsAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := ctxFor(t)
		dir := t.TempDir()
		uid, m1, m2, m3, _, _, _ := docVector(t, "oem-doc-a-master-ecu-key")
		r := newRig(t, Config{UID: uid, StoreDir: dir, NoSecurity: true})
		r.client.StartSession(ctx, uds.ExtendedSession)
		if res, err := r.client.LoadKey(ctx, m1, m2, m3); err != nil || res.ERC != she.NoError {
			t.Fatalf("%+v %v", res, err)
		}
		r2 := newRig(t, Config{UID: uid, StoreDir: dir, NoSecurity: true})
		r2.client.StartSession(ctx, uds.ExtendedSession)
		if res, err := r2.client.LoadKey(ctx, m1, m2, m3); err != nil || res.ERC != she.KeyUpdateError {
			t.Fatalf("replay after restart: %+v %v", res, err)
		}
		if _, err := New(Config{UID: she.UID{7}, StoreDir: dir}, nil); err != nil {
			t.Fatalf("second ECU in the same directory: %v", err)
		}
	})
}

func TestFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, n := range []int{3, 20} {
			h := vcan.NewHub()
			base := Config{UID: she.UID{0x00, 0x01, 0x00, 0x1d}, NoSecurity: true}
			f, err := StartFleet(context.Background(), HubDialer(h), base, n)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[she.UID]bool{}
			for i := range n {
				req, resp, ext := FleetIDs(i, n)
				if ext != (n > 8) || ext != Extended(req, resp) {
					t.Fatalf("fleet of %d uses extended IDs: %v", n, ext)
				}
				c, err := Dial(HubDialer(h), req, resp)
				if err != nil {
					t.Fatal(err)
				}
				ctx := ctxFor(t)
				if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
					t.Fatalf("ECU %d: %v", i, err)
				}
				id, err := c.GetID(ctx, [16]byte{byte(i)})
				if err != nil || id.ERC != she.NoError || id.UID != FleetUID(base.UID, i) || seen[id.UID] {
					t.Fatalf("ECU %d: %+v, %v", i, id, err)
				}
				if id.UID[0] != 0x00 || id.UID[1] != 0x01 || id.UID[3] != 0x1d {
					t.Fatalf("ECU %d: EcuType and SupplierID lost: %v", i, id.UID)
				}
				seen[id.UID] = true
				c.Close()
			}
			if err := f.Stop(); err != nil {
				t.Fatal(err)
			}
			h.Close()
		}
	})
}

// TestInitialMasterKey: an ECU from a factory that sets MASTER_ECU_KEY refuses the document's
// first master key (authorized by the all-zero key) and accepts one authorized by its own.
func TestInitialMasterKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := ctxFor(t)
		uid, m1, m2, m3, _, _, _ := docVector(t, "oem-doc-a-master-ecu-key")
		initial := [16]byte{0x1A}
		r := newRig(t, Config{UID: uid, NoSecurity: true, InitialMasterKey: &initial})
		r.client.StartSession(ctx, uds.ExtendedSession)
		if res, err := r.client.LoadKey(ctx, m1, m2, m3); err != nil || res.ERC != she.KeyUpdateError {
			t.Fatalf("zero-key update: %+v, %v", res, err)
		}
		m, _ := she.BuildMessages(she.KeyUpdate{UID: uid, KeyID: she.MasterECUKey, AuthID: she.MasterECUKey,
			AuthKey: initial, NewKey: [16]byte{2}, Counter: 1, Flags: 0x0D})
		if res, err := r.client.LoadKey(ctx, m.M1, m.M2, m.M3); err != nil || res.ERC != she.NoError {
			t.Fatalf("update authorized by the initial key: %+v, %v", res, err)
		}
	})
}
