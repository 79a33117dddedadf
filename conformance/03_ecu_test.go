package conformance_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
	"github.com/shekit/shekit/vectors"
)

// simFaults are the fault flags CONF_SIM_FAULT can give every simulated ECU. slow-nvm makes key
// store writes outlast the P2* the ECU announces.
var simFaults = map[string]func(*ecu.Config){
	"wrong-proof":      func(c *ecu.Config) { c.Faults.WrongProof = true },
	"no-counter-check": func(c *ecu.Config) { c.Faults.NoCounterCheck = true },
	"accept-wildcard":  func(c *ecu.Config) { c.Faults.AcceptWildcard = true },
	"nvm-failure":      func(c *ecu.Config) { c.Faults.NVMFailure = true },
	"slow-nvm":         func(c *ecu.Config) { c.P2Star, c.Faults.SlowNVM = 200*time.Millisecond, 2*time.Second },
	"silent":           func(c *ecu.Config) { c.Faults.Silent = true },
	"boot-failure":     func(c *ecu.Config) { c.Faults.BootFailure = true },
}

// simConfig is the configuration of a simulated ECU under test: a fresh UID of the configured
// supplier, the configured profile, security key and SecurityAccess seed length, attempts and
// delay, and CONF_SIM_FAULT.
func simConfig(base ecu.Config) ecu.Config {
	if base.UID == (she.UID{}) {
		base.UID = freshUID()
	}
	p, err := she.ProfileByName(conf.Profile)
	if err != nil {
		harnessFail("CONF_PROFILE: %v", err)
	}
	base.Profile = p
	base.DiagProfile = diag()
	if base.MaxAttempts == 0 {
		base.MaxAttempts = confKeys.ecu.maxAttempts
	}
	if base.Lockout == 0 {
		base.Lockout = confKeys.ecu.lockout
	}
	if base.SeedLength == 0 {
		base.SeedLength = confKeys.ecu.seedLength
	}
	key := confKeys.securityKey
	base.SecurityKey = &key
	if conf.SimFault != "" {
		f, ok := simFaults[conf.SimFault]
		if !ok {
			harnessFail("CONF_SIM_FAULT: %q is not one of the simulator's faults", conf.SimFault)
		}
		f(&base)
	}
	return base
}

// memECU starts a simulated ECU on a fresh in-memory bus, speaking the diagnostic profile, and
// returns a client for it.
func memECU(cfg ecu.Config) *ecu.Client {
	h := vcan.NewHub()
	et, err := simulatedECUTransport(h, cfg) // the ECU's side of h, or a teeth variant's proxy in front of it
	Expect(err).NotTo(HaveOccurred())
	e, err := ecu.New(cfg, et)
	Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(context.Background())
	go e.Serve(ctx)
	p := cfg.DiagProfile
	ct, err := ecu.ProfileTransport(ecu.HubDialer(h), p, p.Addressing.IDs(), simISOTPTimeouts)
	Expect(err).NotTo(HaveOccurred())
	c := ecu.NewProfileClient(ct, p, uds.WithTiming(p.Link.P2, p.Link.P2Star, simMargin))
	DeferCleanup(func() { cancel(); c.Close(); et.Close(); h.Close() })
	return c
}

// simMargin is what the client adds to P2 and P2* for a simulated ECU in this process: a loaded
// machine (the race detector, other builds) can hold the simulator's goroutines back for more than
// the 50 ms a real ECU's tester allows. Lateness of the simulator is not under test here; the
// slow-nvm fault stays well beyond P2* plus this margin.
const simMargin = 500 * time.Millisecond

// simISOTPTimeouts are the N_As, N_Bs and N_Cr of a tester of a simulated ECU in this process,
// for the same reason: a flow control held back a second by a loaded machine is no fault under test.
var simISOTPTimeouts = isotp.WithTimeouts(5*time.Second, 5*time.Second, 5*time.Second)

// ecuAddr is one request:response pair of CONF_ECU_IDS.
type ecuAddr struct {
	request, response uint32
}

