package conformance_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
)

// ecuVariantEnv names, in a child run of TestECUTeeth, the row of ecuTeeth whose variant every
// simulated ECU of the ecu suite becomes. It is a self-test hook: never set it otherwise.
const ecuVariantEnv = "SHEKIT_ECU_VARIANT"

// ecuVariant is an ECU built independently of the simulator: a UDS-level proxy between the
// tester's transport and a simulated ECU on a bus of its own, which may rewrite requests and
// answers, send requests of its own to the ECU, and keep state where a behaviour needs it.
type ecuVariant struct {
	opts []isotp.Option // the tester-facing transport's options (padding, flow control)
	// serve answers one request of the tester (nil: none); nil passes every request through
	// (p.forward)
	serve   func(p *ecuProxy, ctx context.Context, req []byte) []byte
	delay   time.Duration // every answer is held back this long
	pending bool          // every routine answer follows a response pending (NRC 0x78)
	// keepAlive: while the tester is silent, the proxy keeps the ECU's non-default session
	// alive (TesterPresent every quarter of S3)
	keepAlive bool
}

// simulatedECUTransport is the transport a simulated ECU of the ecu suite answers on: its side of
// h, or, in a child run of TestECUTeeth, its side of a second bus behind the row's proxy.
func simulatedECUTransport(h *vcan.Hub, cfg ecu.Config) (isotp.Transport, error) {
	name := os.Getenv(ecuVariantEnv)
	if name == "" {
		ids := cfg.DiagProfile.Addressing.IDs()
		return isotp.New(h.Connect(vcan.ExactID(ids.Request, ids.Extended)), ids.Response, ids.Request, cfg.TransportOptions()...), nil
	}
	if !ecu.IsDefaultDiagProfile(cfg.DiagProfile) {
		harnessFail("%s: the ECU teeth rows speak the default diagnostic profile, not %s (CONF_DIAG_PROFILE)", ecuVariantEnv, cfg.DiagProfile.Name)
	}
	v, ok := ecuVariantNamed(name)
	if !ok {
		harnessFail("%s: %q is no ECU teeth row", ecuVariantEnv, name)
	}
	return startECUProxy(h, cfg, v)
}

// ecuVariantNamed returns the variant of the ecuTeeth row called name.
func ecuVariantNamed(name string) (ecuVariant, bool) {
	for _, r := range ecuTeeth {
		if r.name == name && r.variant != nil {
			return *r.variant, true
		}
	}
	return ecuVariant{}, false
}

// startECUProxy starts v's proxy on h, in front of a simulated ECU on a bus of its own, and
// returns the transport that ECU answers on. The proxy stops when the current spec ends.
func startECUProxy(h *vcan.Hub, cfg ecu.Config, v ecuVariant) (isotp.Transport, error) {
	et, stop, err := proxiedECUTransport(h, cfg, v)
	if err == nil {
		DeferCleanup(stop)
	}
	return et, err
}

// proxiedECUTransport starts v's proxy on h, in front of a bus of its own, and returns the
// transport on that bus the ECU of cfg answers on, and how to stop the proxy.
func proxiedECUTransport(h *vcan.Hub, cfg ecu.Config, v ecuVariant) (isotp.Transport, func(), error) {
	inner := vcan.NewHub()
	down, err := ecu.Transport(ecu.HubDialer(h), ecu.DefaultResponseID, ecu.DefaultRequestID, v.opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("variant: tester side: %w", err)
	}
	up, err := ecu.Transport(ecu.HubDialer(inner), ecu.DefaultRequestID, ecu.DefaultResponseID)
	if err != nil {
		return nil, nil, fmt.Errorf("variant: ECU side: %w", err)
	}
	et, err := ecu.Transport(ecu.HubDialer(inner), ecu.DefaultResponseID, ecu.DefaultRequestID)
	if err != nil {
		return nil, nil, fmt.Errorf("variant: the ECU: %w", err)
	}
	p := newECUProxy(down, up, cfg, v)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.serve(ctx) }()
	return et, func() { cancel(); down.Close(); up.Close(); <-done; inner.Close() }, nil
}

