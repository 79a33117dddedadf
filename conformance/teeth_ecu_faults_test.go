package conformance_test

import (
	"bytes"
	"context"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/uds"
)

// The behaviours of the ECU teeth rows' variants: each a serve function of ecuVariant.

// withSeeds is a variant whose SecurityAccess follows r.
func withSeeds(r seedRules) *ecuVariant {
	return &ecuVariant{serve: r.serve}
}

// rewriteAnswer is a variant that passes requests on and rewrites the ECU's answers with change.
func rewriteAnswer(change func(p *ecuProxy, req, resp []byte) []byte) *ecuVariant {
	return &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
		resp := p.forward(ctx, req)
		if resp == nil {
			return nil
		}
		return change(p, req, append([]byte{}, resp...))
	}}
}

// replaceNRC is a variant that answers from with to for service sid.
func replaceNRC(sid byte, from, to uds.NRC) *ecuVariant {
	return rewriteAnswer(func(_ *ecuProxy, req, resp []byte) []byte {
		if req[0] == sid && isNRC(resp, from) {
			resp[2] = byte(to)
		}
		return resp
	})
}

// isPositiveRoutine reports whether resp is a positive answer to routine rid whose ERC okERC
// accepts.
func isPositiveRoutine(resp []byte, rid uint16, okERC func(she.ERC) bool) bool {
	return len(resp) >= 5 && resp[0] == uds.RoutineControl+0x40 && uint16(resp[2])<<8|uint16(resp[3]) == rid &&
		okERC(she.ERC(resp[4]))
}

func noError(e she.ERC) bool { return e == she.NoError }
func anError(e she.ERC) bool { return e != she.NoError }

// routinesInSession is a variant that runs routines in session s as in the extended session: it
// takes the ECU to the extended session for the routine (unlocked if it was) and back.
func routinesInSession(s byte) *ecuVariant {
	return &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
		if req[0] != uds.RoutineControl || p.ecuSession != s {
			return p.forward(ctx, req)
		}
		unlocked := p.ecuUnlocked
		if p.enterSession(ctx, uds.ExtendedSession) != nil {
			return nil
		}
		if unlocked {
			p.unlockECU(ctx)
		}
		resp := p.forward(ctx, req)
		p.enterSession(ctx, s)
		if unlocked {
			p.unlockECU(ctx)
		}
		return resp
	}}
}

// unlockSticks is a variant whose SecurityAccess, once unlocked, stays unlocked across session
// changes: the proxy unlocks the ECU again after each change to a non-default session.
var unlockSticks = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	resp := p.forward(ctx, req)
	switch {
	case len(req) == 18 && req[0] == uds.SecurityAccess && uds.IsPositive(resp, uds.SecurityAccess):
		p.sticky = true
	case req[0] == uds.DiagnosticSessionControl && uds.IsPositive(resp, req[0]) && p.sticky &&
		p.ecuSession != uds.DefaultSession && !p.ecuUnlocked:
		p.unlockECU(ctx)
	}
	return resp
}}

// isHardReset reports whether req and resp are an ECUReset hardReset answered positively.
func isHardReset(req, resp []byte) bool {
	return isRequest(req, uds.ECUReset, 0x01) && uds.IsPositive(resp, uds.ECUReset)
}

// resetKeepsUnlock is a variant whose ECUReset leaves SecurityAccess unlocked: after the reset
// the next extended session starts unlocked.
var resetKeepsUnlock = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	unlocked := p.ecuUnlocked
	resp := p.forward(ctx, req)
	switch {
	case isHardReset(req, resp):
		p.sticky = p.sticky || unlocked
	case isRequest(req, uds.DiagnosticSessionControl, uds.ExtendedSession) && uds.IsPositive(resp, req[0]) && p.sticky:
		p.sticky = false
		p.unlockECU(ctx)
	}
	return resp
}}

// resetKeepsSession is a variant whose ECUReset leaves the ECU in the extended session.
var resetKeepsSession = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	resp := p.forward(ctx, req)
	if isHardReset(req, resp) {
		p.enterSession(ctx, uds.ExtendedSession)
	}
	return resp
}}

