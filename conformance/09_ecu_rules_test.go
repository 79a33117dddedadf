package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
	"github.com/shekit/shekit/vectors"
)

// ecuDeclaration is what the configuration declares of the ECU under test for the rules whose
// values an ECU may choose (README, diagnostic profile).
type ecuDeclaration struct {
	maxAttempts int           // the wrong SecurityAccess key in a row that is answered NRC 0x36
	lockout     time.Duration // the delay after it, seed requests answered NRC 0x37
	seedLength  int           // SecurityAccess seed length in bytes
	sacrificial she.KeyID     // a KEY_n slot the suite may write-protect for good; 0: none
}

// simLockout is the SecurityAccess delay of the simulated ECUs of CONF_CAN=mem unless
// CONF_ECU_LOCKOUT says otherwise: short, since one test waits it out.
const simLockout = 3 * time.Second

// ecuDeclaration reads CONF_ECU_MAX_ATTEMPTS, CONF_ECU_LOCKOUT, CONF_ECU_SEED_LENGTH and
// CONF_ECU_SACRIFICIAL_KEY_ID; those not given are the diagnostic profile's (CONF_DIAG_PROFILE).
// Simulated ECUs (CONF_CAN=mem) are built to the declaration and always have a sacrificial slot
// (KeyID 9) and a 3 s delay unless configured otherwise.
func (c *Config) ecuDeclaration() (ecuDeclaration, error) {
	d := ecuDeclaration{maxAttempts: 3, lockout: 10 * time.Second, seedLength: 16}
	p, err := c.diagProfile()
	if err != nil {
		return d, err
	}
	if s := p.Security; s.Algorithm != profile.AlgorithmNone {
		d.maxAttempts, d.lockout, d.seedLength = s.MaxAttempts, s.Delay, s.SeedLength
	}
	if c.CAN == "mem" {
		d.lockout, d.sacrificial = simLockout, 9
	}
	if c.ECUMaxAttempts != 0 {
		if c.ECUMaxAttempts < 1 || c.ECUMaxAttempts > 255 {
			return d, fmt.Errorf("CONF_ECU_MAX_ATTEMPTS: %d is not from 1 to 255", c.ECUMaxAttempts)
		}
		d.maxAttempts = c.ECUMaxAttempts
	}
	if c.ECULockout != "" {
		l, err := time.ParseDuration(c.ECULockout)
		if err != nil || l < 0 || l > 10*time.Minute {
			return d, fmt.Errorf("CONF_ECU_LOCKOUT: %q is not a duration from 0 to 10m (e.g. 10s)", c.ECULockout)
		}
		d.lockout = l
	}
	if c.ECUSeedLength != 0 {
		if c.ECUSeedLength < 1 || c.ECUSeedLength > 32 {
			return d, fmt.Errorf("CONF_ECU_SEED_LENGTH: %d is not from 1 to 32", c.ECUSeedLength)
		}
		d.seedLength = c.ECUSeedLength
	}
	if s := strings.TrimPrefix(strings.TrimSpace(c.ECUSacrificialKey), "0x"); s != "" {
		id, err := strconv.ParseUint(s, 16, 8)
		if err != nil || !she.KeyID(id).IsUserKey() {
			return d, fmt.Errorf("CONF_ECU_SACRIFICIAL_KEY_ID: %q is not the KeyID of a KEY_n slot (4 to D, hex)", c.ECUSacrificialKey)
		}
		d.sacrificial = she.KeyID(id)
	}
	return d, nil
}

// sacrificialSlot is the declared slot the suite may write-protect, if any.
func (d ecuDeclaration) sacrificialSlot() (she.KeyID, bool) { return d.sacrificial, d.sacrificial != 0 }

// expectHolds requires slot id to hold key: GenerateMAC answers the AES-CMAC the suite computes
// with key, and VerifyMAC takes it and refuses it one bit off.
func (u *ecuUnderTest) expectHolds(ctx context.Context, id she.KeyID, key [16]byte) {
	msg := randomKey()
	want := independentCMAC(key[:], msg[:])
	erc, mac, err := u.GenerateMAC(ctx, id, msg)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "GenerateMAC with slot %#x", byte(id))
	ExpectWithOffset(1, erc).To(Equal(she.NoError), "GenerateMAC with slot %#x", byte(id))
	ExpectWithOffset(1, mac).To(Equal(want), "GenerateMAC with slot %#x: the CMAC of the key the slot should hold", byte(id))
	erc, verified, err := u.VerifyMAC(ctx, id, msg, want)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "VerifyMAC with slot %#x", byte(id))
	ExpectWithOffset(1, []any{erc, verified}).To(Equal([]any{she.NoError, true}), "VerifyMAC with slot %#x", byte(id))
	want[0] ^= 0x80
	erc, verified, err = u.VerifyMAC(ctx, id, msg, want)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "VerifyMAC with slot %#x", byte(id))
	ExpectWithOffset(1, []any{erc, verified}).To(Equal([]any{she.NoError, false}), "VerifyMAC with slot %#x, a MAC one bit off", byte(id))
}

// expectGetID requires GET_ID to answer the ECU's UID, the SREG that DID 0xFD01 reads, and the
// CMAC of challenge ‖ UID ‖ SREG under the master key the suite knows (all-zero while empty).
func (u *ecuUnderTest) expectGetID(ctx context.Context, uid she.UID) {
	challenge := randomKey()
	id, err := u.GetID(ctx, challenge)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	ExpectWithOffset(1, id.ERC).To(Equal(she.NoError))
	ExpectWithOffset(1, id.UID).To(Equal(uid))
	if defaultDiag() {
		sreg, err := u.Status(ctx)
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		ExpectWithOffset(1, id.SREG).To(Equal(sreg), "GET_ID's SREG and DID 0xFD01")
	}
	if u.masterEmpty {
		ExpectWithOffset(1, id.MAC).To(Equal([16]byte{}), "no MASTER_ECU_KEY: the MAC is all-zero")
		return
	}
	ExpectWithOffset(1, id.MAC).To(Equal(independentCMAC(u.master[:], append(append(challenge[:], uid[:]...), byte(id.SREG)))),
		"CMAC(MASTER_ECU_KEY, challenge | UID | SREG)")
}