// ecuProxy is a running variant: what it has told the tester, what it knows of the ECU behind
// it, and the keys it learnt from the updates it passed on.
type ecuProxy struct {
	down, up isotp.Transport
	v        ecuVariant
	profile  she.Profile
	secKey   [16]byte
	s3       time.Duration

	// the ECU's session and SecurityAccess state, as the exchanges show them
	ecuSession  byte
	ecuUnlocked bool
	lastECU     time.Time
	// the SecurityAccess state the tester was told (seed translation)
	testerSeed, ecuSeed []byte  // the seed the tester got and the ECU's behind it
	keptSeed            []byte  // a seed a wrong key did not use up
	fakeSeed            []byte  // a seed the proxy made up (the ECU gave none)
	wrongKeys           int     // wrong keys since the last delay (seedRules.countAllWrongKeys)
	maxAttempts         int     // the ECU's wrong keys in a row before its delay
	sticky              bool    // a variant's pending state change (an unlock it keeps)
	forgetLockout       bool    // an ECUReset ended the delay (seedRules.forgetLockout)
	ramLoad             []byte  // the last LoadKey request that loaded the RAM key
	ecuUID              she.UID // as the ECU reported it (DID 0xFD00)
	// the slots' keys and counters, learnt from the accepted updates
	keys     map[she.KeyID][16]byte
	counters map[she.KeyID]uint32
}

// newECUProxy is the proxy of v between down (facing the tester) and up (facing the ECU of cfg).
func newECUProxy(down, up isotp.Transport, cfg ecu.Config, v ecuVariant) *ecuProxy {
	p := &ecuProxy{down: down, up: up, v: v, profile: cfg.Profile, secKey: confKeys.securityKey, s3: cfg.S3,
		ecuSession: uds.DefaultSession, lastECU: time.Now(), keys: map[she.KeyID][16]byte{}, counters: map[she.KeyID]uint32{}}
	if cfg.SecurityKey != nil {
		p.secKey = *cfg.SecurityKey
	}
	if p.maxAttempts = cfg.MaxAttempts; p.maxAttempts == 0 {
		p.maxAttempts = 3
	}
	if p.s3 == 0 {
		p.s3 = 5 * time.Second
	}
	if cfg.InitialMasterKey != nil {
		p.keys[she.MasterECUKey] = *cfg.InitialMasterKey
	}
	return p
}

// serve answers the tester's requests until ctx ends or a transport closes.
func (p *ecuProxy) serve(ctx context.Context) {
	for {
		req, err := p.receive(ctx)
		if err != nil {
			if ctx.Err() != nil || !isotp.Abandoned(err) {
				return
			}
			continue
		}
		if len(req) == 0 {
			continue
		}
		var resp []byte
		if p.v.serve != nil {
			resp = p.v.serve(p, ctx, req)
		} else {
			resp = p.forward(ctx, req)
		}
		if resp != nil {
			p.reply(ctx, req, resp)
		}
	}
}

// receive waits for the tester's next request; with keepAlive it sends TesterPresent to the ECU
// every quarter of S3 meanwhile, while the ECU is in a non-default session.
func (p *ecuProxy) receive(ctx context.Context) ([]byte, error) {
	for {
		if !p.v.keepAlive || p.ecuSession == uds.DefaultSession {
			return p.down.Receive(ctx)
		}
		rctx, cancel := context.WithTimeout(ctx, p.s3/4)
		req, err := p.down.Receive(rctx)
		cancel()
		if err == nil || ctx.Err() != nil || rctx.Err() == nil {
			return req, err
		}
		p.inject(ctx, uds.TesterPresent, 0x00)
	}
}

// reply sends resp to the tester, as late and with as many response pending as the variant says.
func (p *ecuProxy) reply(ctx context.Context, req, resp []byte) {
	if p.v.pending && req[0] == uds.RoutineControl {
		p.down.Send(ctx, uds.Negative(req[0], uds.ResponsePending))
		proxySleep(ctx, 10*time.Millisecond)
	}
	if p.v.delay > 0 {
		proxySleep(ctx, p.v.delay)
	}
	p.down.Send(ctx, resp)
}

