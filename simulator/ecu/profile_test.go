package ecu

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
)

// The rules of the diagnostic profile (simulator/ecu/PROFILE.md), one test each, and the legal
// variants a Config can choose.

var getIDRequest = append([]byte{0x31, 0x01, 0xFD, 0x11}, make([]byte, 16)...)

// wrongKey is a sendKey with a key no seed gives (all 0xEE).
var wrongKey = append([]byte{0x27, 0x02}, bytes.Repeat([]byte{0xEE}, 16)...)

// do sends req and fails the test unless the ECU answers positively.
func do(t *testing.T, c *Client, req ...byte) []byte {
	t.Helper()
	resp, err := c.Do(ctxFor(t), req)
	if err != nil {
		t.Fatalf("% x: %v", req, err)
	}
	return resp
}

// TestSoftResetIsNotSupportedInAnySession: ECUReset supports hardReset (01) alone; softReset (03)
// and every other type answer 0x12 in every session, and change nothing.
func TestSoftResetIsNotSupportedInAnySession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{UID: she.UID{1}})
		c := r.client
		for _, session := range []byte{uds.DefaultSession, uds.ProgrammingSession, uds.ExtendedSession} {
			do(t, c, 0x10, session)
			for _, typ := range []byte{0x02, 0x03, 0x04, 0x05, 0x7F} {
				if nrc := nrcOf(t, c, 0x11, typ); nrc != uds.SubFunctionNotSupported {
					t.Errorf("session %02x, ECUReset %02x: NRC %v, want 0x12", session, typ, nrc)
				}
			}
			if session == uds.ExtendedSession { // still unlocked and in the session: nothing reset
				if err := c.Prepare(ctxFor(t), &DefaultSecurityKey); err != nil {
					t.Fatal(err)
				}
				nrcOf(t, c, 0x11, 0x03)
				do(t, c, getIDRequest...)
			}
			if resp := do(t, c, 0x11, 0x01); !bytes.Equal(resp, []byte{0x51, 0x01}) {
				t.Errorf("session %02x: hardReset answered % x", session, resp)
			}
		}
	})
}

// TestSubFunctionBeforeLength: for 0x10, 0x11 and 0x3E an unsupported sub-function is 0x12 even
// when the request is also too long (ISO 14229-1 checks the sub-function first); too short, or
// only too long, is 0x13.
func TestSubFunctionBeforeLength(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRig(t, Config{UID: she.UID{1}}).client
		for _, tc := range []struct {
			req  []byte
			want uds.NRC
		}{
			{[]byte{0x10, 0x04, 0x00}, uds.SubFunctionNotSupported},
			{[]byte{0x11, 0x03, 0x00}, uds.SubFunctionNotSupported},
			{[]byte{0x3E, 0x01, 0x00}, uds.SubFunctionNotSupported},
			{[]byte{0x10}, uds.IncorrectMessageLengthOrInvalidFormat},
			{[]byte{0x11}, uds.IncorrectMessageLengthOrInvalidFormat},
			{[]byte{0x3E}, uds.IncorrectMessageLengthOrInvalidFormat},
			{[]byte{0x10, 0x03, 0x00}, uds.IncorrectMessageLengthOrInvalidFormat},
			{[]byte{0x11, 0x01, 0x00}, uds.IncorrectMessageLengthOrInvalidFormat},
			{[]byte{0x3E, 0x00, 0x00}, uds.IncorrectMessageLengthOrInvalidFormat},
		} {
			if nrc := nrcOf(t, c, tc.req...); nrc != tc.want {
				t.Errorf("% x: NRC %v, want %v", tc.req, nrc, tc.want)
			}
		}
	})
}