// canChangeMaster says whether the suite may load another master key: into a simulated ECU
// always; into a real one only when its master key is declared, so that it can be put back.
func (u *ecuUnderTest) canChangeMaster() bool { return u.simulated || confKeys.masterKey != nil }

// changeMaster loads key as MASTER_ECU_KEY, authorized by the current one.
func (u *ecuUnderTest) changeMaster(ctx context.Context, uid she.UID, key [16]byte) {
	u.loadOK(ctx, u.update(uid, she.MasterECUKey, key, u.nextCounter(she.MasterECUKey), 0))
	u.master, u.masterEmpty = key, false
}

// restoreMaster loads a real ECU's declared master key again (no flags, a greater counter) when
// a test changed it; a simulated ECU is dropped after the test.
func (u *ecuUnderTest) restoreMaster(ctx context.Context, uid she.UID) {
	if u.simulated || confKeys.masterKey == nil || (u.master == *confKeys.masterKey && !u.masterEmpty) {
		return
	}
	u.changeMaster(ctx, uid, *confKeys.masterKey)
}

// restoreMasterAfter puts a real ECU's declared master key back when the test ends, passed or not.
func (u *ecuUnderTest) restoreMasterAfter(uid she.UID) {
	if u.simulated {
		return
	}
	DeferCleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		key := confKeys.securityKey
		Expect(u.Prepare(ctx, &key)).To(Succeed(), "extended session and SecurityAccess, to restore the declared master key")
		u.restoreMaster(ctx, uid)
	})
}

// requestSeed asks for a seed at the diagnostic profile's SecurityAccess level (default 01).
func (u *ecuUnderTest) requestSeed(ctx context.Context) ([]byte, error) {
	level := diag().Security.Level
	resp, err := u.Do(ctx, []byte{uds.SecurityAccess, level})
	if err != nil {
		return nil, err
	}
	if len(resp) < 2 || resp[1] != level {
		return nil, fmt.Errorf("SecurityAccess requestSeed answered % x", resp)
	}
	return resp[2:], nil
}

// sendKey answers a seed with key (SecurityAccess sendKey: the profile's level + 1, default 02).
func (u *ecuUnderTest) sendKey(ctx context.Context, key []byte) error {
	_, err := u.Do(ctx, append([]byte{uds.SecurityAccess, diag().Security.Level + 1}, key...))
	return err
}

// wrongKeyFor is the key for seed with one bit flipped.
func wrongKeyFor(seed []byte) []byte {
	k := securityKeyFor(seed)
	k[len(k)-1] ^= 0x01
	return k
}

// freshSeed requests a seed and requires the declared length and not all-zero (the ECU is locked).
func (u *ecuUnderTest) freshSeed(ctx context.Context) []byte {
	seed, err := u.requestSeed(ctx)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "SecurityAccess requestSeed")
	ExpectWithOffset(1, seed).To(HaveLen(confKeys.ecu.seedLength), "the declared seed length (CONF_ECU_SEED_LENGTH)")
	ExpectWithOffset(1, seed).NotTo(Equal(make([]byte, len(seed))), "an all-zero seed while locked")
	return seed
}

// probeRoutine runs GetID, which changes nothing, as it is in the current session and security
// (default profile: the routine 0xFD11), and returns its error.
func (u *ecuUnderTest) probeRoutine(ctx context.Context) error {
	_, err := u.GetID(ctx, randomKey())
	return err
}

// hardReset requests ECUReset hardReset (01), requires its positive answer, and waits for the ECU
// to answer again (awaitReboot).
func (u *ecuUnderTest) hardReset(ctx context.Context) {
	ExpectWithOffset(1, u.Reset(ctx, 0x01)).To(Succeed(), "ECUReset hardReset")
	u.awaitReboot(ctx)
}

// lockedExtendedSession enters the session of probeRoutine (default profile: the extended one)
// from the default one, so that SecurityAccess is locked whatever an earlier test left (a change
// to another session locks).
func (u *ecuUnderTest) lockedExtendedSession(ctx context.Context) {
	ExpectWithOffset(1, u.StartSession(ctx, uds.DefaultSession)).To(Succeed())
	ExpectWithOffset(1, u.StartSession(ctx, probeOp().Session)).To(Succeed())
}

// unlock unlocks SecurityAccess at the profile's level in the current session.
func (u *ecuUnderTest) unlock(ctx context.Context) {
	ExpectWithOffset(1, u.sendKey(ctx, securityKeyFor(u.freshSeed(ctx)))).To(Succeed(), "SecurityAccess with the right key")
}

