package ecu

import (
	"testing"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// knownNRCs are the negative response codes the ECU may answer.
var knownNRCs = map[uds.NRC]bool{
	uds.ServiceNotSupported: true, uds.SubFunctionNotSupported: true, uds.IncorrectMessageLengthOrInvalidFormat: true,
	uds.ConditionsNotCorrect: true, uds.RequestSequenceError: true, uds.RequestOutOfRange: true,
	uds.SecurityAccessDenied: true, uds.InvalidKey: true, uds.ExceededNumberOfAttempts: true,
	uds.RequiredTimeDelayNotExpired: true, uds.GeneralProgrammingFailure: true,
	uds.SubFunctionNotSupportedInActiveSession: true, uds.ServiceNotSupportedInActiveSession: true,
}

// FuzzUDSRequest sends the ECU a sequence of requests (each prefixed by its length) and checks
// every answer: nothing, a positive response to the request's service, or a negative response
// to it with a code of SPEC section 3 or of the profile's errors section. The ECU must never
// panic. Each script runs against an ECU of every built-in diagnostic profile.
func FuzzUDSRequest(f *testing.F) {
	f.Add([]byte{2, 0x10, 0x03, 20, 0x31, 0x01, 0xFD, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, true)
	f.Add([]byte{2, 0x10, 0x03, 2, 0x27, 0x01, 18, 0x27, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false)
	f.Add([]byte{7, 0x22, 0xF1, 0x8C, 0xFD, 0x00, 0xFD, 0x01, 2, 0x11, 0x01, 2, 0x3E, 0x80}, false)
	f.Add(append([]byte{2, 0x10, 0x03, 68, 0x31, 0x01, 0xFD, 0x10}, make([]byte, 64)...), true)
	f.Add([]byte{21, 0x31, 0x01, 0xFD, 0x13, 0x05, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, true)
	uid := she.UID{0x00, 0x01, 0x00, 0x1d}
	image := FirmwareImage(uid)
	f.Add([]byte{2, 0x10, 0x03, 70, 0x2E, 0x0E, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 3, 0x22, 0x0E, 0x11}, true)
	f.Add(append([]byte{2, 0x10, 0x02, 9, 0x34, 0x00, 0x24, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x40, 66, 0x36, 0x01}, make([]byte, 64)...), true)
	profiles := profile.Builtin()
	f.Fuzz(func(t *testing.T, script []byte, noSecurity bool) {
		for _, p := range profiles {
			e, err := New(Config{UID: uid, Image: image, NoSecurity: noSecurity, DiagProfile: p}, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkScript(t, e, p, script)
		}
	})
}

// checkScript sends e the requests of script and checks every answer.
func checkScript(t *testing.T, e *ECU, p *profile.Profile, script []byte) {
	t.Helper()
	for len(script) > 0 {
		n := min(int(script[0]), len(script)-1)
		req := script[1 : 1+n]
		script = script[1+n:]
		resp := e.Handle(req, func() {})
		switch {
		case resp == nil:
			if len(req) > 1 && req[1]&uds.SuppressPositiveResponse == 0 && len(req) != 0 {
				t.Fatalf("%s: request % x: no answer without the suppress bit", p.Name, req)
			}
		case uds.IsPositive(resp, req[0]):
		default:
			sid, nrc, ok := uds.ParseNegative(resp)
			if !ok || sid != req[0] || !knownNRCs[nrc] && !profileNRC(p, nrc) {
				t.Fatalf("%s: request % x: answer % x", p.Name, req, resp)
			}
		}
	}
}

// profileNRC reports whether nrc carries a SHE error under p's errors section.
func profileNRC(p *profile.Profile, nrc uds.NRC) bool {
	if p.Errors.OtherNRC != 0 && uds.NRC(p.Errors.OtherNRC) == nrc {
		return true
	}
	for _, n := range p.Errors.NRC {
		if uds.NRC(n) == nrc {
			return true
		}
	}
	return false
}
