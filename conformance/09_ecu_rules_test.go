package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/uds"
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
// CONF_ECU_SACRIFICIAL_KEY_ID. Simulated ECUs (CONF_CAN=mem) are built to the declaration and
// always have a sacrificial slot (KeyID 9) and a 3 s delay unless configured otherwise.
func (c *Config) ecuDeclaration() (ecuDeclaration, error) {
	d := ecuDeclaration{maxAttempts: 3, lockout: 10 * time.Second, seedLength: 16}
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
	sreg, err := u.Status(ctx)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	ExpectWithOffset(1, id.SREG).To(Equal(sreg), "GET_ID's SREG and DID 0xFD01")
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
	if u.simulated || (u.master == *confKeys.masterKey && !u.masterEmpty) {
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

// requestSeed asks for a SecurityAccess level 01 seed.
func (u *ecuUnderTest) requestSeed(ctx context.Context) ([]byte, error) {
	resp, err := u.Do(ctx, []byte{uds.SecurityAccess, 0x01})
	if err != nil {
		return nil, err
	}
	if len(resp) < 2 || resp[1] != 0x01 {
		return nil, fmt.Errorf("SecurityAccess requestSeed answered % x", resp)
	}
	return resp[2:], nil
}

// sendKey answers a seed with key (SecurityAccess level 02).
func (u *ecuUnderTest) sendKey(ctx context.Context, key []byte) error {
	_, err := u.Do(ctx, append([]byte{uds.SecurityAccess, 0x02}, key...))
	return err
}

// securityKeyFor is the key of the built-in algorithm for seed: AES-CMAC(security key, seed).
func securityKeyFor(seed []byte) []byte {
	k := independentCMAC(confKeys.securityKey[:], seed)
	return k[:]
}

// wrongKeyFor is the key for seed with one bit flipped.
func wrongKeyFor(seed []byte) []byte {
	k := securityKeyFor(seed)
	k[15] ^= 0x01
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

// probeRoutine runs the GetID routine, which changes nothing, and returns its error.
func (u *ecuUnderTest) probeRoutine(ctx context.Context) error {
	_, err := u.GetID(ctx, randomKey())
	return err
}

// hardReset requests ECUReset hardReset (01), requires its positive answer, and waits for the ECU
// to answer again: a request to a rebooting ECU may time out (three tries, each with the client's
// wait for the late answer).
func (u *ecuUnderTest) hardReset(ctx context.Context) {
	ExpectWithOffset(1, u.Reset(ctx, 0x01)).To(Succeed(), "ECUReset hardReset")
	var err error
	for range 3 {
		if _, err = u.ReadDID(ctx, ecu.DIDUID); !errors.Is(err, uds.ErrTimeout) {
			break
		}
	}
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "reading the UID after ECUReset")
}

// unlock unlocks SecurityAccess level 01 in the current session.
func (u *ecuUnderTest) unlock(ctx context.Context) {
	ExpectWithOffset(1, u.sendKey(ctx, securityKeyFor(u.freshSeed(ctx)))).To(Succeed(), "SecurityAccess with the right key")
}

var _ = suite("ecu", "ECU: SHE through UDS", func() {
	var ctx context.Context
	BeforeEach(func() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 60*time.Second)
		DeferCleanup(cancel)
	})

	It("answers a wrong SecurityAccess key with NRC 0x35 and uses the seed up (NRC 0x24); a new seed and the right key unlock; a seed while unlocked is all-zero", func() {
		u := newECUUnderTest(ecu.Config{})
		Expect(u.StartSession(ctx, uds.ExtendedSession)).To(Succeed())
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
	})

	It("answers NRC 0x36 on the declared number of wrong keys in a row and NRC 0x37 to seed requests for the declared delay, ECUReset included; then unlocks", func() {
		u := newECUUnderTest(ecu.Config{})
		decl := confKeys.ecu
		Expect(u.StartSession(ctx, uds.ExtendedSession)).To(Succeed())
		var sent, answered time.Time
		for i := 1; i <= decl.maxAttempts; i++ {
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
			Expect(u.StartSession(ctx, uds.ExtendedSession)).To(Succeed(), "S3 may have ended the session")
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
		Expect(u.StartSession(ctx, uds.ExtendedSession)).To(Succeed(), "S3 may have ended the session during the delay")
		u.unlock(ctx)
		Expect(u.probeRoutine(ctx)).To(Succeed(), "a routine once unlocked")
	})

	It("refuses routines in the default and programming sessions (NRC 0x7F) and while locked (NRC 0x33); a change to another session locks", func() {
		u := newECUUnderTest(ecu.Config{})
		Expect(u.StartSession(ctx, uds.DefaultSession)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), uds.ServiceNotSupportedInActiveSession)
		Expect(u.StartSession(ctx, uds.ProgrammingSession)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), uds.ServiceNotSupportedInActiveSession)
		By("unlocked in the programming session: still NRC 0x7F")
		u.unlock(ctx)
		expectNRC(u.probeRoutine(ctx), uds.ServiceNotSupportedInActiveSession)
		By("programming → extended: locked")
		Expect(u.StartSession(ctx, uds.ExtendedSession)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), uds.SecurityAccessDenied)
		u.unlock(ctx)
		Expect(u.probeRoutine(ctx)).To(Succeed(), "a routine once unlocked")
		By("extended → default → extended: locked")
		Expect(u.StartSession(ctx, uds.DefaultSession)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), uds.ServiceNotSupportedInActiveSession)
		Expect(u.StartSession(ctx, uds.ExtendedSession)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), uds.SecurityAccessDenied)
		By("extended → programming → extended: locked")
		u.unlock(ctx)
		Expect(u.StartSession(ctx, uds.ProgrammingSession)).To(Succeed())
		Expect(u.StartSession(ctx, uds.ExtendedSession)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), uds.SecurityAccessDenied)
		By("the extended session requested again while in it: either keeps the unlock or locks")
		u.unlock(ctx)
		Expect(u.StartSession(ctx, uds.ExtendedSession)).To(Succeed())
		if err := u.probeRoutine(ctx); err == nil {
			observe("requesting the extended session while in it keeps SecurityAccess unlocked")
		} else {
			expectNRC(err, uds.SecurityAccessDenied)
			observe("requesting the extended session while in it locks SecurityAccess")
		}
	})

	It("leaves the old key in use after a refused update: counter not greater, wrong M3, another authorizing key", func() {
		u, uid := prepared(ctx)
		id := she.KeyID(0xC)
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

	It("answers ECUReset hardReset, then is in the default session, locked, its RAM key empty; other reset types NRC 0x12", func() {
		u, uid := prepared(ctx)
		p, err := she.ProfileByName(conf.Profile)
		Expect(err).NotTo(HaveOccurred())
		auth, ka, kr := she.KeyID(0xD), randomKey(), randomKey()
		u.loadOK(ctx, u.update(uid, auth, ka, u.nextCounter(auth), she.KeyUsage))
		u.loadOK(ctx, u.updateBy(uid, p.RAMKey, auth, ka, kr, u.nextCounter(p.RAMKey), 0))
		u.expectHolds(ctx, p.RAMKey, kr)
		By("softReset and other types: NRC 0x12")
		for _, t := range []byte{0x02, 0x03, 0x04, 0x05} {
			expectNRC(u.Reset(ctx, t), uds.SubFunctionNotSupported)
		}
		By("hardReset: answered")
		u.hardReset(ctx)
		expectNRC(u.probeRoutine(ctx), uds.ServiceNotSupportedInActiveSession)
		Expect(u.StartSession(ctx, uds.ExtendedSession)).To(Succeed())
		expectNRC(u.probeRoutine(ctx), uds.SecurityAccessDenied)
		u.unlock(ctx)
		By("the RAM key is gone, the non-volatile key stays, secure boot ran again")
		erc, _, err := u.GenerateMAC(ctx, p.RAMKey, randomKey())
		Expect(err).NotTo(HaveOccurred())
		Expect(erc).To(Equal(she.KeyEmpty), "GenerateMAC with the RAM key after a power cycle")
		u.expectHolds(ctx, auth, ka)
		sreg, err := u.Status(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(sreg&(she.StatusBootFinished|she.StatusBootOK)).To(Equal(she.StatusBootFinished|she.StatusBootOK), "SREG %#02x", byte(sreg))
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