// proxySleep waits d or until ctx ends.
func proxySleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// forward passes req to the ECU, relays its responses pending to the tester and returns its
// final answer (nil: none).
func (p *ecuProxy) forward(ctx context.Context, req []byte) []byte {
	return p.exchange(ctx, req, true)
}

// inject sends a request of the proxy's own to the ECU and returns its final answer.
func (p *ecuProxy) inject(ctx context.Context, req ...byte) []byte {
	return p.exchange(ctx, req, false)
}

// ecuAnswerBound bounds the wait for the ECU behind a proxy (a suppressed positive answer is
// awaited for a shorter time).
const (
	ecuAnswerBound     = 10 * time.Second
	ecuSuppressedBound = 300 * time.Millisecond
)

// exchange sends req to the ECU and waits for its final answer, passing responses pending on to
// the tester when relay is set, and learns from the exchange.
func (p *ecuProxy) exchange(ctx context.Context, req []byte, relay bool) []byte {
	if p.ecuSession != uds.DefaultSession && time.Since(p.lastECU) > p.s3 {
		p.ecuSession, p.ecuUnlocked = uds.DefaultSession, false // S3 expired
	}
	p.lastECU = time.Now()
	if p.up.Send(ctx, req) != nil {
		return nil
	}
	suppressed := uds.SuppressesPositiveResponse(req)
	bound := ecuAnswerBound
	if suppressed {
		bound = ecuSuppressedBound
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, bound)
		resp, err := p.up.Receive(rctx)
		cancel()
		if err != nil {
			if suppressed && ctx.Err() == nil { // taken, its positive answer suppressed
				p.learn(req, uds.Positive(req[0], req[1]&^uds.SuppressPositiveResponse))
			}
			return nil
		}
		if len(resp) == 3 && resp[0] == uds.NegativeResponse && uds.NRC(resp[2]) == uds.ResponsePending {
			if relay {
				p.down.Send(ctx, resp)
			}
			bound = ecuAnswerBound
			continue
		}
		p.lastECU = time.Now()
		p.learn(req, resp)
		return resp
	}
}

// learn follows the ECU's session and SecurityAccess state and the keys of its slots.
func (p *ecuProxy) learn(req, resp []byte) {
	if len(req) < 2 || !uds.IsPositive(resp, req[0]) {
		return
	}
	sub := req[1] &^ uds.SuppressPositiveResponse
	switch req[0] {
	case uds.DiagnosticSessionControl:
		if sub != p.ecuSession {
			p.ecuUnlocked = false
		}
		p.ecuSession = sub
	case uds.ECUReset:
		p.ecuSession, p.ecuUnlocked = uds.DefaultSession, false
	case uds.SecurityAccess:
		if sub == 0x02 {
			p.ecuUnlocked = true
		}
	case uds.ReadDataByIdentifier:
		if len(resp) == 3+15 && uint16(resp[1])<<8|uint16(resp[2]) == ecu.DIDUID {
			p.ecuUID = she.UID(resp[3:])
		}
	case uds.RoutineControl:
		if isLoadKey(req) && len(resp) > 4 && she.ERC(resp[4]) == she.NoError {
			if o := p.open(req); o.M3Valid {
				p.keys[o.KeyID], p.counters[o.KeyID] = o.NewKey, o.Counter
			}
		}
	}
}

// open decrypts a LoadKey request's M1–M3 with the key the proxy knows for its AuthID.
func (p *ecuProxy) open(req []byte) she.Opened {
	in := req[4:]
	m1 := [16]byte(in[:16])
	return she.OpenM1M3(p.keyOf(she.KeyID(m1[15]&0xF)), m1, [32]byte(in[16:48]), [16]byte(in[48:64]))
}

// keyOf is the key of slot id as the proxy knows it (the profile's empty value when none was
// loaded).
func (p *ecuProxy) keyOf(id she.KeyID) [16]byte {
	if k, ok := p.keys[id]; ok {
		return k
	}
	return p.profile.EmptyKey
}

// isLoadKey reports whether req is a whole LoadKey request.
func isLoadKey(req []byte) bool {
	return len(req) == 4+64 && req[0] == uds.RoutineControl && req[1] == 0x01 && req[2] == 0xFD && req[3] == 0x10
}