var _ = suite("ecu", "ECU: SHE through UDS", func() {
	AfterAll(awaitCounterClock)
	var ctx context.Context
	BeforeEach(func() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
		DeferCleanup(cancel)
	})

	It("answers a wrong SecurityAccess key with NRC 0x35 and uses the seed up (NRC 0x24); a new seed and the right key unlock; a seed while unlocked is all-zero", func() {
		u := newECUUnderTest(ecu.Config{})
		u.lockedExtendedSession(ctx)
		seed := u.freshSeed(ctx)
		expectNRC(u.sendKey(ctx, wrongKeyFor(seed)), uds.InvalidKey)
		By("the seed is used up: its right key now answers NRC 0x24")
		expectNRC(u.sendKey(ctx, securityKeyFor(seed)), uds.RequestSequenceError)
		expectNRC(u.probeRoutine(ctx), uds.SecurityAccessDenied)
		By("a new seed and the right key unlock")
		u.unlock(ctx)
		Expect(u.probeRoutine(ctx)).To(Succeed(), "a routine once unlocked")
		By("a seed request while unlocked answers an all-zero seed of the same length")
		zero, err := u.requestSeed(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(zero).To(Equal(make([]byte, confKeys.ecu.seedLength)))
		Expect(u.probeRoutine(ctx)).To(Succeed(), "still unlocked after a seed request")
		By("the right key reset the attempts: declared attempts less one wrong keys again are each NRC 0x35")
		u.lockedExtendedSession(ctx)
		for i := 1; i < confKeys.ecu.maxAttempts; i++ {
			expectNRC(u.sendKey(ctx, wrongKeyFor(u.freshSeed(ctx))), uds.InvalidKey)
		}
		u.unlock(ctx)
		Expect(u.probeRoutine(ctx)).To(Succeed(), "a routine once unlocked")
	})

	It("answers NRC 0x36 on the declared number of wrong keys in a row, an ECUReset before the last one, and NRC 0x37 to seed requests for the declared delay, ECUReset included; then unlocks", func() {
		u := newECUUnderTest(ecu.Config{})
		decl := confKeys.ecu
		u.lockedExtendedSession(ctx)
		var sent, answered time.Time
		for i := 1; i <= decl.maxAttempts; i++ {
			if i == decl.maxAttempts && i > 1 {
				By("an ECUReset before the last wrong key: the count of wrong keys survives it")
				u.hardReset(ctx)
				Expect(u.StartSession(ctx, uds.ExtendedSession)).To(Succeed())
			}
			seed := u.freshSeed(ctx)
			sent = time.Now()
			err := u.sendKey(ctx, wrongKeyFor(seed))
			answered = time.Now()
			if i < decl.maxAttempts {
				expectNRC(err, uds.InvalidKey)
			} else {
				expectNRC(err, uds.ExceededNumberOfAttempts)
			}
		}
		// The delay starts between sent and answered: a seed request answered before sent+delay
		// must be refused; one answered later proves nothing.
		delayed := func(when string) {
			Expect(u.StartSession(ctx, probeOp().Session)).To(Succeed(), "S3 may have ended the session")
			_, err := u.requestSeed(ctx)
			if time.Since(sent) >= decl.lockout {
				harnessFail("%s: the tester took longer than the declared delay of %v to ask (a loaded machine)", when, decl.lockout)
			}
			expectNRC(err, uds.RequiredTimeDelayNotExpired)
		}
		delayed("right after NRC 0x36")
		By("the delay survives ECUReset")
		u.hardReset(ctx)
		delayed("after ECUReset")
		By("three quarters into the delay")
		time.Sleep(time.Until(sent.Add(decl.lockout * 3 / 4)))
		delayed("three quarters into the delay")
		By("after the delay, the right key unlocks")
		time.Sleep(time.Until(answered.Add(decl.lockout + u.lockoutMargin())))
		Expect(u.StartSession(ctx, probeOp().Session)).To(Succeed(), "S3 may have ended the session during the delay")
		u.unlock(ctx)
		Expect(u.probeRoutine(ctx)).To(Succeed(), "a routine once unlocked")
	})

	It("refuses routines in the default and programming sessions (NRC 0x7F) and while locked (NRC 0x33); a change to another session locks", func() {
		// Under another diagnostic profile: GetID's session stands for the extended one, the
		// other of programming and extended for the programming one, and the refusal outside
		// GetID's session is NRC 0x7F, or 0x31 where that session has the service (refusalInSession).
		op := probeOp()
		own, other := op.Session, otherSession(op.Session)
		u := newECUUnderTest(ecu.Config{})
		Expect(u.StartSession(ctx, uds.DefaultSession)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), refusalInSession(op, uds.DefaultSession))
		Expect(u.StartSession(ctx, other)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), refusalInSession(op, other))
		By("unlocked in the programming session: still NRC 0x7F")
		u.unlock(ctx)
		expectNRC(u.probeRoutine(ctx), refusalInSession(op, other))
		By("programming → extended: locked")
		Expect(u.StartSession(ctx, own)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), uds.SecurityAccessDenied)
		u.unlock(ctx)
		Expect(u.probeRoutine(ctx)).To(Succeed(), "a routine once unlocked")
		By("extended → default → extended: locked")
		Expect(u.StartSession(ctx, uds.DefaultSession)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), refusalInSession(op, uds.DefaultSession))
		Expect(u.StartSession(ctx, own)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), uds.SecurityAccessDenied)
		By("extended → programming → extended: locked")
		u.unlock(ctx)
		Expect(u.StartSession(ctx, other)).To(Succeed())
		Expect(u.StartSession(ctx, own)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), uds.SecurityAccessDenied)
		By("the extended session requested again while in it: either keeps the unlock or locks")
		u.unlock(ctx)
		Expect(u.StartSession(ctx, own)).To(Succeed())
		if err := u.probeRoutine(ctx); err == nil {
			observe("requesting the extended session while in it keeps SecurityAccess unlocked")
		} else {
			expectNRC(err, uds.SecurityAccessDenied)
			observe("requesting the extended session while in it locks SecurityAccess")
		}
	})

	It("leaves the old key in use after a refused update: counter not greater, wrong M3, another authorizing key", func() {
		u, uid := prepared(ctx)
		id := slotFor(slotRefused)
		k1 := randomKey()
		c := u.nextCounter(id)
		u.loadOK(ctx, u.update(uid, id, k1, c, she.KeyUsage))
		u.expectHolds(ctx, id, k1)
		By("a counter not greater than the slot's")
		res := u.load(ctx, u.update(uid, id, randomKey(), c, she.KeyUsage))
		Expect(res.ERC).To(Equal(she.KeyUpdateError))
		u.expectHolds(ctx, id, k1)
		By("a wrong M3, with a far greater counter")
		m := u.update(uid, id, randomKey(), c+100, she.KeyUsage)
		m.M3[0] ^= 0x01
		res = u.load(ctx, m)
		Expect(res.ERC).To(Equal(she.KeyUpdateError))
		u.expectHolds(ctx, id, k1)
		By("authorized by another key than the master key")
		res = u.load(ctx, u.updateBy(uid, id, she.MasterECUKey, randomKey(), randomKey(), c+200, she.KeyUsage))
		Expect(res.ERC).To(Equal(she.KeyUpdateError))
		u.expectHolds(ctx, id, k1)
		By("an update authorized by the old key itself, with the counter after the old one, is taken: key and counter stayed")
		k2 := randomKey()
		u.loadOK(ctx, u.updateBy(uid, id, id, k1, k2, c+1, she.KeyUsage))
		u.expectHolds(ctx, id, k2)
	})

	It("answers VerifyMAC and GenerateMAC with a KeyID byte above 0x0F with NRC 0x31, and with a slot that cannot MAC with its ERC alone", func() {
		diagOp(profile.VerifyMAC, "this test sends")
		diagOp(profile.GenerateMAC, "this test sends")
		u, _ := prepared(ctx)
		msg, mac := randomKey(), randomKey()
		for _, keyID := range []byte{0x10, 0x1F, 0xFF} {
			_, err := u.RunOperation(ctx, profile.VerifyMAC, profile.Values{"KeyID": {keyID}, "Message": msg[:], "MAC": mac[:]})
			expectNRC(err, uds.RequestOutOfRange)
			_, err = u.RunOperation(ctx, profile.GenerateMAC, profile.Values{"KeyID": {keyID}, "Message": msg[:]})
			expectNRC(err, uds.RequestOutOfRange)
		}
		By("SECRET_KEY and MASTER_ECU_KEY cannot MAC: ERC_KEY_INVALID, and nothing after it (zero data after it under errors.on_error: zero-fill)")
		for _, id := range []she.KeyID{she.SecretKey, she.MasterECUKey} {
			// The client's codec refuses an answer with anything after a SHE error but what
			// errors.on_error allows.
			erc, _, err := u.GenerateMAC(ctx, id, msg)
			Expect(err).NotTo(HaveOccurred(), "GenerateMAC with slot %#x", byte(id))
			Expect(erc).To(Equal(she.KeyInvalid), "GenerateMAC with slot %#x", byte(id))
			erc, _, err = u.VerifyMAC(ctx, id, msg, mac)
			Expect(err).NotTo(HaveOccurred(), "VerifyMAC with slot %#x", byte(id))
			Expect(erc).To(Equal(she.KeyInvalid), "VerifyMAC with slot %#x", byte(id))
		}
	})

	It("answers ECUReset hardReset, then is in the default session, locked, its RAM key empty; other reset types NRC 0x12", func() {
		u, uid := prepared(ctx)
		p, err := she.ProfileByName(conf.Profile)
		Expect(err).NotTo(HaveOccurred())
		auth, ka, kr := slotFor(slotAuthorizer), randomKey(), randomKey()
		u.loadOK(ctx, u.update(uid, auth, ka, u.nextCounter(auth), she.KeyUsage))
		u.loadOK(ctx, u.updateBy(uid, p.RAMKey, auth, ka, kr, u.nextCounter(p.RAMKey), 0))
		u.expectHolds(ctx, p.RAMKey, kr)
		By("softReset and other types: NRC 0x12")
		for _, t := range []byte{0x02, 0x03, 0x04, 0x05} {
			expectNRC(u.Reset(ctx, t), uds.SubFunctionNotSupported)
		}
		By("hardReset: answered")
		u.hardReset(ctx)
		op := probeOp()
		expectNRC(u.probeRoutine(ctx), refusalInSession(op, uds.DefaultSession))
		Expect(u.StartSession(ctx, op.Session)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), uds.SecurityAccessDenied)
		u.unlock(ctx)
		By("the RAM key is gone, the non-volatile key stays, secure boot ran again")
		erc, _, err := u.GenerateMAC(ctx, p.RAMKey, randomKey())
		Expect(err).NotTo(HaveOccurred())
		Expect(erc).To(Equal(she.KeyEmpty), "GenerateMAC with the RAM key after a power cycle")
		u.expectHolds(ctx, auth, ka)
		sreg, err := u.sreg(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(sreg&(she.StatusBootFinished|she.StatusBootOK)).To(Equal(she.StatusBootFinished|she.StatusBootOK), "SREG %#02x", byte(sreg))
	})

	It("checks SecurityAccess before a routine's record length: a routine of the wrong length while locked is NRC 0x33, an unknown one NRC 0x31, and once unlocked the wrong length NRC 0x13", func() {
		u := newECUUnderTest(ecu.Config{})
		u.lockedExtendedSession(ctx)
		reqs := wrongLengthRequests()
		for _, req := range reqs {
			u.expectRequestNRC(ctx, req, uds.SecurityAccessDenied, "while locked")
		}
		if probeOp().Steps[0].Service == profile.RoutineStart {
			u.expectRoutineNRC(ctx, unusedRID(), 0, uds.RequestOutOfRange, "an unknown RID while locked")
		}
		By("unlocked, the same requests are refused for their length")
		u.unlock(ctx)
		for _, req := range reqs {
			u.expectRequestNRC(ctx, req, uds.IncorrectMessageLengthOrInvalidFormat, "unlocked")
		}
	})

	It("honours the suppress-positive-response bit: no answer, not even late, to 10 83, 27 82, 3E 80 and 11 81, each taking effect; a negative answer still comes", func() {
		u := newECUUnderTest(ecu.Config{})
		Expect(u.StartSession(ctx, uds.DefaultSession)).To(Succeed(), "an ECU may still be in another session")
		// sendSuppressed takes what answers each request within P2 (P2* after a response
		// pending); the client discards, counting it, any answer that comes later (it matches none
		// of the requests that follow, each of another service).
		discarded := u.Stats().Discarded
		late := func() int64 { return u.Stats().Discarded - discarded }
		op := probeOp()
		By("10 83: the extended session (the profile's session of GetID), locked")
		expectSuppressed(u.sendSuppressed(ctx, uds.DiagnosticSessionControl, op.Session|uds.SuppressPositiveResponse), "10 83")
		expectNRC(u.probeRoutine(ctx), uds.SecurityAccessDenied)
		By("27 82 with the right key: unlocked")
		seed := u.freshSeed(ctx)
		sendKey := (diag().Security.Level + 1) | uds.SuppressPositiveResponse
		expectSuppressed(u.sendSuppressed(ctx, append([]byte{uds.SecurityAccess, sendKey}, securityKeyFor(seed)...)...), "27 82")
		Expect(u.probeRoutine(ctx)).To(Succeed(), "a routine after 27 82 with the right key")
		By("3E 80: nothing changes")
		expectSuppressed(u.sendSuppressed(ctx, uds.TesterPresent, 0x80), "3E 80")
		Expect(u.probeRoutine(ctx)).To(Succeed(), "a routine after 3E 80")
		By("10 85, no such session: the negative answer 7F 10 12 comes, and nothing changes")
		answers := u.sendSuppressed(ctx, uds.DiagnosticSessionControl, 0x85)
		Expect(answers).NotTo(BeEmpty(), "answers to 10 85")
		Expect(answers[len(answers)-1]).To(Equal([]byte{0x7F, 0x10, 0x12}), "the answer to 10 85")
		Expect(u.probeRoutine(ctx)).To(Succeed(), "a routine after 10 85")
		By("11 81: a power cycle, then the default session")
		expectSuppressed(u.sendSuppressed(ctx, uds.ECUReset, 0x81), "11 81")
		u.awaitReboot(ctx)
		expectNRC(u.probeRoutine(ctx), refusalInSession(op, uds.DefaultSession))
		Expect(late()).To(BeZero(), "answers after P2 to the requests with the suppress bit")
	})

	It("returns to the default session, locked, after S3 without a request", func() {
		u := newECUUnderTest(ecu.Config{S3: simS3})
		u.lockedExtendedSession(ctx)
		u.unlock(ctx)
		Expect(u.probeRoutine(ctx)).To(Succeed(), "a routine once unlocked")
		// The ECU's S3 started at the latest when it had sent its answer: waiting from the
		// answer's arrival on waits longer than S3 on the ECU's clock, however slow the tester.
		time.Sleep(u.s3() + u.s3Margin())
		By("a routine, which only the extended session takes: NRC 0x7F")
		expectNRC(u.probeRoutine(ctx), uds.ServiceNotSupportedInActiveSession)
		_, err := u.requestSeed(ctx)
		expectNRC(err, uds.ServiceNotSupportedInActiveSession)
		By("the extended session again: locked")
		Expect(u.StartSession(ctx, uds.ExtendedSession)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), uds.SecurityAccessDenied)
	})
})

