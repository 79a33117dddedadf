// Package station is the supplier's end-of-line station: for each ECU it reads the SHE UID over
// UDS, asks the KMS for the key-update messages M1–M3 of each key, sends them to the ECU's SHE
// (RoutineControl 0xFD10), compares the ECU's proof M4/M5 with the KMS's byte for byte and reports
// the outcome back; optionally it then checks that ECU and KMS agree on each key (key sync).
// Per ECU the KMS's round trips overlap the bus transfers where the protocol allows (see ecuFlow):
// after the master key, the other keys are asked for at once, each goes to the ECU as soon as the
// bus is free, and the reports and syncs follow while the bus carries the next key.
//
// The station never sends the same M1–M3 twice: a retry after a failed injection reports the
// failure and asks the KMS again, which issues a new counter. It takes an ECU's late answer (after
// P2, within P2*) as the ECU's word, and when LoadKey or a sync gets no answer at all it reports
// nothing: the key may be in the ECU, and it reports neither what it did not verify nor, as
// failed, what may have gone in.
package station

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	kms "github.com/shekit/shekit/openapi/kmswire"
	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/uds"
)

// Config describes a station run.
type Config struct {
	KMS  *KMS
	Keys []Key // in provisioning order (ParseKeys)
	Sync bool  // check each injected key with the KMS's KeySyncValue and report the outcome
	// ClusterID and Model complete the EcuID (ClusterID ‖ Model ‖ UID).
	ClusterID [8]byte
	Model     [4]byte
	// SupplierSecretKey is sent with SecOC keys (32 hex digits).
	SupplierSecretKey string
	// Phase, when set, is sent as the requests' Phase (Prod or Dev).
	Phase string
	// SecurityKey unlocks SecurityAccess level 01 (default ecu.DefaultSecurityKey); NoSecurity
	// skips SecurityAccess.
	SecurityKey *[16]byte
	NoSecurity  bool
	Parallel    int // ECUs worked on at once (default 16)
	// Retries is how often a key is tried again after a failure that may pass on a second try:
	// no answer from the KMS or the ECU, NRC busy (0x21) or programming failure (0x72). Default 1;
	// a negative value means none.
	Retries int
	// StepTimeout bounds each request to the KMS or the ECU (default 30 s).
	StepTimeout time.Duration
	// KMSRequests bounds the station's KMS requests in flight across all ECUs (default 64);
	// KMSRequestsPerECU those of one ECU (default 16: an ECU's POSTs all go at once).
	KMSRequests, KMSRequestsPerECU int
	// TesterPresent is how long an ECU's bus may stay idle while its keys are in flight before
	// the station keeps its session with TesterPresent (default 2 s, within the usual S3 of 5 s;
	// negative: never).
	TesterPresent time.Duration
	// Progress, when set, is called after each ECU (from one goroutine at a time).
	Progress func(done, total int, r *ECUResult)

	kmsSlots chan struct{} // the station's KMS requests in flight (Run makes it)
}

// Target is one ECU the station works on.
type Target struct {
	Name   string      // how the summary names it, e.g. its CAN IDs
	Client *ecu.Client // its diagnostic interface
}

// Run provisions every target and returns the summary. It stops early only when ctx ends.
func Run(ctx context.Context, cfg Config, targets []Target) *Summary {
	if cfg.Parallel <= 0 {
		cfg.Parallel = 16
	}
	if cfg.Retries == 0 {
		cfg.Retries = 1
	}
	if cfg.StepTimeout <= 0 {
		cfg.StepTimeout = 30 * time.Second
	}
	if cfg.TesterPresent == 0 {
		cfg.TesterPresent = 2 * time.Second
	}
	if cfg.KMSRequests <= 0 {
		cfg.KMSRequests = 64
	}
	if cfg.KMSRequestsPerECU <= 0 {
		cfg.KMSRequestsPerECU = 16
	}
	cfg.kmsSlots = make(chan struct{}, cfg.KMSRequests)
	if cfg.SecurityKey == nil {
		k := ecu.DefaultSecurityKey
		cfg.SecurityKey = &k
	}
	start := time.Now()
	sum := &Summary{Started: start.UTC(), ECUs: make([]ECUResult, len(targets))}
	next := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	for range min(cfg.Parallel, len(targets)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := &sum.ECUs[i]
				provisionECU(ctx, &cfg, targets[i], r)
				mu.Lock()
				done++
				if cfg.Progress != nil {
					cfg.Progress(done, len(targets), r)
				}
				mu.Unlock()
			}
		}()
	}
	for i := range targets {
		next <- i
	}
	close(next)
	wg.Wait()
	sum.Seconds = time.Since(start).Seconds()
	sum.count()
	return sum
}

