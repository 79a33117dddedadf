package ecu

import (
	"testing"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/uds"
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
// to it with a code of SPEC section 3. The ECU must never panic.
func FuzzUDSRequest(f *testing.F) {
	f.Add([]byte{2, 0x10, 0x03, 20, 0x31, 0x01, 0xFD, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, true)
	f.Add([]byte{2, 0x10, 0x03, 2, 0x27, 0x01, 18, 0x27, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false)
	f.Add([]byte{7, 0x22, 0xF1, 0x8C, 0xFD, 0x00, 0xFD, 0x01, 2, 0x11, 0x01, 2, 0x3E, 0x80}, false)
	f.Add(append([]byte{2, 0x10, 0x03, 68, 0x31, 0x01, 0xFD, 0x10}, make([]byte, 64)...), true)
	f.Add([]byte{21, 0x31, 0x01, 0xFD, 0x13, 0x05, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, true)
	uid := she.UID{0x00, 0x01, 0x00, 0x1d}
	image := FirmwareImage(uid)
	f.Fuzz(func(t *testing.T, script []byte, noSecurity bool) {
		e, err := New(Config{UID: uid, Image: image, NoSecurity: noSecurity}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for len(script) > 0 {
			n := min(int(script[0]), len(script)-1)
			req := script[1 : 1+n]
			script = script[1+n:]
			resp := e.Handle(req, func() {})
			switch {
			case resp == nil:
				if len(req) > 1 && req[1]&uds.SuppressPositiveResponse == 0 && len(req) != 0 {
					t.Fatalf("request % x: no answer without the suppress bit", req)
				}
			case uds.IsPositive(resp, req[0]):
			default:
				sid, nrc, ok := uds.ParseNegative(resp)
				if !ok || sid != req[0] || !knownNRCs[nrc] {
					t.Fatalf("request % x: answer % x", req, resp)
				}
			}
		}
	})
}
