package ecu

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/shekit/shekit/simulator/keystore"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// DefaultSecurityKey is the SecurityAccess key of a simulated ECU unless configured otherwise:
// the key of level 01/02 is AES-CMAC(security key, seed). It is a demo value.
var DefaultSecurityKey = [16]byte([]byte("SHE-kit demo key"))

// Faults make an ECU misbehave on purpose, so that a conformance suite can show it notices.
type Faults struct {
	WrongProof     bool          // LoadKey answers an M5 with one bit flipped
	NoCounterCheck bool          // the SHE accepts counters that are not greater than the slot's
	AcceptWildcard bool          // the SHE accepts the wildcard UID on WILDCARD keys
	NVMFailure     bool          // every key store write fails: NRC 0x72
	SlowNVM        time.Duration // every key store write takes this long (response pending, 0x78)
	Silent         bool          // the ECU never answers
	BootFailure    bool          // secure boot fails at power-on: boot-protected keys are unavailable
	// LateAnswers holds each answer back this long (past P2) once: the answer to a request is
	// late unless the request before it was of the same kind (service, sub-function, DID or RID)
	// and was answered late, so that a tester that asks again gets a timely answer.
	LateAnswers time.Duration
}

// Config describes one simulated ECU.
type Config struct {
	UID      she.UID
	Serial   string      // DID 0xF18C; default "SIM-" and the UID's last 4 bytes
	Profile  she.Profile // default autosar
	StoreDir string      // key store directory (one file per UID); empty: nothing persists
	// SecurityKey, MaxAttempts, Lockout, S3 and SeedLength default to the diagnostic profile's
	// values (those of the default profile in parentheses).
	SecurityKey *[16]byte     // aes-cmac SecurityAccess key (DefaultSecurityKey)
	NoSecurity  bool          // operations need no SecurityAccess
	MaxAttempts int           // failed SecurityAccess attempts before NRC 0x36 (3)
	Lockout     time.Duration // delay after too many attempts (10 s; NRC 0x37 meanwhile)
	S3          time.Duration // non-default session timeout (5 s)
	// SeedLength is the length of a SecurityAccess seed in bytes, 1–32 (16); the key's length is
	// the profile's whatever it is.
	SeedLength int
	// RelockSameSession makes a request for the session the ECU is already in re-lock
	// SecurityAccess; by default it keeps the unlock. (A change to another session always re-locks.)
	RelockSameSession bool
	// Padding is how the ECU's ISO-TP frames are padded. It belongs to the transport: whoever
	// opens the ECU's transport applies TransportOptions (StartFleet and the simulator's ecu and
	// fleet commands do; New cannot, its transport is already open).
	Padding Padding
	// RNGInitAtBoot makes the host run CMD_INIT_RNG at every power-on, after secure boot, so
	// that SREG has RND_INIT set (0x3E rather than 0x1E after a successful secure boot).
	RNGInitAtBoot bool
	P2, P2Star    time.Duration // announced server times (default: the profile's; 50 ms, 5000 ms)
	PendingAfter  time.Duration // a routine still running after this answers 0x78 (default 25 ms)
	Image         []byte        // simulated firmware image; default derived from the UID
	// InitialMasterKey, when set, is the MASTER_ECU_KEY the ECU leaves the factory with (counter
	// 0, no flags) instead of an empty slot; it then authorizes the first key updates.
	InitialMasterKey *[16]byte
	Faults           Faults
	// DiagProfile is how the ECU is reached and how each SHE operation travels in UDS (default:
	// the built-in profile.Default()). Its SecurityAccess and timing settings fill the fields
	// above left zero; its addressing and link belong to the transport (DiagTransportOptions,
	// DiagFleetIDs).
	DiagProfile *profile.Profile
}

// MaxSeedLength is the longest SecurityAccess seed an ECU may declare.
const MaxSeedLength = 32

