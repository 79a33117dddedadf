package doip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// HeaderLength is the length of the generic DoIP header.
const HeaderLength = 8

// Protocol versions of the generic header.
const (
	Version2012 byte = 0x02 // ISO 13400-2:2012
	Version2019 byte = 0x03 // ISO 13400-2:2019
	// VersionDefault is accepted on vehicle identification requests only: the tester does not
	// know the entity's version, and the entity answers in its own.
	VersionDefault byte = 0xFF
)

// PayloadType is the payload type of the generic header.
type PayloadType uint16

// The payload types.
const (
	TypeGenericNACK                  PayloadType = 0x0000
	TypeVehicleIdentificationRequest PayloadType = 0x0001
	TypeVehicleIdentificationEID     PayloadType = 0x0002
	TypeVehicleIdentificationVIN     PayloadType = 0x0003
	TypeVehicleAnnouncement          PayloadType = 0x0004 // also the vehicle identification response
	TypeRoutingActivationRequest     PayloadType = 0x0005
	TypeRoutingActivationResponse    PayloadType = 0x0006
	TypeAliveCheckRequest            PayloadType = 0x0007
	TypeAliveCheckResponse           PayloadType = 0x0008
	TypeEntityStatusRequest          PayloadType = 0x4001
	TypeEntityStatusResponse         PayloadType = 0x4002
	TypePowerModeRequest             PayloadType = 0x4003
	TypePowerModeResponse            PayloadType = 0x4004
	TypeDiagnosticMessage            PayloadType = 0x8001
	TypeDiagnosticACK                PayloadType = 0x8002
	TypeDiagnosticNACK               PayloadType = 0x8003
)

// Errors of the generic header and payload checks, in the order ISO 13400-2 makes them; each
// has its generic NACK code (NACKCodeOf).
var (
	ErrIncorrectPattern     = errors.New("doip: incorrect pattern format")
	ErrUnknownPayloadType   = errors.New("doip: unknown payload type")
	ErrMessageTooLarge      = errors.New("doip: message too large")
	ErrOutOfMemory          = errors.New("doip: out of memory")
	ErrInvalidPayloadLength = errors.New("doip: invalid payload length")
)

// NACKCodeOf returns the generic NACK code that answers err, if err is one of the header
// errors.
func NACKCodeOf(err error) (NACKCode, bool) {
	switch {
	case errors.Is(err, ErrIncorrectPattern):
		return NACKIncorrectPattern, true
	case errors.Is(err, ErrUnknownPayloadType):
		return NACKUnknownPayloadType, true
	case errors.Is(err, ErrMessageTooLarge):
		return NACKMessageTooLarge, true
	case errors.Is(err, ErrOutOfMemory):
		return NACKOutOfMemory, true
	case errors.Is(err, ErrInvalidPayloadLength):
		return NACKInvalidPayloadLength, true
	}
	return 0, false
}

// Header is the generic DoIP header: protocol version (its inverse follows it on the wire),
// payload type and payload length.
type Header struct {
	Version byte
	Type    PayloadType
	Length  uint32
}

// ParseHeader reads the generic header at the start of b. It checks the pattern: the inverse
// version byte, and a version this package speaks (0x02 or 0x03, and 0xFF on vehicle
// identification requests); a wrong pattern is ErrIncorrectPattern. Fewer than 8 bytes give
// io.ErrUnexpectedEOF. The payload type and length are not checked (CheckLength does).
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderLength {
		return Header{}, io.ErrUnexpectedEOF
	}
	h := Header{Version: b[0], Type: PayloadType(binary.BigEndian.Uint16(b[2:])), Length: binary.BigEndian.Uint32(b[4:])}
	if b[1] != ^b[0] {
		return Header{}, fmt.Errorf("%w: version %#02x, inverse %#02x", ErrIncorrectPattern, b[0], b[1])
	}
	switch {
	case h.Version == Version2012 || h.Version == Version2019:
	case h.Version == VersionDefault && h.Type.isVehicleIdentificationRequest():
	default:
		return Header{}, fmt.Errorf("%w: version %#02x on payload type %#04x", ErrIncorrectPattern, h.Version, uint16(h.Type))
	}
	return h, nil
}