// lockoutMargin is what the suite waits beyond the declared SecurityAccess delay: a tenth of it
// and the client's timing margin.
func (u *ecuUnderTest) lockoutMargin() time.Duration {
	if u.simulated {
		return simMargin + confKeys.ecu.lockout/10
	}
	return confKeys.timingMargin + confKeys.ecu.lockout/10
}

// wrongLengthRequests are the first requests of the profile's operations that carry a record and
// run in the session of probeRoutine (default profile: the routines LoadKey, GetID, VerifyMAC and
// GenerateMAC), each with its record one byte short and one byte long.
func wrongLengthRequests() [][]byte {
	session := probeOp().Session
	var reqs [][]byte
	for _, name := range []profile.OpName{profile.LoadKey, profile.GetID, profile.VerifyMAC, profile.GenerateMAC} {
		op, ok := diag().Operations[name]
		if !ok || op.Session != session || len(op.Steps[0].Request) == 0 {
			continue
		}
		st := op.Steps[0]
		in := profile.Values{}
		for _, it := range st.Request {
			if it.Kind == profile.FieldItem {
				in[it.Field] = make([]byte, st.Request.FieldSize(it.Field))
			}
		}
		req, err := st.EncodeRequest(in)
		ExpectWithOffset(1, err).NotTo(HaveOccurred(), "a %s request of the diagnostic profile", name)
		reqs = append(reqs, req[:len(req)-1], append(slices.Clone(req), 0))
	}
	ExpectWithOffset(1, reqs).NotTo(BeEmpty(), "operations with a record in the session of GetID")
	return reqs
}

