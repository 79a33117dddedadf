package uds

// Verdict is how a message relates to a request.
type Verdict uint8

// The verdicts of Match.
const (
	Foreign Verdict = iota // not an answer to the request
	Pending                // a response pending (NRC 0x78) for the request's service
	Answer                 // the request's answer: positive with the echo, or negative
)

// Match reports whether resp answers req. A positive answer carries the request's service ID +
// 0x40 and echoes its sub-function (without the suppress bit: 0x10, 0x11, 0x27, 0x3E), its data
// identifier (0x22, the first one; 0x2E), its routine control type and identifier (0x31) or its
// block sequence counter (0x36); RequestDownload (0x34) and RequestTransferExit (0x37) echo
// nothing but the service. A negative answer 7F names the request's service.
func Match(req, resp []byte) Verdict {
	if len(req) == 0 {
		return Foreign
	}
	if sid, nrc, ok := ParseNegative(resp); ok {
		switch {
		case sid != req[0]:
			return Foreign
		case nrc == ResponsePending:
			return Pending
		}
		return Answer
	}
	if !IsPositive(resp, req[0]) {
		return Foreign
	}
	n := min(echoLength(req[0]), len(req))
	if len(resp) < n {
		return Foreign
	}
	for i := 1; i < n; i++ {
		want := req[i]
		if i == 1 && hasSubFunction(req[0]) {
			want &^= SuppressPositiveResponse
		}
		if resp[i] != want {
			return Foreign
		}
	}
	return Answer
}

// echoLength is how many leading bytes of a request of service sid its positive answer echoes
// (counting the service ID).
func echoLength(sid byte) int {
	switch sid {
	case DiagnosticSessionControl, ECUReset, SecurityAccess, TesterPresent:
		return 2
	case TransferData:
		return 2
	case ReadDataByIdentifier, WriteDataByIdentifier:
		return 3
	case RoutineControl:
		return 4
	}
	return 1
}

// hasSubFunction reports whether the second byte of a request of service sid is a sub-function,
// whose suppress-positive-response bit the answer does not echo.
func hasSubFunction(sid byte) bool {
	switch sid {
	case DiagnosticSessionControl, ECUReset, SecurityAccess, RoutineControl, TesterPresent:
		return true
	}
	return false
}
