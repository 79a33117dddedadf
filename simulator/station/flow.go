package station

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"
	"time"

	kms "github.com/shekit/shekit/openapi/kmswire"
	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
)

// ecuFlow is one ECU's keys in flight. The master key goes first on its own: its POST, its
// LoadKey and its PUT, since it authorizes the others. Then every other key runs at once in its
// own goroutine: its POST (the KMS requests bounded per ECU and across the station), its LoadKey
// as soon as the bus is free (one UDS conversation at a time, LoadKeys before syncs), its PUT
// while the bus carries the next key, and with sync its sync POST, check and PUT. A key's steps
// keep their order: never a PUT before the LoadKey's answer is verified, never a sync before the
// injection is reported. The ECU is done when every key's last report is answered.
type ecuFlow struct {
	ctx    context.Context
	cfg    *Config
	c      *ecu.Client
	id     kms.EcuID
	bus    busLock
	perECU chan struct{} // the ECU's KMS requests in flight
}

// provisionKeys provisions keys on the ECU and returns their results in the order of keys.
func (f *ecuFlow) provisionKeys(keys []Key) []KeyResult {
	f.bus.used = time.Now()
	if f.cfg.TesterPresent > 0 {
		stop, stopped := make(chan struct{}), make(chan struct{})
		go func() { defer close(stopped); f.keepSession(stop) }()
		defer func() { close(stop); <-stopped }()
	}
	results := make([]KeyResult, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		injected := make(chan struct{})
		wg.Go(func() { results[i] = f.provisionKey(k, func() { close(injected) }) })
		if k.Type == kms.EcuMasterKey {
			<-injected // the keys it authorizes wait for its report
		}
	}
	wg.Wait()
	return results
}

// keepSession sends TesterPresent (no answer wanted) whenever the bus has been idle for
// cfg.TesterPresent, until stop: the KMS's round trips may take longer than the ECU's S3, and
// the session and SecurityAccess would lapse between two conversations. It looks twice per
// period, so that the session never goes more than 1.5 periods without a request.
func (f *ecuFlow) keepSession(stop <-chan struct{}) {
	tick := time.NewTicker(f.cfg.TesterPresent / 2)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-f.ctx.Done():
			return
		case <-tick.C:
		}
		if f.bus.acquireIdle(f.cfg.TesterPresent) {
			within(f.ctx, f.cfg, func(ctx context.Context) error { return f.c.TesterPresent(ctx, true) })
			f.bus.release()
		}
	}
}

// kmsCall runs one KMS request within the per-ECU and the station's bounds and the step timeout.
func (f *ecuFlow) kmsCall(call func(context.Context) error) error {
	for _, slots := range []chan struct{}{f.perECU, f.cfg.kmsSlots} {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-f.ctx.Done():
			return f.ctx.Err()
		}
	}
	return within(f.ctx, f.cfg, call)
}

// onBus runs one UDS conversation when the bus is the caller's, within the step timeout.
func onBus[T any](f *ecuFlow, prio int, conv func(context.Context) (T, error)) (T, error) {
	if err := f.bus.acquire(f.ctx, prio); err != nil {
		var zero T
		return zero, err
	}
	defer f.bus.release()
	return step(f.ctx, f.cfg, conv)
}

// provisionKey injects one key, retrying with fresh messages where that is safe, calls injected
// when the injection is settled, then syncs the key if it went in.
func (f *ecuFlow) provisionKey(k Key, injected func()) KeyResult {
	kr := KeyResult{Type: string(k.Type), KeyID: k.APIKeyID()}
	for attempt := 0; attempt <= max(f.cfg.Retries, 0); attempt++ {
		kr.Attempts = attempt + 1
		err := f.injectOnce(k, &kr)
		if err == nil || !retryable(err) || f.ctx.Err() != nil {
			break
		}
	}
	injected()
	if kr.Outcome == Injected && f.cfg.Sync {
		kr.Sync = f.syncKey(k)
	}
	return kr
}