// TestWrongKeyUsesUpTheSeed: after a wrong key (0x35) a second key without a new seed is 0x24;
// a correct key after a new seed unlocks and resets the count.
func TestWrongKeyUsesUpTheSeed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRig(t, Config{UID: she.UID{1}}).client
		do(t, c, 0x10, 0x03)
		seed := do(t, c, 0x27, 0x01)[2:]
		if nrc := nrcOf(t, c, wrongKey...); nrc != uds.InvalidKey {
			t.Fatalf("wrong key: %v", nrc)
		}
		right := independentCMAC(DefaultSecurityKey, seed)
		if nrc := nrcOf(t, c, append([]byte{0x27, 0x02}, right[:]...)...); nrc != uds.RequestSequenceError {
			t.Fatalf("key for the used-up seed: %v, want 0x24", nrc)
		}
		// Two wrong keys, a right one, then two wrong keys again: the count restarted, no 0x36.
		for i, want := range []uds.NRC{uds.InvalidKey, 0, uds.InvalidKey, uds.InvalidKey} {
			seed := do(t, c, 0x27, 0x01)[2:]
			if want == 0 {
				k := independentCMAC(DefaultSecurityKey, seed)
				do(t, c, append([]byte{0x27, 0x02}, k[:]...)...)
				do(t, c, 0x10, 0x02) // another session re-locks
				do(t, c, 0x10, 0x03)
				continue
			}
			if nrc := nrcOf(t, c, wrongKey...); nrc != want {
				t.Fatalf("key %d: %v, want %v", i, nrc, want)
			}
		}
	})
}

// TestSendKeyLength: a key of the wrong length is 0x13 whether or not a seed is pending (ISO
// 14229-1 checks the length before the sequence), and neither uses up the seed nor counts as a
// wrong key.
func TestSendKeyLength(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRig(t, Config{UID: she.UID{1}, MaxAttempts: 1}).client
		do(t, c, 0x10, 0x03)
		if nrc := nrcOf(t, c, 0x27, 0x02, 0x01); nrc != uds.IncorrectMessageLengthOrInvalidFormat {
			t.Fatalf("short key, no seed: %v, want 0x13", nrc)
		}
		seed := do(t, c, 0x27, 0x01)[2:]
		k := independentCMAC(DefaultSecurityKey, seed)
		for _, bad := range [][]byte{k[:15], append(k[:], 0)} {
			if nrc := nrcOf(t, c, append([]byte{0x27, 0x02}, bad...)...); nrc != uds.IncorrectMessageLengthOrInvalidFormat {
				t.Fatalf("key of %d bytes: %v, want 0x13", len(bad), nrc)
			}
		}
		do(t, c, append([]byte{0x27, 0x02}, k[:]...)...) // the seed still stands, no attempt counted
	})
}

// TestLockoutSurvivesECUReset: neither the count of wrong keys nor a running delay is reset by
// ECUReset.
func TestLockoutSurvivesECUReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRig(t, Config{UID: she.UID{1}, Lockout: 10 * time.Second}).client
		wrong := func() uds.NRC {
			do(t, c, 0x27, 0x01)
			return nrcOf(t, c, wrongKey...)
		}
		do(t, c, 0x10, 0x03)
		wrong()
		wrong()
		do(t, c, 0x11, 0x01)
		do(t, c, 0x10, 0x03)
		if nrc := wrong(); nrc != uds.ExceededNumberOfAttempts {
			t.Fatalf("third wrong key, the first two before a reset: %v, want 0x36", nrc)
		}
		do(t, c, 0x11, 0x01)
		do(t, c, 0x10, 0x03)
		if nrc := nrcOf(t, c, 0x27, 0x01); nrc != uds.RequiredTimeDelayNotExpired {
			t.Fatalf("seed after a reset during the delay: %v, want 0x37", nrc)
		}
		time.Sleep(10 * time.Second)
		do(t, c, 0x10, 0x03) // S3 ran out meanwhile
		if err := c.Prepare(ctxFor(t), &DefaultSecurityKey); err != nil {
			t.Fatalf("unlock after the delay: %v", err)
		}
	})
}