// AppendHeader appends the encoding of h to b.
func AppendHeader(b []byte, h Header) []byte {
	b = append(b, h.Version, ^h.Version)
	b = binary.BigEndian.AppendUint16(b, uint16(h.Type))
	return binary.BigEndian.AppendUint32(b, h.Length)
}

func (t PayloadType) isVehicleIdentificationRequest() bool {
	return t == TypeVehicleIdentificationRequest || t == TypeVehicleIdentificationEID || t == TypeVehicleIdentificationVIN
}

// Known reports whether t is a payload type this package parses.
func (t PayloadType) Known() bool {
	_, ok := payloadLengths[t]
	return ok
}

// payloadLengths are the lengths ISO 13400-2 allows for each payload type: exact lengths, or
// (for the diagnostic messages, marked by a negative value) a minimum.
var payloadLengths = map[PayloadType][]int{
	TypeGenericNACK:                  {1},
	TypeVehicleIdentificationRequest: {0},
	TypeVehicleIdentificationEID:     {6},
	TypeVehicleIdentificationVIN:     {17},
	TypeVehicleAnnouncement:          {32, 33},
	TypeRoutingActivationRequest:     {7, 11},
	TypeRoutingActivationResponse:    {9, 13},
	TypeAliveCheckRequest:            {0},
	TypeAliveCheckResponse:           {2},
	TypeEntityStatusRequest:          {0},
	TypeEntityStatusResponse:         {3, 7},
	TypePowerModeRequest:             {0},
	TypePowerModeResponse:            {1},
	TypeDiagnosticMessage:            {-5},
	TypeDiagnosticACK:                {-5},
	TypeDiagnosticNACK:               {-5},
}

// CheckLength checks the header's payload type and length: an unknown type is
// ErrUnknownPayloadType, a length the type does not allow ErrInvalidPayloadLength.
func CheckLength(h Header) error {
	lengths, ok := payloadLengths[h.Type]
	if !ok {
		return fmt.Errorf("%w: %#04x", ErrUnknownPayloadType, uint16(h.Type))
	}
	for _, n := range lengths {
		if n >= 0 && h.Length == uint32(n) || n < 0 && h.Length >= uint32(-n) {
			return nil
		}
	}
	return fmt.Errorf("%w: %d bytes for payload type %#04x", ErrInvalidPayloadLength, h.Length, uint16(h.Type))
}

// String names the payload type.
func (t PayloadType) String() string {
	if name, ok := payloadNames[t]; ok {
		return name
	}
	return fmt.Sprintf("payload type %#04x", uint16(t))
}

var payloadNames = map[PayloadType]string{
	TypeGenericNACK:                  "generic NACK",
	TypeVehicleIdentificationRequest: "vehicle identification request",
	TypeVehicleIdentificationEID:     "vehicle identification request by EID",
	TypeVehicleIdentificationVIN:     "vehicle identification request by VIN",
	TypeVehicleAnnouncement:          "vehicle announcement",
	TypeRoutingActivationRequest:     "routing activation request",
	TypeRoutingActivationResponse:    "routing activation response",
	TypeAliveCheckRequest:            "alive check request",
	TypeAliveCheckResponse:           "alive check response",
	TypeEntityStatusRequest:          "entity status request",
	TypeEntityStatusResponse:         "entity status response",
	TypePowerModeRequest:             "diagnostic power mode request",
	TypePowerModeResponse:            "diagnostic power mode response",
	TypeDiagnosticMessage:            "diagnostic message",
	TypeDiagnosticACK:                "diagnostic message ACK",
	TypeDiagnosticNACK:               "diagnostic message NACK",
}