// unusedRID is a routine identifier no operation of the profile starts (default profile: 0xFD1F).
func unusedRID() uint16 {
	used := map[uint16]bool{}
	for _, op := range diag().Operations {
		for _, st := range op.Steps {
			used[st.ID] = true
		}
	}
	rid := uint16(0xFD1F)
	for used[rid] {
		rid--
	}
	return rid
}

// expectRequestNRC sends req and requires NRC nrc.
func (u *ecuUnderTest) expectRequestNRC(ctx context.Context, req []byte, nrc uds.NRC, when string) {
	_, err := u.Do(ctx, req)
	var nr *uds.NegativeResponseError
	ExpectWithOffset(1, errors.As(err, &nr) && nr.NRC == nrc).To(BeTrue(),
		"% x %s: %v; want NRC %#02x (%v)", req, when, err, byte(nrc), nrc)
}

// expectRoutineNRC starts routine rid with a zero record of n bytes and requires NRC nrc.
func (u *ecuUnderTest) expectRoutineNRC(ctx context.Context, rid uint16, n int, nrc uds.NRC, when string) {
	_, err := u.StartRoutine(ctx, rid, make([]byte, n))
	var nr *uds.NegativeResponseError
	ExpectWithOffset(1, errors.As(err, &nr) && nr.NRC == nrc).To(BeTrue(),
		"routine %#04x with a %d-byte record %s: %v; want NRC %#02x (%v)", rid, n, when, err, byte(nrc), nrc)
}

// answerWait is how long the suite waits for an answer that must not come: P2 as the ECU
// announced it and the client's margin.
func (u *ecuUnderTest) answerWait() time.Duration {
	p2, _ := u.Timing()
	if u.simulated {
		return p2 + simMargin
	}
	return p2 + confKeys.timingMargin
}

// sendSuppressed sends req, whose sub-function has the suppress bit, and returns what answered it
// within answerWait (P2* after a response pending).
func (u *ecuUnderTest) sendSuppressed(ctx context.Context, req ...byte) [][]byte {
	ExpectWithOffset(1, uds.SuppressesPositiveResponse(req)).To(BeTrue(), "% x has the suppress bit", req)
	answers, err := u.DoSuppressed(ctx, req, u.answerWait())
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "sending % x", req)
	return answers
}

// expectSuppressed requires no positive answer to a request with the suppress bit, unless
// response pendings came first: then ISO 14229-1 requires the final answer after them.
func expectSuppressed(answers [][]byte, what string) {
	pendings := 0
	for _, a := range answers {
		if _, nrc, ok := uds.ParseNegative(a); ok && nrc == uds.ResponsePending {
			pendings++
		}
	}
	if pendings == 0 {
		ExpectWithOffset(1, answers).To(BeEmpty(), "answers to %s", what)
		return
	}
	ExpectWithOffset(1, answers).To(HaveLen(pendings+1), "answers to %s after %d response pending: the final answer", what, pendings)
}

// awaitReboot waits for the ECU to answer again after a reset: a request to a rebooting ECU may
// time out (three tries, each with the client's wait for the late answer).
func (u *ecuUnderTest) awaitReboot(ctx context.Context) {
	var err error
	for range 3 {
		if _, err = u.UID(ctx); !errors.Is(err, uds.ErrTimeout) {
			break
		}
	}
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "reading the UID after ECUReset")
}