// ids are the diagnostic profile's CAN IDs with a's request and response IDs (its address bytes
// stay).
func (a ecuAddr) ids() profile.CANIDs {
	ids := diag().Addressing.IDs()
	ids.Request, ids.Response = a.request, a.response
	ids.Extended = ids.Extended || ecu.Extended(a.request, a.response)
	return ids
}

// configuredECUs reads CONF_ECU_IDS (default: the one ECU of the diagnostic profile's IDs; the
// default profile's is 0x7E0:0x7E8).
func configuredECUs() []ecuAddr {
	ids := conf.ECUIDs
	if ids == "" {
		pid := diag().Addressing.IDs()
		ids = fmt.Sprintf("%#x:%#x", pid.Request, pid.Response)
	}
	var out []ecuAddr
	for pair := range strings.SplitSeq(ids, ",") {
		req, resp, ok := strings.Cut(strings.TrimSpace(pair), ":")
		r1, err1 := strconv.ParseUint(req, 0, 29)
		r2, err2 := strconv.ParseUint(resp, 0, 29)
		if !ok || err1 != nil || err2 != nil {
			harnessFail("CONF_ECU_IDS: %q is not REQUEST:RESPONSE", pair)
		}
		out = append(out, ecuAddr{uint32(r1), uint32(r2)})
	}
	return out
}

// dialECU connects to the ECU at a on the configured interface with the diagnostic profile's
// link, its client adding CONF_TIMING_MARGIN to P2 and P2*.
func dialECU(a ecuAddr) *ecu.Client {
	p, ids := diag(), a.ids()
	var t isotp.Transport
	var err error
	if conf.KernelISOTP {
		t, err = ecu.KernelTransport(conf.CAN, ids.Request, ids.Response, ecu.DiagTesterOptions(p, ids)...)
	} else {
		t, err = ecu.ProfileTransport(ecu.SocketCANDialer(context.Background(), conf.CAN, p), p, ids)
	}
	var c *ecu.Client
	if err == nil {
		c = ecu.NewProfileClient(t, p, uds.WithTiming(p.Link.P2, p.Link.P2Star, confKeys.timingMargin))
	}
	if err != nil {
		harnessFail("CONF_CAN=%s: %v", conf.CAN, err)
	}
	DeferCleanup(c.Close)
	return c
}

// ecuUnderTest is the ECU a test works on and what the suite knows of it.
type ecuUnderTest struct {
	*ecu.Client
	simulated   bool
	master      [16]byte // the MASTER_ECU_KEY, which authorizes the suite's key updates (the profile's value of an empty key while empty)
	masterEmpty bool     // MASTER_ECU_KEY is still empty (factory state)
	counters    *slotCounters
}

// slotCounters are, for each slot of an ECU, the greatest counter the suite has handed out or the
// ECU has taken; and the slot and counter of each update built, by M3.
type slotCounters struct {
	sync.Mutex
	last  map[she.KeyID]uint32
	built map[[16]byte]slotCounter
}

type slotCounter struct {
	id      she.KeyID
	counter uint32
}

func newSlotCounters() *slotCounters {
	return &slotCounters{last: map[she.KeyID]uint32{}, built: map[[16]byte]slotCounter{}}
}

// realECUCounters are those of the configured ECU, shared by every test of the run: a real ECU
// keeps its slots from one test (and one run) to the next.
var realECUCounters = newSlotCounters()

// awaitCounterClock waits, when the ecu suite ends, until the seconds since counterEpoch have
// passed every counter a real ECU has taken in this run, so that the next run's are greater.
func awaitCounterClock() {
	realECUCounters.Lock()
	top := uint32(0)
	for _, c := range realECUCounters.last {
		top = max(top, c)
	}
	realECUCounters.Unlock()
	if top == 0 {
		return
	}
	wait := time.Until(counterEpoch.Add(time.Duration(top+1) * time.Second))
	if wait > 5*time.Minute {
		harnessFail("the ECU's counters reached %d, %v ahead of the clock the next run starts from", top, wait)
	}
	time.Sleep(wait)
}