// issue POSTs for key k's M1–M5. It adds the time to kr, and on failure sets kr's outcome.
func (f *ecuFlow) issue(k Key, kr *KeyResult) (she.Messages, error) {
	req := kms.ProvisionRequest{ProvisioningType: string(k.Type), EcuID: f.id.String(), KeyID: k.APIKeyID(), Phase: f.cfg.Phase}
	if k.Type == kms.SecOCKey {
		req.SupplierSecretKey = f.cfg.SupplierSecretKey
	}
	t0 := time.Now()
	var rec kms.Records
	err := f.kmsCall(func(ctx context.Context) (err error) { rec, err = f.cfg.KMS.Provision(ctx, req); return err })
	kr.Timings.KMS += ms(time.Since(t0))
	if err != nil {
		kr.Outcome, kr.Message = Refused, err.Error()
		return she.Messages{}, err
	}
	m, err := rec.Messages()
	if err != nil {
		kr.Outcome, kr.Message = Refused, "KMS answer: "+err.Error()
		return she.Messages{}, err
	}
	kr.M1 = rec.M1
	return m, nil
}

// injectOnce is one attempt: POST, LoadKey, compare, PUT. It fills kr and returns the error
// that decided a failed attempt.
func (f *ecuFlow) injectOnce(k Key, kr *KeyResult) error {
	m, err := f.issue(k, kr)
	if err != nil {
		return err
	}
	var loadKeyTime time.Duration
	res, err := onBus(f, loadKeyFirst, func(ctx context.Context) (ecu.LoadKeyResult, error) {
		defer func(t0 time.Time) { loadKeyTime = time.Since(t0) }(time.Now())
		return f.c.LoadKey(ctx, m.M1, m.M2, m.M3)
	})
	kr.Timings.ECU += ms(loadKeyTime)
	if noAnswer(f.ctx, err) {
		// The key may or may not be in the ECU: nothing is reported, and the issue stays pending
		// at the KMS (a new POST supersedes it).
		kr.Outcome, kr.Message = NoAnswer, "LoadKey: no answer in time, not even late; not reported"
		return err
	}
	failure := loadKeyFailure(res, err, m)
	t0 := time.Now()
	rerr := f.report(kms.PathProvisioning, k, failure, "")
	kr.Timings.Report += ms(time.Since(t0))
	switch {
	case failure != "":
		kr.Outcome, kr.Message = Failed, failure
		if err == nil {
			err = errors.New(failure)
		}
		if rerr != nil {
			kr.Message += "; reporting it: " + rerr.Error()
		}
		return err
	case rerr != nil:
		kr.Outcome, kr.Message = Unreported, "injected, but reporting it failed: "+rerr.Error()
		return nil // the key is in the ECU: trying again would only move it on
	}
	kr.Outcome, kr.Message = Injected, ""
	return nil
}

// loadKeyFailure says why a LoadKey that was answered did not inject the key the KMS issued as
// m, or "" when the ECU's M4 and M5 are the KMS's.
func loadKeyFailure(res ecu.LoadKeyResult, err error, m she.Messages) string {
	switch {
	case err != nil:
		return "LoadKey: " + describeECUError(err)
	case res.ERC != she.NoError:
		return fmt.Sprintf("LoadKey: SHE error code 0x%02X %v", byte(res.ERC), res.ERC)
	case subtle.ConstantTimeCompare(res.M4[:], m.M4[:]) != 1:
		return fmt.Sprintf("LoadKey: M4 mismatch: ECU %x, KMS %x", res.M4, m.M4)
	case subtle.ConstantTimeCompare(res.M5[:], m.M5[:]) != 1:
		return fmt.Sprintf("LoadKey: M5 mismatch: ECU %x, KMS %x", res.M5, m.M5)
	}
	return ""
}

// report PUTs key k's outcome to path: Success (with message, empty but for a master key's sync),
// or OperationFailed with failure. It tries again after a transport failure (the same report twice
// is harmless: the second finds nothing issued).
func (f *ecuFlow) report(path string, k Key, failure, message string) error {
	r := kms.ReportRequest{ProvisioningType: string(k.Type), EcuID: f.id.String(), ResultStatus: "Success", ResultMessage: message}
	if k.Type == kms.SecOCKey {
		r.KeyID = k.APIKeyID()
	}
	if failure != "" {
		r.ResultStatus, r.ResultMessage = "OperationFailed", failure
	}
	var err error
	for attempt := 0; attempt <= max(f.cfg.Retries, 0); attempt++ {
		err = f.kmsCall(func(ctx context.Context) error { return f.cfg.KMS.Report(ctx, path, r) })
		var se *ServerError
		if !errors.As(err, &se) || f.ctx.Err() != nil {
			break
		}
	}
	return err
}