func (c *Config) defaults() {
	c.diagDefaults()
	if c.SeedLength == 0 {
		c.SeedLength = 16
	}
	if c.Profile.Name == "" {
		c.Profile = she.ProfileAUTOSAR
	}
	if c.Serial == "" {
		c.Serial = fmt.Sprintf("SIM-%x", c.UID[11:])
	}
	if c.SecurityKey == nil {
		k := DefaultSecurityKey
		c.SecurityKey = &k
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.Lockout == 0 {
		c.Lockout = 10 * time.Second
	}
	if c.S3 == 0 {
		c.S3 = 5 * time.Second
	}
	if c.P2 == 0 {
		c.P2 = uds.DefaultP2
	}
	if c.P2Star == 0 {
		c.P2Star = uds.DefaultP2Star
	}
	if c.PendingAfter == 0 {
		c.PendingAfter = c.P2 / 2
	}
	if c.Image == nil {
		c.Image = FirmwareImage(c.UID)
	}
}

// factoryRoot is the simulation's stand-in for a SHE vendor's factory secrets: an ECU's
// SECRET_KEY, BOOT_MAC_KEY and PRNG seed are CMACs of its UID under it.
var factoryRoot = [16]byte([]byte("SHE-kit factory!"))

func factoryValue(label byte, uid she.UID) [16]byte {
	return she.CMAC(factoryRoot, append([]byte{label}, uid[:]...))
}

// FirmwareImage is the simulated firmware of the ECU with uid: 4 KiB of AES-CTR keystream under
// a key derived from the UID.
func FirmwareImage(uid she.UID) []byte {
	key := factoryValue(0x80, uid)
	b, _ := aes.NewCipher(key[:])
	img := make([]byte, 4096)
	cipher.NewCTR(b, make([]byte, aes.BlockSize)).XORKeyStream(img, img)
	return img
}

// FactoryNVM is a simulated ECU's state as it leaves the SHE factory: SECRET_KEY and a PRNG
// seed, and a BOOT_MAC_KEY with the BOOT_MAC of image so that secure boot succeeds at every
// power-on; every other key empty.
func FactoryNVM(uid she.UID, image []byte) she.NVM {
	nvm := she.NVM{UID: uid, PRNGSeed: factoryValue(0x05, uid)}
	nvm.Slots[she.SecretKey] = she.Slot{Key: factoryValue(0x00, uid), Loaded: true}
	bootKey := factoryValue(0x02, uid)
	nvm.Slots[she.BootMACKey] = she.Slot{Key: bootKey, Counter: 1, Loaded: true}
	nvm.Slots[she.BootMAC] = she.Slot{Key: she.BootMACOf(bootKey, image), Counter: 1, Loaded: true}
	return nvm
}

// ECU is one simulated ECU.
type ECU struct {
	cfg    Config
	engine *she.Engine
	t      isotp.Transport

	session     byte
	lastRequest time.Time
	unlocked    bool
	seed        []byte
	attempts    int
	lockedUntil time.Time
	lateKind    string // the kind of request last answered late (Faults.LateAnswers)

	diag diagIndex // the diagnostic profile's steps
	run  *diagRun  // the operation in progress, if any
}

// New builds the ECU of cfg on transport t: it opens (or creates, in the factory state) the
// key store and powers on (secure boot). Serve then answers requests.
// A SeedLength outside 1–32 is refused.
func New(cfg Config, t isotp.Transport) (*ECU, error) {
	cfg.defaults()
	if cfg.SeedLength < 1 || cfg.SeedLength > MaxSeedLength {
		return nil, fmt.Errorf("ecu: seed length %d, want 1 to %d bytes", cfg.SeedLength, MaxSeedLength)
	}
	nvm := FactoryNVM(cfg.UID, cfg.Image)
	if cfg.InitialMasterKey != nil {
		nvm.Slots[she.MasterECUKey] = she.Slot{Key: *cfg.InitialMasterKey, Loaded: true}
	}
	var store she.Store
	if cfg.StoreDir != "" {
		if err := os.MkdirAll(cfg.StoreDir, 0o700); err != nil {
			return nil, fmt.Errorf("ecu: %w", err)
		}
		f, stored, found, err := keystore.Open(filepath.Join(cfg.StoreDir, cfg.UID.String()+".json"))
		if err != nil {
			return nil, fmt.Errorf("ecu: %w", err)
		}
		if found {
			if stored.UID != cfg.UID {
				return nil, fmt.Errorf("ecu: key store %s belongs to UID %s", f.Path(), stored.UID)
			}
			nvm = stored
		} else if err := f.Save(&nvm); err != nil {
			return nil, fmt.Errorf("ecu: %w", err)
		}
		store = f
	}
	if cfg.Faults.NVMFailure || cfg.Faults.SlowNVM > 0 {
		store = &faultyStore{inner: store, fail: cfg.Faults.NVMFailure, delay: cfg.Faults.SlowNVM}
	}
	e := &ECU{cfg: cfg, engine: she.NewEngine(cfg.Profile, nvm, store), t: t, session: uds.DefaultSession,
		diag: newDiagIndex(cfg.DiagProfile)}
	e.engine.SetDeviations(she.Deviations{SkipCounterCheck: cfg.Faults.NoCounterCheck, IgnoreWildcardFlag: cfg.Faults.AcceptWildcard})
	e.powerOn()
	return e, nil
}

// Engine returns the ECU's SHE.
func (e *ECU) Engine() *she.Engine { return e.engine }

// Config returns the ECU's configuration, defaults filled in.
func (e *ECU) Config() Config { return e.cfg }

// powerOn runs the host's boot: secure boot over the firmware image, then CMD_BOOT_OK when it
// verified, then CMD_INIT_RNG when configured. The SecurityAccess attempt count and a running
// delay are not the boot's business: they survive it.
func (e *ECU) powerOn() {
	img := e.cfg.Image
	if e.cfg.Faults.BootFailure {
		img = append([]byte{}, img...)
		img[len(img)-1] ^= 0x01
	}
	e.engine.SecureBoot(img)
	if e.engine.Status()&she.StatusBootOK != 0 {
		e.engine.BootOK()
	}
	if e.cfg.RNGInitAtBoot {
		e.engine.InitRNG()
	}
	e.session, e.unlocked, e.seed, e.run = uds.DefaultSession, false, nil, nil
}

// faultyStore makes key store writes fail or take time.
type faultyStore struct {
	inner she.Store
	fail  bool
	delay time.Duration
}

func (s *faultyStore) Save(nvm *she.NVM) error {
	time.Sleep(s.delay)
	if s.fail {
		return errors.New("simulated NVM write failure")
	}
	if s.inner == nil {
		return nil
	}
	return s.inner.Save(nvm)
}

// Serve answers requests until ctx ends or the transport closes. On a FunctionalTransport it
// answers functional requests too, on the physical response ID, without the negative responses
// ISO 14229-1 withholds from them (NRC 0x11, 0x12, 0x31, 0x7E, 0x7F).
func (e *ECU) Serve(ctx context.Context) error {
	for {
		req, functional, err := e.receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if isotp.Abandoned(err) {
				continue // a broken request is not answered
			}
			return err
		}
		if e.cfg.Faults.Silent {
			continue
		}
		pending := func() { e.t.Send(ctx, uds.Negative(req[0], uds.ResponsePending)) }
		if resp := e.Handle(req, pending); resp != nil && !(functional && suppressedFunctionally(resp)) {
			if d := e.lateness(req); d > 0 && sleep(ctx, d) != nil {
				return nil
			}
			if err := e.t.Send(ctx, resp); err != nil && ctx.Err() != nil {
				return nil
			}
		}
	}
}