// resetKeepsRAMKey is a variant whose ECUReset keeps the RAM key: the proxy loads it again after
// the reset and leaves the ECU in the default session, locked.
var resetKeepsRAMKey = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	resp := p.forward(ctx, req)
	switch {
	case isLoadKey(req) && she.KeyID(req[4+15]>>4) == p.profile.RAMKey && isPositiveRoutine(resp, ecu.RIDLoadKey, noError):
		p.ramLoad = append([]byte{}, req...)
	case isHardReset(req, resp) && p.ramLoad != nil:
		if p.enterSession(ctx, uds.ExtendedSession) == nil && p.unlockECU(ctx) == nil {
			p.inject(ctx, p.ramLoad...)
		}
		p.enterSession(ctx, uds.DefaultSession)
	}
	return resp
}}

// softResetTaken is a variant that takes ECUReset softReset (03) as a hardReset.
var softResetTaken = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	if !isRequest(req, uds.ECUReset, 0x03) {
		return p.forward(ctx, req)
	}
	if resp := p.inject(ctx, uds.ECUReset, 0x01); uds.IsPositive(resp, uds.ECUReset) {
		return uds.Positive(uds.ECUReset, 0x03)
	}
	return uds.Negative(uds.ECUReset, uds.ConditionsNotCorrect)
}}

// refusedUpdateWrites is a variant whose refused updates of KEY_1..KEY_10 still store the new
// key: after the ECU's refusal the proxy loads the refused update's key into the slot with the
// next counter, authorized by the master key it knows.
var refusedUpdateWrites = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	resp := p.forward(ctx, req)
	if !isLoadKey(req) || !isPositiveRoutine(resp, ecu.RIDLoadKey, anError) {
		return resp
	}
	o := p.open(req)
	if !o.M3Valid || !o.KeyID.IsUserKey() {
		return resp
	}
	m, err := she.BuildMessages(she.KeyUpdate{UID: p.uid(o.UID), KeyID: o.KeyID, AuthID: she.MasterECUKey,
		AuthKey: p.keyOf(she.MasterECUKey), NewKey: o.NewKey, Counter: p.counters[o.KeyID] + 1, Flags: o.Flags})
	if err == nil {
		p.inject(ctx, loadKeyRequest(m)...)
	}
	return resp
}}

// uid is the UID an update of the proxy names: the one of the update it follows, or the ECU's
// when that was the wildcard.
func (p *ecuProxy) uid(of she.UID) she.UID {
	if of == she.WildcardUID && p.ecuUID != (she.UID{}) {
		return p.ecuUID
	}
	return of
}

// loadKeyRequest is the LoadKey request carrying m's M1–M3.
func loadKeyRequest(m she.Messages) []byte {
	req := []byte{uds.RoutineControl, 0x01, 0xFD, 0x10}
	return append(append(append(req, m.M1[:]...), m.M2[:]...), m.M3[:]...)
}

// writeProtectionDropped is a variant that stores keys without WRITE_PROTECTION: the proxy
// re-encodes each update that sets the flag without it (M4 and M5 do not carry the flags).
var writeProtectionDropped = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	if isLoadKey(req) {
		if o := p.open(req); o.M3Valid && o.Flags&she.WriteProtection != 0 {
			m, err := she.BuildMessages(she.KeyUpdate{UID: o.UID, KeyID: o.KeyID, AuthID: o.AuthID,
				AuthKey: p.keyOf(o.AuthID), NewKey: o.NewKey, Counter: o.Counter, Flags: o.Flags &^ she.WriteProtection})
			if err == nil {
				req = loadKeyRequest(m)
			}
		}
	}
	return p.forward(ctx, req)
}}

// m4OfAnotherSlot is a variant whose LoadKey proof names another slot: M4's KeyID is changed and
// M5 computed again over it with the new key, so the proof is consistent but about the wrong slot.
var m4OfAnotherSlot = rewriteAnswer(func(p *ecuProxy, req, resp []byte) []byte {
	if !isLoadKey(req) || !isPositiveRoutine(resp, ecu.RIDLoadKey, noError) || len(resp) != 5+48 {
		return resp
	}
	m4 := resp[5:37]
	m4[15] ^= 0x10
	newKey := p.lastNewKey(req)
	m5 := she.CMAC(she.KDF(newKey, she.KeyUpdateMACC), m4)
	copy(resp[37:], m5[:])
	return resp
})