// isRoutine reports whether req starts routine rid.
func isRoutine(req []byte, rid uint16) bool {
	return len(req) >= 4 && req[0] == uds.RoutineControl && req[1]&^uds.SuppressPositiveResponse == 0x01 &&
		uint16(req[2])<<8|uint16(req[3]) == rid
}

// isRequest reports whether req is exactly sid followed by data.
func isRequest(req []byte, sid byte, data ...byte) bool {
	return bytes.Equal(req, append([]byte{sid}, data...))
}

// isNRC reports whether resp is the negative answer nrc.
func isNRC(resp []byte, nrc uds.NRC) bool {
	return len(resp) == 3 && resp[0] == uds.NegativeResponse && uds.NRC(resp[2]) == nrc
}

// unlockECU unlocks the ECU's SecurityAccess with the security key (when its session allows).
func (p *ecuProxy) unlockECU(ctx context.Context) error {
	resp := p.inject(ctx, uds.SecurityAccess, 0x01)
	if !uds.IsPositive(resp, uds.SecurityAccess) || len(resp) < 3 {
		return fmt.Errorf("seed: % x", resp)
	}
	if allZeroBytes(resp[2:]) {
		return nil
	}
	key := she.CMAC(p.secKey, resp[2:])
	if resp = p.inject(ctx, append([]byte{uds.SecurityAccess, 0x02}, key[:]...)...); !uds.IsPositive(resp, uds.SecurityAccess) {
		return fmt.Errorf("key: % x", resp)
	}
	return nil
}

// enterSession moves the ECU to session s (a change re-locks it).
func (p *ecuProxy) enterSession(ctx context.Context, s byte) error {
	if resp := p.inject(ctx, uds.DiagnosticSessionControl, s); !uds.IsPositive(resp, uds.DiagnosticSessionControl) {
		return fmt.Errorf("session %#02x: % x", s, resp)
	}
	return nil
}

func allZeroBytes(b []byte) bool {
	return bytes.Count(b, []byte{0}) == len(b)
}

// variantSeed is a seed of n bytes, never all-zero (all-zero means "already unlocked").
func variantSeed(n int) []byte {
	s := make([]byte, n)
	for allZeroBytes(s) {
		rand.Read(s)
	}
	return s
}

// seedRules are a variant's SecurityAccess: the proxy gives the tester seeds of its own, checks
// the keys against them and unlocks the ECU with the ECU's seed, so that the ECU stays the
// authority on attempts and delays unless a rule says otherwise.
type seedRules struct {
	seedLen           int  // the tester's seeds (0: as long as the ECU's)
	anyKey            bool // every key is taken for the right one
	keepSeed          bool // a wrong key does not use up the seed
	seedWhileUnlocked bool // a seed request while unlocked answers a fresh seed, not zeros
	forgetLockout     bool // ECUReset ends a running delay: seeds are answered again
	unlockedSeedLen   int  // the all-zero seed while unlocked has this length (0: the tester's seed length)
	countAllWrongKeys bool // a right key does not reset the count of wrong keys
}

// serve serves a SecurityAccess request under r; other requests go to the ECU.
func (r seedRules) serve(p *ecuProxy, ctx context.Context, req []byte) []byte {
	switch {
	case isRequest(req, uds.SecurityAccess, 0x01):
		return r.seed(p, ctx, req)
	case len(req) == 2+16 && req[0] == uds.SecurityAccess && req[1]&^uds.SuppressPositiveResponse == 0x02:
		resp := r.key(p, ctx, req)
		if uds.SuppressesPositiveResponse(req) && uds.IsPositive(resp, uds.SecurityAccess) {
			return nil
		}
		return resp
	}
	resp := p.forward(ctx, req)
	if r.forgetLockout && isRequest(req, uds.ECUReset, 0x01) && uds.IsPositive(resp, uds.ECUReset) {
		p.forgetLockout = true
	}
	return resp
}