// counterEpoch is where a real ECU's counters start: a counter is at least the number of seconds
// since then, so that a run's counters are greater than those of any earlier run (README).
var counterEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// nextCounter returns a counter for slot id greater than every one the slot has had: one more than
// the greatest the suite sent it, and on a real ECU at least the seconds since counterEpoch.
func (u *ecuUnderTest) nextCounter(id she.KeyID) uint32 {
	u.counters.Lock()
	defer u.counters.Unlock()
	c := u.counters.last[id] + 1
	if floor := uint32(time.Since(counterEpoch)/time.Second) & she.MaxCounter; !u.simulated && floor > c {
		c = floor
	}
	u.counters.last[id] = c
	return c
}

// built records the slot and counter of an update, and taken that the ECU took the update m.
func (u *ecuUnderTest) built(m she.Messages, id she.KeyID, c uint32) {
	u.counters.Lock()
	defer u.counters.Unlock()
	u.counters.built[m.M3] = slotCounter{id, c}
}

func (u *ecuUnderTest) taken(m she.Messages) {
	u.counters.Lock()
	defer u.counters.Unlock()
	if b, ok := u.counters.built[m.M3]; ok {
		u.counters.last[b.id] = max(u.counters.last[b.id], b.counter)
	}
}

// newECUUnderTest is a fresh simulated ECU (CONF_CAN=mem) or the first configured ECU (on
// CONF_CAN or over CONF_DOIP).
func newECUUnderTest(base ecu.Config) *ecuUnderTest {
	p, err := she.ProfileByName(conf.Profile)
	if err != nil {
		harnessFail("CONF_PROFILE: %v", err)
	}
	if conf.CAN == "mem" {
		u := &ecuUnderTest{Client: memECU(simConfig(base)), simulated: true, master: p.EmptyKey, masterEmpty: true,
			counters: newSlotCounters()}
		if base.InitialMasterKey != nil {
			u.master, u.masterEmpty = *base.InitialMasterKey, false
		}
		return u
	}
	var client *ecu.Client
	if conf.DoIP != "" {
		client = dialDoIPECU(configuredDoIPECUs()[0])
	} else {
		client = dialECU(configuredECUs()[0])
	}
	u := &ecuUnderTest{Client: client, master: p.EmptyKey, masterEmpty: true, counters: realECUCounters}
	if confKeys.masterKey != nil {
		u.master, u.masterEmpty = *confKeys.masterKey, false
	}
	return u
}

// prepared is newECUUnderTest in the extended session with SecurityAccess, and its UID, with a
// MASTER_ECU_KEY that can authorize the suite's updates (masterReady).
func prepared(ctx context.Context) (*ecuUnderTest, she.UID) {
	u, uid := preparedAsIs(ctx)
	u.masterReady(ctx, uid)
	return u, uid
}

// preparedAsIs is newECUUnderTest in the extended session with SecurityAccess, and its UID, its
// MASTER_ECU_KEY as it is.
func preparedAsIs(ctx context.Context) (*ecuUnderTest, she.UID) {
	u := newECUUnderTest(ecu.Config{})
	key := confKeys.securityKey
	ExpectWithOffset(2, u.Prepare(ctx, &key)).To(Succeed(), "extended session and SecurityAccess")
	uid, err := u.UID(ctx)
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	return u, uid
}

// masterReady makes the master key able to authorize other slots' updates. Under csec an empty
// key authorizes only its own first update (README, Profiles): the suite first loads a master key,
// authorized by the empty one (its csec value, all-FF), and authorizes the rest with it. On a real
// ECU that would be for good, so there CONF_ECU_MASTER_KEY must name the key the ECU has.
func (u *ecuUnderTest) masterReady(ctx context.Context, uid she.UID) {
	if conf.Profile != she.ProfileCSEc.Name || !u.masterEmpty {
		return
	}
	if !u.simulated {
		harnessFail("CONF_PROFILE=csec: an empty MASTER_ECU_KEY authorizes only its own first update; load one into the ECU and give it as CONF_ECU_MASTER_KEY")
	}
	master := randomKey()
	u.loadOK(ctx, u.update(uid, she.MasterECUKey, master, u.nextCounter(she.MasterECUKey), 0))
	u.master, u.masterEmpty = master, false
}

