// Package uds is ISO 14229-1 (UDS) on an ISO-TP transport: service identifiers, negative
// response codes, and a client that honours the server's P2 and P2* times.
package uds

//go:generate go tool stringer -type=NRC -linecomment -output=nrc_string.go

import (
	"fmt"
	"time"
)

// Service identifiers used by the kit.
const (
	DiagnosticSessionControl = 0x10
	ECUReset                 = 0x11
	SecurityAccess           = 0x27
	ReadDataByIdentifier     = 0x22
	WriteDataByIdentifier    = 0x2E
	RoutineControl           = 0x31
	RequestDownload          = 0x34
	TransferData             = 0x36
	RequestTransferExit      = 0x37
	TesterPresent            = 0x3E
	NegativeResponse         = 0x7F
	positiveOffset           = 0x40
)

// Sessions of DiagnosticSessionControl.
const (
	DefaultSession     = 0x01
	ProgrammingSession = 0x02
	ExtendedSession    = 0x03
)

// SuppressPositiveResponse is the sub-function bit that asks the server not to answer.
const SuppressPositiveResponse = 0x80

// Default server timing: P2 50 ms, P2* 5000 ms.
const (
	DefaultP2     = 50 * time.Millisecond
	DefaultP2Star = 5000 * time.Millisecond
)

// NRC is a negative response code.
type NRC uint8

// The negative response codes the kit uses.
const (
	GeneralReject                          NRC = 0x10 // generalReject
	ServiceNotSupported                    NRC = 0x11 // serviceNotSupported
	SubFunctionNotSupported                NRC = 0x12 // subFunctionNotSupported
	IncorrectMessageLengthOrInvalidFormat  NRC = 0x13 // incorrectMessageLengthOrInvalidFormat
	BusyRepeatRequest                      NRC = 0x21 // busyRepeatRequest
	ConditionsNotCorrect                   NRC = 0x22 // conditionsNotCorrect
	RequestSequenceError                   NRC = 0x24 // requestSequenceError
	RequestOutOfRange                      NRC = 0x31 // requestOutOfRange
	SecurityAccessDenied                   NRC = 0x33 // securityAccessDenied
	InvalidKey                             NRC = 0x35 // invalidKey
	ExceededNumberOfAttempts               NRC = 0x36 // exceededNumberOfAttempts
	RequiredTimeDelayNotExpired            NRC = 0x37 // requiredTimeDelayNotExpired
	GeneralProgrammingFailure              NRC = 0x72 // generalProgrammingFailure
	ResponsePending                        NRC = 0x78 // requestCorrectlyReceivedResponsePending
	SubFunctionNotSupportedInActiveSession NRC = 0x7E // subFunctionNotSupportedInActiveSession
	ServiceNotSupportedInActiveSession     NRC = 0x7F // serviceNotSupportedInActiveSession
)

// NegativeResponseError is a server's negative response to a service.
type NegativeResponseError struct {
	SID byte
	NRC NRC
}

func (e *NegativeResponseError) Error() string {
	return fmt.Sprintf("uds: service %#02x: negative response %#02x %v", e.SID, uint8(e.NRC), e.NRC)
}

// Negative builds a negative response.
func Negative(sid byte, nrc NRC) []byte { return []byte{NegativeResponse, sid, byte(nrc)} }

// Positive builds a positive response to sid carrying data.
func Positive(sid byte, data ...byte) []byte {
	return append([]byte{sid + positiveOffset}, data...)
}

// IsPositive reports whether resp is a positive response to sid.
func IsPositive(resp []byte, sid byte) bool { return len(resp) > 0 && resp[0] == sid+positiveOffset }

// SuppressesPositiveResponse reports whether req asks for no positive response: its service has a
// sub-function (the services of this package's profile that have one) with the suppress bit set.
func SuppressesPositiveResponse(req []byte) bool {
	return len(req) >= 2 && req[1]&SuppressPositiveResponse != 0 && hasSubFunction(req[0])
}

// ParseNegative returns the service and code of a negative response.
func ParseNegative(resp []byte) (sid byte, nrc NRC, ok bool) {
	if len(resp) != 3 || resp[0] != NegativeResponse {
		return 0, 0, false
	}
	return resp[1], NRC(resp[2]), true
}