// lastNewKey is the new key of an accepted LoadKey request (the proxy learnt it as it passed).
func (p *ecuProxy) lastNewKey(req []byte) [16]byte {
	return p.keys[she.KeyID(req[4+15]>>4)]
}

// getIDMACWrong is a variant whose GET_ID MAC has one bit flipped.
var getIDMACWrong = rewriteAnswer(func(_ *ecuProxy, req, resp []byte) []byte {
	if isPositiveRoutine(resp, ecu.RIDGetID, noError) && len(resp) == 5+32 {
		resp[len(resp)-1] ^= 0x01
	}
	return resp
})

// keyIDMasked is a variant that takes any KeyID byte of VerifyMAC and GenerateMAC, using its low
// nibble.
var keyIDMasked = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	if (isRoutine(req, ecu.RIDVerifyMAC) || isRoutine(req, ecu.RIDGenerateMAC)) && len(req) > 4 && req[4] > 0x0F {
		req = append([]byte{}, req...)
		req[4] &= 0x0F
	}
	return p.forward(ctx, req)
}}

// ridNotEchoed is a variant whose positive VerifyMAC and GenerateMAC answers carry LoadKey's RID.
var ridNotEchoed = rewriteAnswer(func(_ *ecuProxy, req, resp []byte) []byte {
	if isPositiveRoutine(resp, ecu.RIDVerifyMAC, anyERC) || isPositiveRoutine(resp, ecu.RIDGenerateMAC, anyERC) {
		resp[2], resp[3] = 0xFD, 0x10
	}
	return resp
})

func anyERC(she.ERC) bool { return true }

// routineFieldLength is how many bytes follow ERC_NO_ERROR in each routine's answer.
var routineFieldLength = map[uint16]int{ecu.RIDLoadKey: 48, ecu.RIDGetID: 32, ecu.RIDVerifyMAC: 1, ecu.RIDGenerateMAC: 16}

// ercWithFields is a variant whose answers with an ERC other than ERC_NO_ERROR carry the
// routine's fields anyway (zeros).
var ercWithFields = rewriteAnswer(func(_ *ecuProxy, req, resp []byte) []byte {
	for rid, n := range routineFieldLength {
		if isPositiveRoutine(resp, rid, anError) && len(resp) == 5 {
			return append(resp, make([]byte, n)...)
		}
	}
	return resp
})

// verifyAlwaysTrue is a variant whose VerifyMAC answers "verified" for any MAC.
var verifyAlwaysTrue = rewriteAnswer(func(_ *ecuProxy, req, resp []byte) []byte {
	if isPositiveRoutine(resp, ecu.RIDVerifyMAC, noError) && len(resp) == 6 {
		resp[5] = 0x00
	}
	return resp
})

// lateLoadKey is a variant that answers LoadKey late, with no response pending meanwhile.
var lateLoadKey = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	if !isRoutine(req, ecu.RIDLoadKey) {
		return p.forward(ctx, req)
	}
	resp := p.inject(ctx, req...)
	proxySleep(ctx, time.Second+500*time.Millisecond)
	return resp
}}

// relockSameSession is a legal variant: requesting the session the ECU is in re-locks it.
var relockSameSession = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	if req[0] == uds.DiagnosticSessionControl && len(req) == 2 && p.ecuUnlocked &&
		req[1]&^uds.SuppressPositiveResponse == p.ecuSession && p.ecuSession != uds.DefaultSession {
		p.enterSession(ctx, uds.DefaultSession)
	}
	return p.forward(ctx, req)
}}

// announcesTiming is a legal variant that announces other P2 and P2* values in its session
// answers (the ECU behind it answers well within them).
func announcesTiming(p2, p2Star time.Duration) *ecuVariant {
	return rewriteAnswer(func(_ *ecuProxy, req, resp []byte) []byte {
		if req[0] == uds.DiagnosticSessionControl && uds.IsPositive(resp, req[0]) && len(resp) == 6 {
			a, b := uint16(p2/time.Millisecond), uint16(p2Star/(10*time.Millisecond))
			resp[2], resp[3], resp[4], resp[5] = byte(a>>8), byte(a), byte(b>>8), byte(b)
		}
		return resp
	})
}