func (r seedRules) seed(p *ecuProxy, ctx context.Context, req []byte) []byte {
	p.testerSeed, p.ecuSeed, p.fakeSeed = nil, nil, nil
	resp := p.forward(ctx, req)
	n := r.seedLen
	if isNRC(resp, uds.RequiredTimeDelayNotExpired) && p.forgetLockout {
		p.fakeSeed = variantSeed(max(n, 16))
		return uds.Positive(uds.SecurityAccess, append([]byte{0x01}, p.fakeSeed...)...)
	}
	if !uds.IsPositive(resp, uds.SecurityAccess) || len(resp) < 3 {
		return resp
	}
	p.forgetLockout, p.keptSeed = false, nil
	ecuSeed := resp[2:]
	if n == 0 {
		n = len(ecuSeed)
	}
	if allZeroBytes(ecuSeed) {
		if r.seedWhileUnlocked {
			p.fakeSeed = variantSeed(n)
			return uds.Positive(uds.SecurityAccess, append([]byte{0x01}, p.fakeSeed...)...)
		}
		if r.unlockedSeedLen != 0 {
			n = r.unlockedSeedLen
		}
		return uds.Positive(uds.SecurityAccess, append([]byte{0x01}, make([]byte, n)...)...)
	}
	p.testerSeed, p.ecuSeed = variantSeed(n), append([]byte{}, ecuSeed...)
	return uds.Positive(uds.SecurityAccess, append([]byte{0x01}, p.testerSeed...)...)
}

func (r seedRules) key(p *ecuProxy, ctx context.Context, req []byte) []byte {
	if p.fakeSeed != nil {
		want := she.CMAC(p.secKey, p.fakeSeed)
		p.fakeSeed = nil
		if bytes.Equal(req[2:], want[:]) || r.anyKey {
			return uds.Positive(uds.SecurityAccess, 0x02)
		}
		return uds.Negative(uds.SecurityAccess, uds.InvalidKey)
	}
	if p.testerSeed == nil && r.keepSeed && p.keptSeed != nil {
		resp := p.inject(ctx, uds.SecurityAccess, 0x01)
		if uds.IsPositive(resp, uds.SecurityAccess) && len(resp) > 2 && !allZeroBytes(resp[2:]) {
			p.testerSeed, p.ecuSeed = p.keptSeed, append([]byte{}, resp[2:]...)
		}
	}
	if p.testerSeed == nil {
		return p.forward(ctx, req) // no seed: the ECU's answer (0x24)
	}
	want := she.CMAC(p.secKey, p.testerSeed)
	right := bytes.Equal(req[2:], want[:]) || r.anyKey
	key := she.CMAC(p.secKey, p.ecuSeed)
	if !right {
		key[0] ^= 0xFF
	}
	tried := p.testerSeed
	p.testerSeed, p.ecuSeed = nil, nil
	resp := p.forward(ctx, append([]byte{uds.SecurityAccess, req[1]}, key[:]...)) // the suppress bit as the tester sent it
	if r.keepSeed && isNRC(resp, uds.InvalidKey) {
		p.keptSeed = tried
	}
	if r.countAllWrongKeys {
		resp = p.countWrongKeys(ctx, resp)
	}
	if right {
		p.keptSeed = nil
	}
	return resp
}

// countWrongKeys counts the wrong keys the ECU answered (resp) since its last delay, right keys
// between them or not; at the declared number it makes the ECU start its delay (more wrong keys
// of the proxy's own) and answers NRC 0x36.
func (p *ecuProxy) countWrongKeys(ctx context.Context, resp []byte) []byte {
	switch {
	case isNRC(resp, uds.ExceededNumberOfAttempts):
		p.wrongKeys = 0
	case isNRC(resp, uds.InvalidKey):
		if p.wrongKeys++; p.wrongKeys < p.maxAttempts {
			return resp
		}
		p.wrongKeys = 0
		for range p.maxAttempts {
			seed := p.inject(ctx, uds.SecurityAccess, 0x01)
			if !uds.IsPositive(seed, uds.SecurityAccess) || len(seed) < 3 || allZeroBytes(seed[2:]) {
				break
			}
			key := she.CMAC(p.secKey, seed[2:])
			key[0] ^= 0xFF
			if isNRC(p.inject(ctx, append([]byte{uds.SecurityAccess, 0x02}, key[:]...)...), uds.ExceededNumberOfAttempts) {
				break
			}
		}
		return uds.Negative(uds.SecurityAccess, uds.ExceededNumberOfAttempts)
	}
	return resp
}