// update builds M1–M5 for a new key in slot id of the ECU with uid, authorized by the master key.
func (u *ecuUnderTest) update(uid she.UID, id she.KeyID, newKey [16]byte, counter uint32, flags she.Flags) she.Messages {
	return u.updateBy(uid, id, she.MasterECUKey, u.master, newKey, counter, flags)
}

// updateBy builds M1–M5 for a new key in slot id, authorized by authKey in slot authID.
func (u *ecuUnderTest) updateBy(uid she.UID, id, authID she.KeyID, authKey, newKey [16]byte, counter uint32, flags she.Flags) she.Messages {
	m, err := she.BuildMessages(she.KeyUpdate{UID: uid, KeyID: id, AuthID: authID, AuthKey: authKey,
		NewKey: newKey, Counter: counter, Flags: flags})
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	u.built(m, id, counter)
	return m
}

// load sends m and returns the SHE's answer.
func (u *ecuUnderTest) load(ctx context.Context, m she.Messages) ecu.LoadKeyResult {
	res, err := u.LoadKey(ctx, m.M1, m.M2, m.M3)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "LoadKey")
	if res.ERC == she.NoError {
		u.taken(m)
	}
	return res
}

// loadOK sends m and requires the model's M4 and M5 back.
func (u *ecuUnderTest) loadOK(ctx context.Context, m she.Messages) {
	res := u.load(ctx, m)
	ExpectWithOffset(1, res.ERC).To(Equal(she.NoError))
	ExpectWithOffset(1, hex.EncodeToString(res.M4[:])).To(Equal(hex.EncodeToString(m.M4[:])), "M4")
	ExpectWithOffset(1, hex.EncodeToString(res.M5[:])).To(Equal(hex.EncodeToString(m.M5[:])), "M5")
}

func randomKey() (k [16]byte) {
	rand.Read(k[:])
	return k
}

// loadKeyRecord reads a memory update of she-reference.json.
func loadKeyRecord(id string) (uid she.UID, m she.Messages, newKey [16]byte) {
	u, err := vectors.LoadMemoryUpdate(id)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return u.UID, she.Messages{M1: u.M1, M2: u.M2, M3: u.M3, M4: u.M4, M5: u.M5}, u.NewKey
}

// expectNRC requires err to be a negative response with code nrc.
func expectNRC(err error, nrc uds.NRC) {
	var nr *uds.NegativeResponseError
	ExpectWithOffset(1, errors.As(err, &nr)).To(BeTrue(), "want NRC %v, got %v", nrc, err)
	ExpectWithOffset(1, nr.NRC).To(Equal(nrc))
}

