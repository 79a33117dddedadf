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
// identifier (0x22, the first one) or its routine control type and identifier (0x31); a negative
// answer 7F names the request's service.
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
		if i == 1 && req[0] != ReadDataByIdentifier {
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
	case ReadDataByIdentifier:
		return 3
	case RoutineControl:
		return 4
	}
	return 1
}
