package ecu

import (
	"context"
	"crypto/subtle"
	"time"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// Handle answers one request. pending is called to send NRC 0x78 while a routine is still
// running. It returns the response, or nil when none is due: a positive response the request's
// suppress bit suppresses, unless a response pending went out first (ISO 14229-1: after NRC 0x78
// the final response always follows). It must not be called concurrently.
//
// Negative responses follow ISO 14229-1's order of checks: unknown service (0x11), service not
// in the active session (0x7F), too short (0x13), sub-function not supported (0x12), then the
// service's own checks: out of range (0x31), security (0x33), length (0x13), conditions (0x22).
func (e *ECU) Handle(req []byte, pending func()) []byte {
	now := time.Now()
	if e.session != uds.DefaultSession && now.Sub(e.lastRequest) > e.cfg.S3 {
		e.session, e.unlocked, e.seed, e.run = uds.DefaultSession, false, nil, nil // S3 expired
	}
	e.lastRequest = now
	if len(req) == 0 {
		return nil
	}
	sid := req[0]
	var resp []byte
	pended := false
	sendPending := pending
	pending = func() { pended = true; sendPending() } // a response pending went out
	switch sid {
	case uds.DiagnosticSessionControl:
		resp = e.sessionControl(req)
	case uds.ECUReset:
		resp = e.reset(req)
	case uds.SecurityAccess:
		resp = e.securityAccess(req, now, pending)
	case uds.ReadDataByIdentifier:
		resp = e.readData(req, pending)
	case uds.TesterPresent:
		resp = e.testerPresent(req)
	default:
		if !e.serves(sid) {
			return uds.Negative(sid, uds.ServiceNotSupported)
		}
		resp = e.diagRequest(req, pending)
	}
	if uds.IsPositive(resp, sid) && uds.SuppressesPositiveResponse(req) && !pended {
		return nil
	}
	return resp
}

// subFunctionRequest checks a request of a service whose only parameter is its sub-function, in
// ISO 14229-1's order: too short (0x13), sub-function not in supported (0x12), longer than two
// bytes (0x13). It returns the negative response, or nil.
func subFunctionRequest(req []byte, supported func(sub byte) bool) []byte {
	switch {
	case len(req) < 2:
		return uds.Negative(req[0], uds.IncorrectMessageLengthOrInvalidFormat)
	case !supported(req[1] &^ uds.SuppressPositiveResponse):
		return uds.Negative(req[0], uds.SubFunctionNotSupported)
	case len(req) != 2:
		return uds.Negative(req[0], uds.IncorrectMessageLengthOrInvalidFormat)
	}
	return nil
}

func (e *ECU) sessionControl(req []byte) []byte {
	if nr := subFunctionRequest(req, func(s byte) bool {
		return s == uds.DefaultSession || s == uds.ProgrammingSession || s == uds.ExtendedSession || e.profileSession(s)
	}); nr != nil {
		return nr
	}
	s := req[1] &^ uds.SuppressPositiveResponse
	if s != e.session || e.cfg.RelockSameSession {
		e.unlocked, e.seed = false, nil // security is per session
	}
	if s != e.session {
		e.run = nil // an operation does not survive a session change
	}
	e.session = s
	p2 := uint16(e.cfg.P2 / time.Millisecond)
	p2Star := uint16(e.cfg.P2Star / (10 * time.Millisecond))
	return uds.Positive(req[0], s, byte(p2>>8), byte(p2), byte(p2Star>>8), byte(p2Star))
}

// reset handles ECUReset hardReset (01), in every session: a power cycle, answered before it
// happens. Every other reset type, softReset (03) included, is not supported (0x12) in every
// session.
func (e *ECU) reset(req []byte) []byte {
	if nr := subFunctionRequest(req, func(t byte) bool { return t == 0x01 }); nr != nil {
		return nr
	}
	if erc := e.engine.PowerCycle(); erc == she.Busy {
		return uds.Negative(req[0], uds.ConditionsNotCorrect)
	}
	e.powerOn()
	return uds.Positive(req[0], 0x01)
}

// securityAccess serves the diagnostic profile's SecurityAccess level: requestSeed (the level)
// and sendKey (level+1), outside the default session.
func (e *ECU) securityAccess(req []byte, now time.Time, pending func()) []byte {
	sid := req[0]
	sec := e.cfg.DiagProfile.Security
	if sec.Algorithm == profile.AlgorithmNone {
		return uds.Negative(sid, uds.ServiceNotSupported)
	}
	if e.session == uds.DefaultSession {
		return uds.Negative(sid, uds.ServiceNotSupportedInActiveSession)
	}
	if len(req) < 2 {
		return uds.Negative(sid, uds.IncorrectMessageLengthOrInvalidFormat)
	}
	switch sub := req[1] &^ uds.SuppressPositiveResponse; sub {
	case sec.Level: // requestSeed
		if len(req) != 2 {
			return uds.Negative(sid, uds.IncorrectMessageLengthOrInvalidFormat)
		}
		if now.Before(e.lockedUntil) {
			return uds.Negative(sid, uds.RequiredTimeDelayNotExpired)
		}
		if e.unlocked {
			return uds.Positive(sid, append([]byte{sub}, make([]byte, e.cfg.SeedLength)...)...)
		}
		e.seed = randomSeed(e.cfg.SeedLength)
		return uds.Positive(sid, append([]byte{sub}, e.seed...)...)
	case sec.Level + 1:
		return e.sendKey(req, sec.KeyLength, now, pending)
	}
	return uds.Negative(sid, uds.SubFunctionNotSupported)
}

// sendKey checks a key against the seed last sent: a key of the wrong length neither uses up the
// seed nor counts; a wrong one counts towards the lockout. While an external seed/key command
// runs past PendingAfter, pending sends NRC 0x78.
func (e *ECU) sendKey(req []byte, keyLength int, now time.Time, pending func()) []byte {
	sid := req[0]
	if len(req) != 2+keyLength {
		return uds.Negative(sid, uds.IncorrectMessageLengthOrInvalidFormat)
	}
	if e.seed == nil {
		return uds.Negative(sid, uds.RequestSequenceError)
	}
	type result struct {
		key []byte
		err error
	}
	seed := e.seed
	compute := func() result { k, err := e.expectedKey(seed); return result{k, err} }
	var r result
	if e.cfg.DiagProfile.Security.Algorithm == profile.AlgorithmExternal {
		r = withPending(e, compute, pending)
	} else {
		r = compute()
	}
	want, err := r.key, r.err
	e.seed = nil
	if err != nil {
		return uds.Negative(sid, uds.ConditionsNotCorrect) // the seed/key command failed
	}
	if subtle.ConstantTimeCompare(want, req[2:]) != 1 {
		e.attempts++
		if e.attempts >= e.cfg.MaxAttempts {
			e.attempts = 0
			e.lockedUntil = now.Add(e.cfg.Lockout)
			return uds.Negative(sid, uds.ExceededNumberOfAttempts)
		}
		return uds.Negative(sid, uds.InvalidKey)
	}
	e.attempts, e.unlocked = 0, true
	return uds.Positive(sid, req[1]&^uds.SuppressPositiveResponse)
}

// expectedKey is the SecurityAccess key for seed: AES-CMAC under the configured key, or what the
// profile's external command prints (the command a tester runs too).
func (e *ECU) expectedKey(seed []byte) ([]byte, error) {
	p := e.cfg.DiagProfile
	if p.Security.Algorithm != profile.AlgorithmExternal {
		k := she.CMAC(*e.cfg.SecurityKey, seed)
		return k[:], nil
	}
	c, err := p.SeedKeyCommand()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.Key(context.Background(), seed)
}

// readData answers ReadDataByIdentifier: a DID of the diagnostic profile's read-did steps, alone
// in its request, as the profile says; else the kit's DIDs (serial, UID, SREG), one or several.
func (e *ECU) readData(req []byte, pending func()) []byte {
	sid := req[0]
	if len(req) == 3 && e.profileDID(req) {
		return e.diagRequest(req, pending)
	}
	if len(req) < 3 || len(req)%2 != 1 {
		return uds.Negative(sid, uds.IncorrectMessageLengthOrInvalidFormat)
	}
	resp := uds.Positive(sid)
	for i := 1; i < len(req); i += 2 {
		did := uint16(req[i])<<8 | uint16(req[i+1])
		var data []byte
		switch did {
		case DIDSerial:
			data = []byte(e.cfg.Serial)
		case DIDUID:
			uid := e.engine.UID()
			data = uid[:]
		case DIDSREG:
			data = []byte{byte(e.engine.Status())}
		default:
			return uds.Negative(sid, uds.RequestOutOfRange)
		}
		resp = append(append(resp, req[i], req[i+1]), data...)
	}
	return resp
}

func (e *ECU) testerPresent(req []byte) []byte {
	if nr := subFunctionRequest(req, func(sub byte) bool { return sub == 0x00 }); nr != nil {
		return nr
	}
	return uds.Positive(req[0], 0x00)
}

// profileSession reports whether an operation of the diagnostic profile runs in session s (a
// profile may name sessions of its own, 0x04..0x7F).
func (e *ECU) profileSession(s byte) bool {
	for _, op := range e.cfg.DiagProfile.Operations {
		if op.Session == s {
			return true
		}
	}
	return false
}

// profileDID reports whether the DID of a one-DID read request is a read-did step's.
func (e *ECU) profileDID(req []byte) bool {
	for _, ref := range e.diag.bySID[uds.ReadDataByIdentifier] {
		if ref.op.Steps[ref.idx].MatchesRequest(req) {
			return true
		}
	}
	return false
}