// profileS3 is the profile's S3: a non-default session with no request for it returns to the
// default session (PROFILE.md; ISO 14229-2's S3server). simS3 is the S3 of the simulated ECU of
// the suite's S3 test (CONF_CAN=mem): shorter, since the test waits it out.
const (
	profileS3 = 5 * time.Second
	simS3     = 2 * time.Second
)

// s3 is the S3 of the ECU under test.
func (u *ecuUnderTest) s3() time.Duration {
	if u.simulated {
		return simS3
	}
	return profileS3
}

// s3Margin is what the suite waits beyond S3 before it checks that the session ended: a tenth of
// S3 and the client's timing margin.
func (u *ecuUnderTest) s3Margin() time.Duration {
	if u.simulated {
		return simMargin + simS3/10
	}
	return confKeys.timingMargin + profileS3/10
}

// udsScenario says how one scenario of she-engine-rules.json is replayed over UDS: its steps that
// cannot be, with why (README), and whether it needs an ECU whose MASTER_ECU_KEY is empty.
type udsScenario struct {
	skip       map[int]string
	emptyFirst bool // the scenario's rule is about an empty MASTER_ECU_KEY
}

// Why some steps cannot be replayed over UDS.
const (
	bySecretKey   = "authorized by SECRET_KEY, which only the SHE knows"
	lastCounter   = "spends the slot's last counter for good"
	bootMACKey    = "needs BOOT_MAC_KEY's value, which only the SHE knows (loading one would break secure boot)"
	noRNGRoutine  = "the diagnostic profile has no routine for CMD_INIT_RNG"
	macBitsLength = "VerifyMAC over UDS always compares 128 bits"
)

// udsScenarios are the scenarios replayed over UDS; every other one is in notOverUDS.
var udsScenarios = map[string]udsScenario{
	"load-key-2-master-only-by-itself":             {},
	"load-key-2-user-key-by-master-or-itself":      {},
	"load-key-2-secret-key-never":                  {},
	"load-key-2-no-such-slot":                      {},
	"load-key-2-ram-key-authorizers":               {skip: map[int]string{2: bySecretKey}},
	"load-key-3-empty-authorizes-as-zero-autosar":  {},
	"load-key-3-empty-authorizes-only-itself-csec": {emptyFirst: true},
	"load-key-3-csec-ram-key-is-0xf":               {skip: map[int]string{1: bySecretKey}},
	"load-key-4-wrong-m3":                          {},
	"load-key-4-tampered-m1-changes-the-mac":       {},
	"load-key-4-uid-mismatch":                      {},
	"load-key-4-wildcard-allowed-while-flag-clear": {},
	"load-key-4-counter-strictly-greater":          {skip: map[int]string{2: lastCounter, 3: lastCounter}},
	"load-key-4-check-order-auth-before-mac":       {},
	"load-key-master-rotation":                     {},
	"key-usage-mac-commands":                       {skip: map[int]string{5: bootMACKey}},
	"verify-mac-length-in-bits":                    {skip: map[int]string{0: macBitsLength, 1: macBitsLength, 3: macBitsLength}},
	"csec-verify-only":                             {},
	"get-id-mac":                                   {emptyFirst: true, skip: map[int]string{3: noRNGRoutine, 4: noRNGRoutine}},
}

// notOverUDS are the scenarios that cannot be replayed over UDS, and why (README).
var notOverUDS = map[string]string{
	"load-key-1-write-protected":                               "write protection is for good: the ecu suite tests it on the declared sacrificial slot",
	"load-key-1-write-protection-checked-before-authorization": "write protection is for good: the ecu suite tests it on the declared sacrificial slot",
	"load-key-1-stored-write-protection-locks-the-slot":        "write protection is for good: the ecu suite tests it on the declared sacrificial slot",
	"load-key-2-boot-keys-by-master-or-boot-mac-key":           "loading BOOT_MAC_KEY and BOOT_MAC would break the ECU's secure boot",
	"key-usage-cipher-commands":                                "the diagnostic profile has no routine for the cipher commands or CMD_LOAD_PLAIN_KEY",
	"secure-boot-success-unlocks-boot-protected-keys":          "the ECU runs secure boot itself: no routine for CMD_SECURE_BOOT, CMD_BOOT_OK, CMD_BOOT_FAILURE",
	"secure-boot-failure-locks-boot-protected-keys":            "the ECU runs secure boot itself: no routine for CMD_SECURE_BOOT, CMD_BOOT_OK, CMD_BOOT_FAILURE",
	"secure-boot-failure-command":                              "the ECU runs secure boot itself: no routine for CMD_SECURE_BOOT, CMD_BOOT_OK, CMD_BOOT_FAILURE",
	"secure-boot-without-boot-mac-key":                         "the ECU runs secure boot itself: no routine for CMD_SECURE_BOOT, CMD_BOOT_OK, CMD_BOOT_FAILURE",
	"secure-boot-learns-empty-boot-mac":                        "the ECU runs secure boot itself: no routine for CMD_SECURE_BOOT, CMD_BOOT_OK, CMD_BOOT_FAILURE",
	"debugger-protection":                                      "no debugger can be attached over UDS",
	"rng-sequencing":                                           "the diagnostic profile has no routine for the PRNG commands",
	"rng-init-without-secret-key":                              "the diagnostic profile has no routine for the PRNG commands",
	"debug-authorization-erases-keys":                          "the diagnostic profile has no routine for CMD_DBG_CHAL and CMD_DBG_AUTH",
	"debug-authorization-refusals":                             "the diagnostic profile has no routine for CMD_DBG_CHAL and CMD_DBG_AUTH",
	"debug-authorization-needs-master-key":                     "the diagnostic profile has no routine for CMD_DBG_CHAL and CMD_DBG_AUTH",
	"ram-key-export":                                           "the diagnostic profile has no routine for CMD_LOAD_PLAIN_KEY and CMD_EXPORT_RAM_KEY",
}

// scenarioMessage is the 16-byte message of the scenarios' MAC steps.
var scenarioMessage = [16]byte([]byte("scenario message"))