// TestSeedLength: the seed has the configured length, the key is AES-CMAC over it, and the seed
// while unlocked is all-zero of the same length; a length beyond 1–32 is refused.
func TestSeedLength(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, n := range []int{1, 4, 16, 32} {
			c := newRig(t, Config{UID: she.UID{1}, SeedLength: n}).client
			do(t, c, 0x10, 0x03)
			resp := do(t, c, 0x27, 0x01)
			if len(resp) != 2+n || bytes.Equal(resp[2:], make([]byte, n)) {
				t.Fatalf("seed length %d: answered % x", n, resp)
			}
			k := independentCMAC(DefaultSecurityKey, resp[2:])
			do(t, c, append([]byte{0x27, 0x02}, k[:]...)...)
			if resp := do(t, c, 0x27, 0x01); !bytes.Equal(resp, append([]byte{0x67, 0x01}, make([]byte, n)...)) {
				t.Fatalf("seed length %d, seed while unlocked: % x", n, resp)
			}
			do(t, c, getIDRequest...)
		}
	})
	for _, n := range []int{-1, 33} {
		if _, err := New(Config{UID: she.UID{1}, SeedLength: n}, nil); err == nil {
			t.Errorf("seed length %d accepted", n)
		}
	}
}

// TestSessionRequestRelocks: a change to another session always re-locks; a request for the
// active session keeps the unlock, or re-locks with RelockSameSession.
func TestSessionRequestRelocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, relock := range []bool{false, true} {
			c := newRig(t, Config{UID: she.UID{1}, RelockSameSession: relock}).client
			if err := c.Prepare(ctxFor(t), &DefaultSecurityKey); err != nil {
				t.Fatal(err)
			}
			do(t, c, 0x10, 0x03)
			_, err := c.Do(ctxFor(t), getIDRequest)
			if locked := err != nil; locked != relock {
				t.Errorf("RelockSameSession %v: after the same session again, GetID: %v", relock, err)
			}
			if err := c.Prepare(ctxFor(t), &DefaultSecurityKey); err != nil {
				t.Fatal(err)
			}
			do(t, c, 0x10, 0x02)
			do(t, c, 0x10, 0x03)
			if nrc := nrcOf(t, c, getIDRequest...); nrc != uds.SecurityAccessDenied {
				t.Errorf("RelockSameSession %v: after another session, GetID: %v, want 0x33", relock, nrc)
			}
		}
	})
}

// TestPadding: the ECU's frames are padded with 0xCC by default, with the configured byte, or not
// at all; a tester reads every choice.
func TestPadding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, tc := range []struct {
			padding Padding
			want    []byte         // the positive answer to 10 03, as its single frame
			client  []isotp.Option // the tester's padding: the ECU reads any
		}{
			{Padding{}, []byte{0x06, 0x50, 0x03, 0x00, 0x32, 0x01, 0xF4, 0xCC}, nil},
			{PadWith(0x55), []byte{0x06, 0x50, 0x03, 0x00, 0x32, 0x01, 0xF4, 0x55}, []isotp.Option{isotp.WithoutPadding()}},
			{PadWith(0x00), []byte{0x06, 0x50, 0x03, 0x00, 0x32, 0x01, 0xF4, 0x00}, []isotp.Option{isotp.WithPadding(0xAA)}},
			{NoPadding, []byte{0x06, 0x50, 0x03, 0x00, 0x32, 0x01, 0xF4}, []isotp.Option{isotp.WithoutPadding()}},
		} {
			h := vcan.NewHub()
			tap := h.Connect(vcan.ExactID(DefaultResponseID, false))
			f, err := StartFleet(context.Background(), HubDialer(h), Config{UID: she.UID{1}, Padding: tc.padding}, 1)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Dial(HubDialer(h), DefaultRequestID, DefaultResponseID, tc.client...)
			if err != nil {
				t.Fatal(err)
			}
			do(t, c, 0x10, 0x03)
			frames := tap.ReceiveFor(10 * time.Millisecond)
			if len(frames) != 1 || !bytes.Equal(frames[0].Frame.Data[:frames[0].Frame.Length], tc.want) {
				t.Errorf("padding %q: frames %v, want % x", tc.padding, frames, tc.want)
			}
			// A multi-frame answer (GetID) reaches the tester whatever the padding.
			do(t, c, 0x10, 0x03)
			if err := c.Prepare(ctxFor(t), &DefaultSecurityKey); err != nil {
				t.Fatal(err)
			}
			if id, err := c.GetID(ctxFor(t), [16]byte{}); err != nil || id.UID != FleetUID(she.UID{1}, 0) {
				t.Errorf("padding %q: GetID %+v, %v", tc.padding, id, err)
			}
			c.Close()
			f.Stop()
			h.Close()
		}
	})
}