var _ = suite("ecu", "ECU: SHE through UDS", func() {
	AfterAll(awaitCounterClock)
	var ctx context.Context
	BeforeEach(func() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		DeferCleanup(cancel)
	})

	It("enters the extended session and unlocks SecurityAccess with the security key", func() {
		needSecurityAccess()
		session := diag().Operations[profile.LoadKey].Session // default profile: extended
		if session == uds.DefaultSession {
			notApplicable("the diagnostic profile %s (ecu.diag_profile) loads keys in the default session (operations.LoadKey.session)", diag().Name)
		}
		u := newECUUnderTest(ecu.Config{})
		Expect(u.StartSession(ctx, session)).To(Succeed())
		p2, p2Star := u.Timing()
		Expect(p2).To(BeNumerically(">", 0))
		Expect(p2Star).To(BeNumerically(">=", p2))
		Expect(u.Unlock(ctx, diag().Security.Level, func(seed []byte) []byte {
			Expect(seed).To(HaveLen(confKeys.ecu.seedLength), "the declared seed length (CONF_ECU_SEED_LENGTH)")
			return securityKeyFor(seed) // AES-CMAC(security key, seed), or the profile's command
		})).To(Succeed())
	})

	It("reports a 15-byte UID, and SREG with secure boot finished and OK", func() {
		u, uid := prepared(ctx)
		Expect(uid).NotTo(Equal(she.UID{}))
		sreg, err := u.sreg(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(sreg&she.StatusBootFinished).NotTo(BeZero(), "BOOT_FINISHED in SREG %#02x", byte(sreg))
		Expect(sreg&she.StatusBootOK).NotTo(BeZero(), "BOOT_OK in SREG %#02x", byte(sreg))
	})

	It("answers LoadKey with the M4 and M5 of the SHE model", func() {
		u, uid := prepared(ctx)
		id := slotFor(slotLoaded)
		u.loadOK(ctx, u.update(uid, id, randomKey(), u.nextCounter(id), she.KeyUsage))
	})

	It("answers the OEM document's MasterECUKey example with the document's M4 and M5", selfTest, func() {
		if conf.CAN != "mem" {
			notApplicable("a self-test: needs an ECU with the document's UID in the factory state, a simulated one (CONF_CAN=mem)")
		}
		uid, m, master := loadKeyRecord("oem-doc-a-master-ecu-key")
		factory := ecu.Config{UID: uid}
		if conf.Profile == she.ProfileCSEc.Name {
			// The document's update is authorized by an all-zero master key; an empty csec key
			// authorizes as all-FF, so the csec ECU leaves the factory with the all-zero key.
			factory.InitialMasterKey = &[16]byte{}
		}
		u := newECUUnderTest(factory)
		key := confKeys.securityKey
		Expect(u.Prepare(ctx, &key)).To(Succeed())
		u.loadOK(ctx, m)
		By("GetID now answers with the new master key")
		challenge := [16]byte{0xc4}
		id, err := u.GetID(ctx, challenge)
		Expect(err).NotTo(HaveOccurred())
		Expect(id.MAC).To(Equal(independentCMAC(master[:], append(append(challenge[:], uid[:]...), byte(id.SREG)))))
	})

	It("refuses a counter that is not greater than the slot's with ERC_KEY_UPDATE_ERROR", func() {
		u, uid := prepared(ctx)
		id := slotFor(slotStale)
		c := u.nextCounter(id)
		u.loadOK(ctx, u.update(uid, id, randomKey(), c, she.KeyUsage))
		for _, stale := range []uint32{c, c - 1} {
			res := u.load(ctx, u.update(uid, id, randomKey(), stale, she.KeyUsage))
			Expect(res.ERC).To(Equal(she.KeyUpdateError), "counter %d after %d", stale, c)
		}
		u.loadOK(ctx, u.update(uid, id, randomKey(), u.nextCounter(id), she.KeyUsage))
	})

	It("refuses M1–M3 authorized by another key than the master key with ERC_KEY_UPDATE_ERROR", func() {
		u, uid := prepared(ctx)
		wrong := *u
		wrong.master = randomKey()
		res := u.load(ctx, wrong.update(uid, slotFor(slotForeign), randomKey(), u.nextCounter(slotFor(slotForeign)), she.KeyUsage))
		Expect(res.ERC).To(Equal(she.KeyUpdateError))
	})

	It("refuses M1–M3 for another ECU's UID with ERC_KEY_UPDATE_ERROR", func() {
		u, uid := prepared(ctx)
		other := uid
		other[14] ^= 0xFF
		res := u.load(ctx, u.update(other, slotFor(slotForeign), randomKey(), u.nextCounter(slotFor(slotForeign)), she.KeyUsage))
		Expect(res.ERC).To(Equal(she.KeyUpdateError))
	})

	It("takes the wildcard UID for a key whose WILDCARD flag is clear, and refuses it where set", func() {
		u, uid := prepared(ctx)
		clear, set := slotFor(slotNoWildcard), slotFor(slotWildcard)
		u.loadOK(ctx, u.update(uid, clear, randomKey(), u.nextCounter(clear), she.KeyUsage))
		u.loadOK(ctx, u.update(uid, set, randomKey(), u.nextCounter(set), she.KeyUsage|she.Wildcard))
		By("the proof of a wildcard update names the ECU's own UID")
		key := randomKey()
		m := u.update(she.WildcardUID, clear, key, u.nextCounter(clear), she.KeyUsage)
		res := u.load(ctx, m)
		Expect(res.ERC).To(Equal(she.NoError))
		proof := she.VerifyM4M5(key, res.M4, res.M5)
		Expect(proof.M4Valid && proof.M5Valid).To(BeTrue())
		Expect(proof.UID).To(Equal(uid))
		By("WILDCARD set: refused")
		res = u.load(ctx, u.update(she.WildcardUID, set, randomKey(), u.nextCounter(set), she.KeyUsage))
		Expect(res.ERC).To(Equal(she.KeyUpdateError))
	})

	It("refuses updates of a write-protected key with ERC_KEY_WRITE_PROTECTED, and the key stays", func() {
		id, ok := confKeys.ecu.sacrificialSlot()
		if !ok {
			notApplicable("write protection is for good: the declaration names no slot to spend on it (CONF_ECU_SACRIFICIAL_KEY_ID)")
		}
		u, uid := prepared(ctx)
		key := randomKey()
		m := u.update(uid, id, key, u.nextCounter(id), she.KeyUsage|she.WriteProtection)
		res := u.load(ctx, m)
		if res.ERC == she.KeyWriteProtected && !u.simulated {
			observe("slot %#x was write-protected already (by an earlier run): its key is unknown, only the refusal is checked", byte(id))
			res = u.load(ctx, u.update(uid, id, randomKey(), u.nextCounter(id), she.KeyUsage))
			Expect(res.ERC).To(Equal(she.KeyWriteProtected))
			return
		}
		Expect(res.ERC).To(Equal(she.NoError), "loading a write-protected key into the empty or unprotected slot %#x", byte(id))
		Expect([]any{res.M4, res.M5}).To(Equal([]any{m.M4, m.M5}), "M4 and M5")
		By("an update authorized by the master key, with a greater counter: refused")
		res = u.load(ctx, u.update(uid, id, randomKey(), u.nextCounter(id), she.KeyUsage))
		Expect(res.ERC).To(Equal(she.KeyWriteProtected))
		By("an update authorized by the key itself: refused")
		res = u.load(ctx, u.updateBy(uid, id, id, key, randomKey(), u.nextCounter(id), she.KeyUsage))
		Expect(res.ERC).To(Equal(she.KeyWriteProtected))
		By("the slot still holds the write-protected key")
		u.expectHolds(ctx, id, key)
	})

	It("answers GET_ID with CMAC(MASTER_ECU_KEY, challenge | UID | SREG) under a master key the suite has just loaded, all-zero while empty", func() {
		u, uid := preparedAsIs(ctx)
		By("with the master key the ECU has")
		u.expectGetID(ctx, uid)
		if !u.canChangeMaster() {
			notApplicable("CONF_ECU_MASTER_KEY is empty and an empty MASTER_ECU_KEY cannot be restored after a load: declare the ECU's master key to have GET_ID checked under a key the suite loads")
		}
		u.restoreMasterAfter(uid)
		By("with a master key the suite loads, authorized by the current one")
		u.changeMaster(ctx, uid, randomKey())
		u.expectGetID(ctx, uid)
		if !u.simulated {
			By("with the declared master key again")
			u.restoreMaster(ctx, uid)
			u.expectGetID(ctx, uid)
		}
	})

	It("verifies and generates MACs with a loaded MAC key (VerifyMAC, GenerateMAC)", func() {
		u, uid := prepared(ctx)
		id := slotFor(slotMAC)
		key := randomKey()
		u.loadOK(ctx, u.update(uid, id, key, u.nextCounter(id), she.KeyUsage))
		msg := randomKey()
		mac := independentCMAC(key[:], msg[:])
		erc, verified, err := u.VerifyMAC(ctx, id, msg, mac)
		Expect(err).NotTo(HaveOccurred())
		Expect([]any{erc, verified}).To(Equal([]any{she.NoError, true}))
		mac[15] ^= 0x01
		erc, verified, err = u.VerifyMAC(ctx, id, msg, mac)
		Expect(err).NotTo(HaveOccurred())
		Expect([]any{erc, verified}).To(Equal([]any{she.NoError, false}), "a MAC one bit off")
		erc, got, err := u.GenerateMAC(ctx, id, msg)
		Expect(err).NotTo(HaveOccurred())
		Expect(erc).To(Equal(she.NoError))
		Expect(got).To(Equal(independentCMAC(key[:], msg[:])))
	})

	It("answers each negative response code of the diagnostic profile where it applies", func() {
		u := newECUUnderTest(ecu.Config{})
		do := func(req ...byte) error { _, err := u.Do(ctx, req); return err }
		sec := diag().Security
		Expect(u.StartSession(ctx, uds.DefaultSession)).To(Succeed(), "an ECU may still be in another session")
		expectNRC(do(0x85), uds.ServiceNotSupported)
		expectNRC(do(0x10, 0x7F), uds.SubFunctionNotSupported)
		expectNRC(do(0x22, 0xFD), uds.IncorrectMessageLengthOrInvalidFormat)
		expectNRC(do(unusedIDRequest(profile.ReadDID, 0x1234)...), uds.RequestOutOfRange)
		if sec.Algorithm != profile.AlgorithmNone {
			expectNRC(do(0x27, sec.Level), uds.ServiceNotSupportedInActiveSession)
		}
		expectNRC(do(0x11, 0x03), uds.SubFunctionNotSupported)
		lk := diag().Operations[profile.LoadKey] // default profile: the extended session, secured
		Expect(u.StartSession(ctx, lk.Session)).To(Succeed())
		expectNRC(do(0x11, 0x03), uds.SubFunctionNotSupported)
		if lk.Security {
			expectNRC(do(diagLoadKeyRequest(0)...), uds.SecurityAccessDenied)
		}
		if sec.Algorithm != profile.AlgorithmNone && lk.Session != uds.DefaultSession {
			expectNRC(do(append([]byte{0x27, sec.Level + 1}, make([]byte, sec.KeyLength)...)...), uds.RequestSequenceError)
		}
	})

	It("answers a routine with a wrong-length record with NRC 0x13 and an unknown routine with NRC 0x31", func() {
		u, _ := prepared(ctx)
		By("LoadKey's first request that carries fields, a byte short (the steps before it as they are)")
		for _, st := range diag().Operations[profile.LoadKey].Steps {
			req, err := st.EncodeRequest(zeroValues(st.Request))
			Expect(err).NotTo(HaveOccurred())
			if len(st.Request) == 0 {
				_, err = u.Do(ctx, req)
				Expect(err).NotTo(HaveOccurred(), "% X", req)
				continue
			}
			_, err = u.Do(ctx, req[:len(req)-1])
			expectNRC(err, uds.IncorrectMessageLengthOrInvalidFormat)
			break
		}
		op, st := identifiedStep()
		if st == nil {
			By("the profile has no routine or written data identifier: no unknown one to send")
			return
		}
		By(fmt.Sprintf("an identifier the profile does not have, for %s's %s", op.Name, st.Service))
		Expect(u.Enter(ctx, op.Name)).To(Succeed(), "%s's session and SecurityAccess", op.Name)
		_, err := u.Do(ctx, unusedIDRequest(st.Service, st.ID))
		expectNRC(err, uds.RequestOutOfRange)
	})

	It("keeps P2 and P2*: LoadKey, which writes the key store, answers in time (with response pending if needed)", func() {
		u, uid := prepared(ctx)
		p2, p2Star := u.Timing()
		m := u.update(uid, slotFor(slotTiming), randomKey(), u.nextCounter(slotFor(slotTiming)), she.KeyUsage)
		start := time.Now()
		res, err := u.LoadKey(ctx, m.M1, m.M2, m.M3)
		Expect(err).NotTo(HaveOccurred(), "no answer within P2 = %v, or no final answer within P2* = %v after response pending", p2, p2Star)
		Expect(res.ERC).To(Equal(she.NoError))
		Expect(time.Since(start)).To(BeNumerically("<", p2+p2Star))
	})

	It("carries ISO-TP messages of 4095 bytes: a LoadKey of that length is answered with NRC 0x13", func() {
		u, _ := prepared(ctx)
		req := diagLoadKeyRequest(4095) // default profile: 31 01 FD 10 and 4091 zeros
		_, err := u.Do(ctx, req)
		expectNRC(err, uds.IncorrectMessageLengthOrInvalidFormat)
	})
})
