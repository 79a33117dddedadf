package ecu

import (
	"crypto/subtle"
	"time"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/uds"
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
		e.session, e.unlocked, e.seed = uds.DefaultSession, false, nil // S3 expired
	}
	e.lastRequest = now
	if len(req) == 0 {
		return nil
	}
	sid := req[0]
	var resp []byte
	pended := false
	switch sid {
	case uds.DiagnosticSessionControl:
		resp = e.sessionControl(req)
	case uds.ECUReset:
		resp = e.reset(req)
	case uds.SecurityAccess:
		resp = e.securityAccess(req, now)
	case uds.ReadDataByIdentifier:
		resp = e.readData(req)
	case uds.RoutineControl:
		resp = e.routineControl(req, func() { pended = true; pending() })
	case uds.TesterPresent:
		resp = e.testerPresent(req)
	default:
		return uds.Negative(sid, uds.ServiceNotSupported)
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
		return s == uds.DefaultSession || s == uds.ProgrammingSession || s == uds.ExtendedSession
	}); nr != nil {
		return nr
	}
	s := req[1] &^ uds.SuppressPositiveResponse
	if s != e.session || e.cfg.RelockSameSession {
		e.unlocked, e.seed = false, nil // security is per session
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

func (e *ECU) securityAccess(req []byte, now time.Time) []byte {
	sid := req[0]
	if e.session == uds.DefaultSession {
		return uds.Negative(sid, uds.ServiceNotSupportedInActiveSession)
	}
	if len(req) < 2 {
		return uds.Negative(sid, uds.IncorrectMessageLengthOrInvalidFormat)
	}
	switch sub := req[1] &^ uds.SuppressPositiveResponse; sub {
	case 0x01: // requestSeed
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
	case 0x02: // sendKey: a key of the wrong length neither uses up the seed nor counts
		if len(req) != 2+16 {
			return uds.Negative(sid, uds.IncorrectMessageLengthOrInvalidFormat)
		}
		if e.seed == nil {
			return uds.Negative(sid, uds.RequestSequenceError)
		}
		want := she.CMAC(*e.cfg.SecurityKey, e.seed)
		e.seed = nil
		if subtle.ConstantTimeCompare(want[:], req[2:]) != 1 {
			e.attempts++
			if e.attempts >= e.cfg.MaxAttempts {
				e.attempts = 0
				e.lockedUntil = now.Add(e.cfg.Lockout)
				return uds.Negative(sid, uds.ExceededNumberOfAttempts)
			}
			return uds.Negative(sid, uds.InvalidKey)
		}
		e.attempts, e.unlocked = 0, true
		return uds.Positive(sid, sub)
	}
	return uds.Negative(sid, uds.SubFunctionNotSupported)
}

func (e *ECU) readData(req []byte) []byte {
	sid := req[0]
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

// routineInput is the length of each routine's option record.
var routineInput = map[uint16]int{RIDLoadKey: 64, RIDGetID: 16, RIDVerifyMAC: 33, RIDGenerateMAC: 17}

func (e *ECU) routineControl(req []byte, pending func()) []byte {
	sid := req[0]
	if e.session != uds.ExtendedSession {
		return uds.Negative(sid, uds.ServiceNotSupportedInActiveSession)
	}
	if len(req) < 4 {
		return uds.Negative(sid, uds.IncorrectMessageLengthOrInvalidFormat)
	}
	if req[1]&^uds.SuppressPositiveResponse != 0x01 {
		return uds.Negative(sid, uds.SubFunctionNotSupported)
	}
	rid := uint16(req[2])<<8 | uint16(req[3])
	n, known := routineInput[rid]
	if !known {
		return uds.Negative(sid, uds.RequestOutOfRange)
	}
	if !e.unlocked && !e.cfg.NoSecurity {
		return uds.Negative(sid, uds.SecurityAccessDenied)
	}
	in := req[4:]
	if len(in) != n {
		return uds.Negative(sid, uds.IncorrectMessageLengthOrInvalidFormat)
	}
	if (rid == RIDVerifyMAC || rid == RIDGenerateMAC) && in[0] > 0xF {
		return uds.Negative(sid, uds.RequestOutOfRange)
	}
	done := make(chan []byte, 1)
	go func() { done <- e.runRoutine(rid, in) }()
	var record []byte
	timer := time.NewTimer(e.cfg.PendingAfter)
	defer timer.Stop()
	select {
	case record = <-done:
	case <-timer.C:
		pending()
		tick := time.NewTicker(e.cfg.P2Star / 2)
	wait:
		for {
			select {
			case record = <-done:
				break wait
			case <-tick.C:
				pending()
			}
		}
		tick.Stop()
	}
	switch she.ERC(record[0]) {
	case she.MemoryFailure:
		return uds.Negative(sid, uds.GeneralProgrammingFailure)
	case she.Busy:
		return uds.Negative(sid, uds.ConditionsNotCorrect)
	}
	return uds.Positive(sid, append([]byte{0x01, req[2], req[3]}, record...)...)
}

// runRoutine runs a SHE routine and returns its status record, ERC first.
func (e *ECU) runRoutine(rid uint16, in []byte) []byte {
	switch rid {
	case RIDLoadKey:
		m4, m5, erc := e.engine.LoadKey([16]byte(in[:16]), [32]byte(in[16:48]), [16]byte(in[48:]))
		if erc != she.NoError {
			return []byte{byte(erc)}
		}
		if e.cfg.Faults.WrongProof {
			m5[15] ^= 0x01
		}
		return append(append([]byte{byte(erc)}, m4[:]...), m5[:]...)
	case RIDGetID:
		uid, sreg, mac, erc := e.engine.GetID([16]byte(in))
		if erc != she.NoError {
			return []byte{byte(erc)}
		}
		out := append([]byte{byte(erc)}, uid[:]...)
		return append(append(out, byte(sreg)), mac[:]...)
	case RIDVerifyMAC:
		ok, erc := e.engine.VerifyMAC(she.KeyID(in[0]), in[1:17], in[17:33], 0)
		if erc != she.NoError {
			return []byte{byte(erc)}
		}
		result := byte(0x01)
		if ok {
			result = 0x00
		}
		return []byte{byte(erc), result}
	default: // RIDGenerateMAC
		mac, erc := e.engine.GenerateMAC(she.KeyID(in[0]), in[1:17])
		if erc != she.NoError {
			return []byte{byte(erc)}
		}
		return append([]byte{byte(erc)}, mac[:]...)
	}
}