// TestParsePadding: the --padding flag's values.
func TestParsePadding(t *testing.T) {
	for in, want := range map[string]Padding{"": {}, "none": NoPadding, "NONE": NoPadding, "cc": PadWith(0xCC), "0x55": PadWith(0x55), "00": PadWith(0)} {
		if got, err := ParsePadding(in); err != nil || got != want {
			t.Errorf("ParsePadding(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"1cc", "x", "-1", "0x"} {
		if _, err := ParsePadding(in); err == nil {
			t.Errorf("ParsePadding(%q) accepted", in)
		}
	}
}

// TestRNGInitAtBoot: with RNGInitAtBoot the SREG after power-on, and after every ECUReset, is
// 0x3E (RND_INIT with the secure boot bits); without it 0x1E. GetID's MAC covers the SREG it
// returns.
func TestRNGInitAtBoot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		master := [16]byte{0x4D}
		for _, tc := range []struct {
			rng  bool
			sreg she.Status
		}{{false, 0x1E}, {true, 0x3E}} {
			c := newRig(t, Config{UID: she.UID{1}, RNGInitAtBoot: tc.rng, InitialMasterKey: &master}).client
			for range 2 {
				if s, err := c.Status(ctxFor(t)); err != nil || s != tc.sreg {
					t.Fatalf("RNGInitAtBoot %v: SREG %#02x, %v; want %#02x", tc.rng, byte(s), err, byte(tc.sreg))
				}
				if err := c.Prepare(ctxFor(t), &DefaultSecurityKey); err != nil {
					t.Fatal(err)
				}
				challenge := [16]byte{7}
				id, err := c.GetID(ctxFor(t), challenge)
				msg := append(append(challenge[:], id.UID[:]...), byte(tc.sreg))
				if err != nil || id.SREG != tc.sreg || id.MAC != independentCMAC(master, msg) {
					t.Fatalf("RNGInitAtBoot %v: GetID %+v, %v", tc.rng, id, err)
				}
				do(t, c, 0x11, 0x01)
			}
		}
	})
}

// TestAnnouncedTiming: the 0x10 answer announces the configured P2 (ms) and P2* (10 ms units), and
// the client takes them from StartSession.
func TestAnnouncedTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newRig(t, Config{UID: she.UID{1}, P2: 80 * time.Millisecond, P2Star: 3 * time.Second}).client
		if resp := do(t, c, 0x10, 0x03); !bytes.Equal(resp, []byte{0x50, 0x03, 0x00, 0x50, 0x01, 0x2C}) {
			t.Fatalf("announced % x, want 50 03 00 50 01 2c", resp)
		}
		if err := c.StartSession(ctxFor(t), uds.ExtendedSession); err != nil {
			t.Fatal(err)
		}
		if p2, p2s := c.Timing(); p2 != 80*time.Millisecond || p2s != 3*time.Second {
			t.Fatalf("client timing P2 %v, P2* %v", p2, p2s)
		}
	})
}
