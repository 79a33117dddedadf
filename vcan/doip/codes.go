package doip

import "fmt"

// NACKCode is the code of a generic DoIP header negative acknowledge (payload type 0x0000).
type NACKCode byte

// The generic NACK codes. After 0x00 and 0x04 the entity closes the socket; after the others it
// discards the message and goes on.
const (
	NACKIncorrectPattern     NACKCode = 0x00
	NACKUnknownPayloadType   NACKCode = 0x01
	NACKMessageTooLarge      NACKCode = 0x02
	NACKOutOfMemory          NACKCode = 0x03
	NACKInvalidPayloadLength NACKCode = 0x04
)

// ClosesSocket reports whether the entity closes the TCP socket after sending this NACK.
func (c NACKCode) ClosesSocket() bool {
	return c == NACKIncorrectPattern || c == NACKInvalidPayloadLength
}

// String names the code as ISO 13400-2 does.
func (c NACKCode) String() string {
	switch c {
	case NACKIncorrectPattern:
		return "incorrect pattern format"
	case NACKUnknownPayloadType:
		return "unknown payload type"
	case NACKMessageTooLarge:
		return "message too large"
	case NACKOutOfMemory:
		return "out of memory"
	case NACKInvalidPayloadLength:
		return "invalid payload length"
	}
	return fmt.Sprintf("generic NACK code %#02x", byte(c))
}

// ActivationType is the routing activation type a tester asks for.
type ActivationType byte

// The routing activation types.
const (
	ActivationDefault         ActivationType = 0x00
	ActivationWWHOBD          ActivationType = 0x01
	ActivationCentralSecurity ActivationType = 0xE0
)

// ActivationCode is the response code of a routing activation response.
type ActivationCode byte

// The routing activation response codes.
const (
	ActivationUnknownSource         ActivationCode = 0x00 // denied: unknown source address
	ActivationNoFreeSocket          ActivationCode = 0x01 // denied: every supported TCP_DATA socket registered and active
	ActivationSourceMismatch        ActivationCode = 0x02 // denied: another source address is already active on this socket
	ActivationSourceActiveElsewhere ActivationCode = 0x03 // denied: the source address is active on another socket
	ActivationMissingAuthentication ActivationCode = 0x04 // denied: authentication missing
	ActivationRejectedConfirmation  ActivationCode = 0x05 // denied: confirmation rejected
	ActivationUnsupportedType       ActivationCode = 0x06 // denied: unsupported routing activation type
	ActivationTLSRequired           ActivationCode = 0x07 // denied: a TLS connection is required (ISO 13400-2:2019)
	ActivationSuccess               ActivationCode = 0x10 // routing activated
	ActivationConfirmationRequired  ActivationCode = 0x11 // will be activated once confirmed
)

// Activated reports whether the code activates routing.
func (c ActivationCode) Activated() bool { return c == ActivationSuccess }

// ClosesSocket reports whether the entity closes the TCP socket after answering with this code:
// every denial but missing authentication and rejected confirmation, after which the tester may
// try again on the same socket.
func (c ActivationCode) ClosesSocket() bool {
	switch c {
	case ActivationSuccess, ActivationConfirmationRequired, ActivationMissingAuthentication, ActivationRejectedConfirmation:
		return false
	}
	return c <= ActivationTLSRequired
}

// String names the code as ISO 13400-2 does.
func (c ActivationCode) String() string {
	switch c {
	case ActivationUnknownSource:
		return "denied: unknown source address"
	case ActivationNoFreeSocket:
		return "denied: all sockets registered and active"
	case ActivationSourceMismatch:
		return "denied: another source address is active on this socket"
	case ActivationSourceActiveElsewhere:
		return "denied: source address active on another socket"
	case ActivationMissingAuthentication:
		return "denied: missing authentication"
	case ActivationRejectedConfirmation:
		return "denied: rejected confirmation"
	case ActivationUnsupportedType:
		return "denied: unsupported routing activation type"
	case ActivationTLSRequired:
		return "denied: TLS required"
	case ActivationSuccess:
		return "routing successfully activated"
	case ActivationConfirmationRequired:
		return "routing will be activated: confirmation required"
	}
	return fmt.Sprintf("routing activation code %#02x", byte(c))
}

// DiagnosticCode is the code of a diagnostic message negative acknowledge (0x8003); a positive
// acknowledge (0x8002) carries DiagnosticACKCode.
type DiagnosticCode byte

// The diagnostic message acknowledge codes.
const (
	DiagnosticACKCode           DiagnosticCode = 0x00 // the positive acknowledge's code
	DiagnosticInvalidSource     DiagnosticCode = 0x02 // the source address is not active on the socket; the socket is closed
	DiagnosticUnknownTarget     DiagnosticCode = 0x03
	DiagnosticMessageTooLarge   DiagnosticCode = 0x04
	DiagnosticOutOfMemory       DiagnosticCode = 0x05
	DiagnosticTargetUnreachable DiagnosticCode = 0x06
	DiagnosticUnknownNetwork    DiagnosticCode = 0x07
	DiagnosticTransportError    DiagnosticCode = 0x08
)

// String names the code as ISO 13400-2 does.
func (c DiagnosticCode) String() string {
	switch c {
	case DiagnosticInvalidSource:
		return "invalid source address"
	case DiagnosticUnknownTarget:
		return "unknown target address"
	case DiagnosticMessageTooLarge:
		return "diagnostic message too large"
	case DiagnosticOutOfMemory:
		return "out of memory"
	case DiagnosticTargetUnreachable:
		return "target unreachable"
	case DiagnosticUnknownNetwork:
		return "unknown network"
	case DiagnosticTransportError:
		return "transport protocol error"
	}
	return fmt.Sprintf("diagnostic NACK code %#02x", byte(c))
}

// PowerMode is the diagnostic power mode an entity reports.
type PowerMode byte

// The diagnostic power modes.
const (
	PowerNotReady     PowerMode = 0x00
	PowerReady        PowerMode = 0x01
	PowerNotSupported PowerMode = 0x02
)

// NodeType is the kind of entity in an entity status response.
type NodeType byte

// The node types.
const (
	NodeGateway NodeType = 0x00
	NodeNode    NodeType = 0x01
)

// FurtherAction is the further action byte of a vehicle announcement.
type FurtherAction byte

// The further action codes (0x10 and up are the manufacturer's).
const (
	NoFurtherAction         FurtherAction = 0x00
	CentralSecurityRequired FurtherAction = 0x10
)