// receive returns the next request and whether it was functionally addressed.
func (e *ECU) receive(ctx context.Context) ([]byte, bool, error) {
	if ft, ok := e.t.(*FunctionalTransport); ok {
		return ft.ReceiveAddressed(ctx)
	}
	req, err := e.t.Receive(ctx)
	return req, false, err
}

// lateness is how long the answer to req is held back (Faults.LateAnswers).
func (e *ECU) lateness(req []byte) time.Duration {
	if e.cfg.Faults.LateAnswers <= 0 {
		return 0
	}
	kind := string(req[:min(len(req), requestKindLength(req[0]))])
	if kind == e.lateKind {
		e.lateKind = ""
		return 0
	}
	e.lateKind = kind
	return e.cfg.Faults.LateAnswers
}

// requestKindLength is how many leading bytes of a request of service sid name its kind.
func requestKindLength(sid byte) int {
	switch sid {
	case uds.ReadDataByIdentifier:
		return 3
	case uds.RoutineControl:
		return 4
	}
	return 2
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// randomSeed returns a fresh SecurityAccess seed of n bytes, never all-zero.
func randomSeed(n int) []byte {
	seed := make([]byte, n)
	rand.Read(seed)
	for bytes.Count(seed, []byte{0}) == len(seed) { // a zero seed means "already unlocked"
		rand.Read(seed)
	}
	return seed
}