// udsReplay plays one scenario against an ECU through UDS. A real ECU keeps its state, so every
// value is fresh: each key of the scenario becomes a random key (the same one wherever the
// scenario uses it), the empty MASTER_ECU_KEY of the scenario's factory state the ECU's master
// key, a counter c of slot s the slot's next counter + c - 1 (0 stays 0), a foreign UID the ECU's
// UID with its last byte flipped; the factory keys are loaded first, authorized by the master
// key; the declared sacrificial slot is replaced by a slot the scenario does not use. CHECK_SLOT
// steps are left out (no service reads a slot; the later steps show its key).
type udsReplay struct {
	u     *ecuUnderTest
	uid   she.UID
	keys  map[[16]byte][16]byte
	base  map[she.KeyID]uint32
	slots map[she.KeyID]she.KeyID
	where string
}

// newUDSReplay prepares the replay of sc on u, whose master key stands for the scenario's empty one.
func newUDSReplay(u *ecuUnderTest, uid she.UID, profile she.Profile, sc scenario) *udsReplay {
	r := &udsReplay{u: u, uid: uid, keys: map[[16]byte][16]byte{}, base: map[she.KeyID]uint32{},
		slots: map[she.KeyID]she.KeyID{}}
	r.keys[profile.EmptyKey] = u.master
	used := map[she.KeyID]bool{}
	for _, f := range sc.Factory {
		used[she.KeyID(f.Slot)] = true
	}
	for _, st := range sc.Steps {
		used[she.KeyID(st.KeyID)], used[she.KeyID(st.AuthID)] = true, true
	}
	if s, ok := confKeys.ecu.sacrificialSlot(); ok && used[s] {
		for id := she.Key1; id <= she.Key10; id++ {
			if !used[id] && id != s {
				r.slots[s] = id
				break
			}
		}
	}
	return r
}

func (r *udsReplay) slot(id uint8) she.KeyID {
	if s, ok := r.slots[she.KeyID(id)]; ok {
		return s
	}
	return she.KeyID(id)
}

// key is the fresh key that stands for the scenario's key k.
func (r *udsReplay) key(k [16]byte) [16]byte {
	if v, ok := r.keys[k]; ok {
		return v
	}
	v := randomKey()
	r.keys[k] = v
	return v
}

// counter is the counter that stands for the scenario's counter c of slot id.
func (r *udsReplay) counter(id she.KeyID, c uint32) uint32 {
	if c == 0 {
		return 0
	}
	if _, ok := r.base[id]; !ok {
		r.base[id] = r.u.nextCounter(id) - 1
	}
	return r.base[id] + c
}

// factory loads the scenario's factory keys, authorized by the master key.
func (r *udsReplay) factory(ctx context.Context, sc scenario) {
	for _, f := range sc.Factory {
		flags, err := she.ParseFlags(f.Flags)
		Expect(err).NotTo(HaveOccurred(), r.where)
		id := r.slot(f.Slot)
		if !id.IsUserKey() {
			continue // BOOT_MAC_KEY and BOOT_MAC are the ECU's own; the steps that need their value are not replayed
		}
		r.u.loadOK(ctx, r.u.update(r.uid, id, r.key(f.Key.block16()), r.counter(id, f.Counter), flags))
	}
}

// step replays one step of the scenario.
func (r *udsReplay) step(ctx context.Context, st scenarioStep) {
	switch st.Cmd {
	case "CHECK_SLOT":
	case "LOAD_KEY":
		r.loadKey(ctx, st)
	case "GENERATE_MAC":
		erc, mac, err := r.u.GenerateMAC(ctx, r.slot(st.KeyID), scenarioMessage)
		Expect(err).NotTo(HaveOccurred(), r.where)
		Expect(erc.String()).To(Equal(st.Expect), r.where)
		if erc == she.NoError && st.Key != nil {
			k := r.key(st.Key.block16())
			Expect(mac).To(Equal(independentCMAC(k[:], scenarioMessage[:])), r.where)
		}
	case "VERIFY_MAC":
		var mac [16]byte
		if st.Key != nil {
			k := r.key(st.Key.block16())
			mac = independentCMAC(k[:], scenarioMessage[:])
		}
		if st.TamperByte != nil {
			mac[*st.TamperByte] ^= 0x01
		}
		erc, verified, err := r.u.VerifyMAC(ctx, r.slot(st.KeyID), scenarioMessage, mac)
		Expect(err).NotTo(HaveOccurred(), r.where)
		Expect(erc.String()).To(Equal(st.Expect), r.where)
		if st.Verified != nil {
			Expect(verified).To(Equal(*st.Verified), r.where+": verification status")
		}
	case "GET_ID":
		if st.MasterKey == "empty" {
			Expect(r.u.masterEmpty).To(BeTrue(), r.where+": the replay needs an empty master key here")
		} else {
			master, err := hexBlock(st.MasterKey)
			Expect(err).NotTo(HaveOccurred(), r.where)
			Expect(r.u.master).To(Equal(r.key(master)), r.where+": the master key the replay loaded")
		}
		r.u.expectGetID(ctx, r.uid)
	default:
		Fail(fmt.Sprintf("%s: no UDS replay for %s", r.where, st.Cmd))
	}
}

// loadKey replays a LOAD_KEY step: the answer's ERC, and on success M4 and M5 that prove the new
// key (and equal the model's for the ECU's own UID).
func (r *udsReplay) loadKey(ctx context.Context, st scenarioStep) {
	id, authID := r.slot(st.KeyID), r.slot(st.AuthID)
	uid := r.uid
	switch st.UID {
	case "", "own":
	case "wildcard":
		uid = she.WildcardUID
	default:
		uid[14] ^= 0xFF // another ECU's
	}
	var authKey [16]byte
	if st.AuthKey != nil {
		authKey = st.AuthKey.block16()
	}
	flags, err := she.ParseFlags(st.Flags)
	Expect(err).NotTo(HaveOccurred(), r.where)
	newKey, counter := r.key(st.NewKey.block16()), r.counter(id, st.Counter)
	m := r.u.updateBy(uid, id, authID, r.key(authKey), newKey, counter, flags)
	switch st.Tamper {
	case "":
	case "M1":
		m.M1[0] ^= 0x80
	case "M2":
		m.M2[31] ^= 0x01
	case "M3":
		m.M3[0] ^= 0x01
	default:
		Fail(r.where + ": unknown tamper " + st.Tamper)
	}
	res := r.u.load(ctx, m)
	Expect(res.ERC.String()).To(Equal(st.Expect), r.where)
	if res.ERC != she.NoError {
		return
	}
	Expect(she.VerifyM4M5(newKey, res.M4, res.M5)).To(Equal(she.Proof{UID: r.uid, KeyID: id, AuthID: authID, Counter: counter,
		M4Valid: true, M5Valid: true}), r.where+": M4/M5 prove the stored key")
	if uid == r.uid {
		Expect([]any{res.M4, res.M5}).To(Equal([]any{m.M4, m.M5}), r.where+": the model's M4 and M5")
	}
	if id == she.MasterECUKey {
		r.u.master, r.u.masterEmpty = newKey, false
	}
}