// lengthBeforeSecurity is a variant that checks a routine's record length before SecurityAccess:
// a request of the wrong length while locked is answered NRC 0x13, not 0x33 (ISO 14229-1 checks
// security first).
var lengthBeforeSecurity = rewriteAnswer(func(_ *ecuProxy, req, resp []byte) []byte {
	if len(req) < 4 || req[0] != uds.RoutineControl || !isNRC(resp, uds.SecurityAccessDenied) {
		return resp
	}
	if n, ok := routineRecordLength[uint16(req[2])<<8|uint16(req[3])]; ok && len(req)-4 != n {
		resp[2] = byte(uds.IncorrectMessageLengthOrInvalidFormat)
	}
	return resp
})

// routineRecordLength is each routine's request record length.
var routineRecordLength = map[uint16]int{ecu.RIDLoadKey: 64, ecu.RIDGetID: 16, ecu.RIDVerifyMAC: 33, ecu.RIDGenerateMAC: 17}

// suppressIgnored is a variant that answers positively even when the request's suppress bit asks
// for no positive answer.
var suppressIgnored = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	if uds.SuppressesPositiveResponse(req) {
		req = append([]byte{}, req...)
		req[1] &^= uds.SuppressPositiveResponse
	}
	return p.forward(ctx, req)
}}

// suppressIgnoredLate is suppressIgnored with each such positive answer held back 750 ms: later
// than the P2 and margin the tester waits after a request with the suppress bit (550 ms for a
// simulated ECU), and still an answer that must not come.
var suppressIgnoredLate = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	resp := suppressIgnored.serve(p, ctx, req)
	if uds.SuppressesPositiveResponse(req) && uds.IsPositive(resp, req[0]) {
		proxySleep(ctx, 750*time.Millisecond)
	}
	return resp
}}

// macIgnoresKeyUsage is a variant whose MAC commands take any loaded key, KEY_USAGE or not: where
// the ECU answers ERC_KEY_INVALID for a key the proxy saw go in, the proxy computes the MAC.
var macIgnoresKeyUsage = rewriteAnswer(func(p *ecuProxy, req, resp []byte) []byte {
	invalid := func(e she.ERC) bool { return e == she.KeyInvalid }
	if len(req) < 5 {
		return resp
	}
	key, known := p.keys[she.KeyID(req[4])]
	switch {
	case !known:
	case isPositiveRoutine(resp, ecu.RIDGenerateMAC, invalid) && len(req) == 4+17:
		mac := she.CMAC(key, req[5:21])
		return append(resp[:4], append([]byte{byte(she.NoError)}, mac[:]...)...)
	case isPositiveRoutine(resp, ecu.RIDVerifyMAC, invalid) && len(req) == 4+33:
		mac, result := she.CMAC(key, req[5:21]), byte(0x01)
		if bytes.Equal(mac[:], req[21:37]) {
			result = 0x00
		}
		return append(resp[:4], byte(she.NoError), result)
	}
	return resp
})

// resetForgivesAttempts is a variant whose ECUReset clears the count of wrong SecurityAccess keys
// (a running delay stays): after the reset the proxy unlocks the ECU once, which resets its
// count, and leaves it in the default session.
var resetForgivesAttempts = &ecuVariant{serve: func(p *ecuProxy, ctx context.Context, req []byte) []byte {
	resp := p.forward(ctx, req)
	if isHardReset(req, resp) && p.enterSession(ctx, uds.ExtendedSession) == nil {
		p.unlockECU(ctx)
		p.enterSession(ctx, uds.DefaultSession)
	}
	return resp
}}

// s3Ignored is a variant that never returns to the default session on its own: while the tester
// is silent in another session, the proxy keeps the ECU's session alive with TesterPresent.
var s3Ignored = &ecuVariant{keepAlive: true}