// step runs f with the per-step timeout.
func step[T any](ctx context.Context, cfg *Config, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.StepTimeout)
	defer cancel()
	return f(ctx)
}

// within runs f with the per-step timeout.
func within(ctx context.Context, cfg *Config, f func(context.Context) error) error {
	_, err := step(ctx, cfg, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

// provisionECU works through one ECU: prepare, UID, then each key.
func provisionECU(ctx context.Context, cfg *Config, t Target, r *ECUResult) {
	start := time.Now()
	before := t.Client.Stats()
	defer func() {
		r.Seconds = time.Since(start).Seconds()
		after := t.Client.Stats()
		r.LateAnswers, r.DiscardedAnswers = int(after.Late-before.Late), int(after.Discarded-before.Discarded)
	}()
	r.Name = t.Name
	t.Client.SetLateAnswers(true) // a late answer is the ECU's word all the same
	var key *[16]byte
	if !cfg.NoSecurity {
		key = cfg.SecurityKey
	}
	if err := within(ctx, cfg, func(ctx context.Context) error { return t.Client.Prepare(ctx, key) }); err != nil {
		r.Error = "session and SecurityAccess: " + describeECUError(err)
		return
	}
	uid, err := step(ctx, cfg, t.Client.UID)
	if err != nil {
		r.Error = "reading the UID (DID 0xFD00): " + describeECUError(err)
		return
	}
	id := kms.EcuID{ClusterID: cfg.ClusterID, Model: cfg.Model, UID: uid}
	r.UID, r.EcuID = hex.EncodeToString(uid[:]), id.String()
	f := &ecuFlow{ctx: ctx, cfg: cfg, c: t.Client, id: id, perECU: make(chan struct{}, cfg.KMSRequestsPerECU)}
	r.Keys = f.provisionKeys(cfg.Keys)
	r.OK = true
	for _, kr := range r.Keys {
		if kr.Outcome != Injected || (kr.Sync != nil && kr.Sync.Outcome != Verified) {
			r.OK = false
		}
	}
}

// noAnswer reports whether err says the ECU did not answer in time (while ctx still runs).
func noAnswer(ctx context.Context, err error) bool {
	return ctx.Err() == nil && (errors.Is(err, uds.ErrTimeout) || errors.Is(err, context.DeadlineExceeded))
}

// retryable reports whether a failed step may pass when tried again with fresh messages.
func retryable(err error) bool {
	var se *ServerError
	var nr *uds.NegativeResponseError
	switch {
	case errors.As(err, &se):
		return true
	case errors.As(err, &nr):
		return nr.NRC == uds.BusyRepeatRequest || nr.NRC == uds.GeneralProgrammingFailure
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, uds.ErrTimeout)
}

// describeECUError says what went wrong on the diagnostic interface, naming the NRC.
func describeECUError(err error) string {
	var nr *uds.NegativeResponseError
	if errors.As(err, &nr) {
		return fmt.Sprintf("NRC 0x%02X %v", byte(nr.NRC), nr.NRC)
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, uds.ErrTimeout) {
		return "no answer in time"
	}
	return err.Error()
}

// syncKey asks the KMS for a challenge and the value the slot's key must give for it, has the
// ECU check it, and reports the outcome.
func (f *ecuFlow) syncKey(k Key) *SyncResult {
	sr := &SyncResult{}
	t0 := time.Now()
	defer func() { sr.Seconds = time.Since(t0).Seconds() }()
	var rec kms.Records
	err := f.kmsCall(func(ctx context.Context) (err error) {
		rec, err = f.cfg.KMS.SyncValue(ctx, kms.SyncRequest{ProvisioningType: string(k.Type), EcuID: f.id.String(), KeyID: k.APIKeyID()})
		return err
	})
	if err != nil {
		sr.Outcome, sr.Message = Failed, err.Error()
		return sr
	}
	challenge, err1 := hex16(rec.Challenge)
	want, err2 := hex16(rec.KeySyncValue)
	if err := errors.Join(err1, err2); err != nil {
		sr.Outcome, sr.Message = Failed, "KMS answer: "+err.Error()
		return sr
	}
	v := f.checkSync(k, challenge, want)
	if v.noAnswer != "" {
		sr.Outcome, sr.Message = NoAnswer, v.noAnswer
		return sr
	}
	rerr := f.report(kms.PathKeySync, k, v.failure, v.answer)
	var refused *RefusedError
	if v.failure == "" && errors.As(rerr, &refused) && refused.Reason == "KEYSYNC_MISMATCH" {
		// The KMS checked the GET_ID answer the station could not check itself, and it does not match.
		v.failure = fmt.Sprintf("GetID: MAC mismatch (SREG %#02x), checked by the KMS: %s", byte(v.sreg), refused.Message)
		rerr = f.report(kms.PathKeySync, k, v.failure, "")
	}
	switch {
	case v.failure != "":
		sr.Outcome, sr.Message = Mismatch, v.failure
	case rerr != nil:
		sr.Outcome, sr.Message = Unreported, "verified, but reporting it failed: "+rerr.Error()
	default:
		sr.Outcome, sr.Message = Verified, v.note
	}
	return sr
}

// checkSync has the ECU check the KeySyncValue want of key k over challenge, when the bus is free.
func (f *ecuFlow) checkSync(k Key, challenge, want [16]byte) syncVerdict {
	if err := f.bus.acquire(f.ctx, syncAfter); err != nil {
		return syncVerdict{noAnswer: "stopped while waiting for the bus: " + err.Error() + "; not reported"}
	}
	defer f.bus.release()
	if k.Type == kms.EcuMasterKey { // not a MAC key: GET_ID's MAC is made with it
		return checkGetID(f.ctx, f.cfg, f.c, f.id, challenge, want)
	}
	return checkVerifyMAC(f.ctx, f.cfg, f.c, k, challenge, want)
}

// syncVerdict is what the ECU's check of a KeySyncValue came to: noAnswer when the ECU did not
// answer (nothing is reported), failure when it did not give the value, else the GET_ID answer a
// master key's report carries (checked by the KMS) and a note for the summary.
type syncVerdict struct {
	noAnswer, failure string
	answer, note      string
	sreg              she.Status
}

// checkGetID runs GET_ID with the sync's challenge. With the SREG the KMS assumed (0x1E) the
// station compares the MAC itself and reports Success with an empty message; with another SREG
// (RND_INIT set at boot, say) it cannot, and its Success report carries the ECU's answer, whose
// MAC the KMS checks over the SREG the ECU returned.
func checkGetID(ctx context.Context, cfg *Config, c *ecu.Client, id kms.EcuID, challenge, want [16]byte) (v syncVerdict) {
	res, err := step(ctx, cfg, func(ctx context.Context) (ecu.GetIDResult, error) { return c.GetID(ctx, challenge) })
	switch {
	case noAnswer(ctx, err):
		v.noAnswer = "GetID: no answer in time, not even late; not reported"
	case err != nil:
		v.failure = "GetID: " + describeECUError(err)
	case res.ERC != she.NoError:
		v.failure = fmt.Sprintf("GetID: SHE error code 0x%02X %v", byte(res.ERC), res.ERC)
	case res.UID != id.UID:
		v.failure = fmt.Sprintf("GetID: UID %x, want %x", res.UID, id.UID)
	case res.SREG == kms.SyncSREG && subtle.ConstantTimeCompare(res.MAC[:], want[:]) != 1:
		v.failure = fmt.Sprintf("GetID: MAC mismatch: ECU %x, KMS %x (SREG %#02x)", res.MAC, want, byte(res.SREG))
	case res.SREG != kms.SyncSREG:
		v.sreg = res.SREG
		v.answer = kms.GetIDAnswer{Challenge: challenge, SREG: res.SREG, MAC: res.MAC}.String()
		v.note = fmt.Sprintf("GetID SREG %#02x: the MAC checked by the KMS", byte(res.SREG))
	}
	return v
}

// checkVerifyMAC has the ECU verify the KeySyncValue of a MAC key over the challenge.
func checkVerifyMAC(ctx context.Context, cfg *Config, c *ecu.Client, k Key, challenge, want [16]byte) (v syncVerdict) {
	type verify struct {
		erc she.ERC
		ok  bool
	}
	res, err := step(ctx, cfg, func(ctx context.Context) (verify, error) {
		erc, ok, err := c.VerifyMAC(ctx, k.KeyID, challenge, want)
		return verify{erc, ok}, err
	})
	switch {
	case noAnswer(ctx, err):
		v.noAnswer = "VerifyMAC: no answer in time, not even late; not reported"
	case err != nil:
		v.failure = "VerifyMAC: " + describeECUError(err)
	case res.erc != she.NoError:
		v.failure = fmt.Sprintf("VerifyMAC: SHE error code 0x%02X %v", byte(res.erc), res.erc)
	case !res.ok:
		v.failure = "VerifyMAC: the ECU's key does not give the KMS's KeySyncValue"
	}
	return v
}

func hex16(s string) ([16]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		return [16]byte{}, fmt.Errorf("%q is not 32 hex digits", s)
	}
	return [16]byte(b), nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