// loadsMaster says whether sc stores a MASTER_ECU_KEY.
func loadsMaster(sc scenario) bool {
	for _, st := range sc.Steps {
		if st.Cmd == "LOAD_KEY" && st.KeyID == uint8(she.MasterECUKey) && st.Expect == she.NoError.String() {
			return true
		}
	}
	return false
}

var _ = suite("ecu", "ECU: SHE through UDS", func() {
	AfterAll(awaitCounterClock)
	It("replays the engine-rule scenarios of she-engine-rules.json over UDS where they can be", func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		DeferCleanup(cancel)
		f, err := vectors.Load("she-engine-rules.json")
		Expect(err).NotTo(HaveOccurred())
		profile, err := she.ProfileByName(conf.Profile)
		Expect(err).NotTo(HaveOccurred())
		// A simulated ECU is fresh for each scenario; a real one is prepared once (fewer exchanges
		// on a busy bus) and gets its declared master key back after each scenario and at the end.
		var shared *ecuUnderTest
		var sharedUID she.UID
		ecuFor := func(spec udsScenario) (*ecuUnderTest, she.UID) {
			switch {
			case conf.CAN == "mem" && spec.emptyFirst:
				return preparedAsIs(ctx)
			case conf.CAN == "mem":
				return prepared(ctx)
			case shared == nil:
				shared, sharedUID = prepared(ctx)
				shared.restoreMasterAfter(sharedUID)
			}
			return shared, sharedUID
		}
		replayed := 0
		for _, rec := range f.Records {
			spec, ok := udsScenarios[rec.ID]
			if !ok {
				Expect(notOverUDS).To(HaveKey(rec.ID), "scenario %s is neither replayed over UDS nor listed as not replayable", rec.ID)
				continue
			}
			var sc scenario
			Expect(rec.Decode(&sc)).To(Succeed(), rec.ID)
			if sc.Profile != profile.Name {
				continue
			}
			if why := replayable(spec, sc); why != "" {
				observe("scenario %s not replayed on this ECU: %s", rec.ID, why)
				continue
			}
			By("scenario " + rec.ID)
			u, uid := ecuFor(spec)
			r := newUDSReplay(u, uid, profile, sc)
			r.where = "scenario " + rec.ID + ", factory keys"
			r.factory(ctx, sc)
			for i, st := range sc.Steps {
				if spec.skip[i] != "" {
					continue
				}
				r.where = fmt.Sprintf("scenario %s, step %d (%s)", rec.ID, i, st.Cmd)
				r.step(ctx, st)
			}
			u.restoreMaster(ctx, uid)
			replayed++
		}
		Expect(replayed).To(BeNumerically(">", 0), "scenarios of profile %s replayed", profile.Name)
	})
})

// replayable says why the scenario cannot be replayed on the ECU under test ("" when it can): one
// about an empty master key needs a simulated ECU in the factory state, one that loads a master
// key a real ECU whose master key is declared (to put it back).
func replayable(spec udsScenario, sc scenario) string {
	switch {
	case conf.CAN == "mem":
		return ""
	case spec.emptyFirst:
		return "it needs an empty MASTER_ECU_KEY, which the suite could not put back"
	case loadsMaster(sc) && confKeys.masterKey == nil:
		return "it loads a MASTER_ECU_KEY, and the ECU's declared one is empty (CONF_ECU_MASTER_KEY), which the suite could not put back"
	}
	return ""
}

// TestECUDeclaration: the ECU's declared values, their defaults on an interface and in-process,
// and bad values refused with the variable's name.
func TestECUDeclaration(t *testing.T) {
	d, err := (&Config{CAN: "vcan0"}).ecuDeclaration()
	if want := (ecuDeclaration{maxAttempts: 3, lockout: 10 * time.Second, seedLength: 16}); err != nil || d != want {
		t.Errorf("defaults on an interface: %+v, %v; want %+v", d, err, want)
	}
	if _, ok := d.sacrificialSlot(); ok {
		t.Error("a sacrificial slot on an interface that declares none")
	}
	d, err = (&Config{CAN: "mem"}).ecuDeclaration()
	if id, ok := d.sacrificialSlot(); err != nil || !ok || id != 9 || d.lockout != simLockout {
		t.Errorf("in-process: %+v, %v; want slot 9 and a %v delay", d, err, simLockout)
	}
	c := Config{CAN: "can0", ECUMaxAttempts: 5, ECULockout: "30s", ECUSeedLength: 4, ECUSacrificialKey: "0xD"}
	d, err = c.ecuDeclaration()
	if want := (ecuDeclaration{maxAttempts: 5, lockout: 30 * time.Second, seedLength: 4, sacrificial: 0xD}); err != nil || d != want {
		t.Errorf("declared %+v: %+v, %v; want %+v", c, d, err, want)
	}
	for _, bad := range []struct {
		c    Config
		want string
	}{
		{Config{ECUMaxAttempts: -1}, "CONF_ECU_MAX_ATTEMPTS"},
		{Config{ECULockout: "10"}, "CONF_ECU_LOCKOUT"},
		{Config{ECULockout: "-1s"}, "CONF_ECU_LOCKOUT"},
		{Config{ECUSeedLength: 33}, "CONF_ECU_SEED_LENGTH"},
		{Config{ECUSacrificialKey: "1"}, "CONF_ECU_SACRIFICIAL_KEY_ID"},
		{Config{ECUSacrificialKey: "E"}, "CONF_ECU_SACRIFICIAL_KEY_ID"},
		{Config{ECUSacrificialKey: "KEY_6"}, "CONF_ECU_SACRIFICIAL_KEY_ID"},
	} {
		if _, err := bad.c.ecuDeclaration(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: error %v, want one naming %s", bad.c, err, bad.want)
		}
	}
}
