package doip

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// Payload is the payload of one DoIP message.
type Payload interface {
	// PayloadType is the type the generic header announces.
	PayloadType() PayloadType
	// Len is the number of bytes AppendPayload writes.
	Len() int
	// AppendPayload appends the encoding of the payload.
	AppendPayload(b []byte) []byte
}

// Message is one DoIP message: a protocol version and a payload (the header's type and length
// follow from the payload).
type Message struct {
	Version byte
	Payload Payload
}

// Len is the number of bytes Append writes for m.
func (m Message) Len() int { return HeaderLength + m.Payload.Len() }

// Append appends the encoding of m, header and payload, to b.
func Append(b []byte, m Message) []byte {
	b = AppendHeader(b, Header{Version: m.Version, Type: m.Payload.PayloadType(), Length: uint32(m.Payload.Len())})
	return m.Payload.AppendPayload(b)
}

// Parse reads the message at the start of b and returns it with the number of bytes it covers.
// The header is checked first (ParseHeader, then CheckLength); a b shorter than the header's
// length gives io.ErrUnexpectedEOF. Byte slices in the payload alias b.
func Parse(b []byte) (Message, int, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return Message{}, 0, err
	}
	if err := CheckLength(h); err != nil {
		return Message{}, 0, err
	}
	if uint64(len(b)-HeaderLength) < uint64(h.Length) {
		return Message{}, 0, io.ErrUnexpectedEOF
	}
	n := HeaderLength + int(h.Length)
	p, err := ParsePayload(h, b[HeaderLength:n])
	if err != nil {
		return Message{}, 0, err
	}
	return Message{Version: h.Version, Payload: p}, n, nil
}

// ParsePayload decodes the payload p of a message whose header is h; p must be h.Length bytes.
// Byte slices in the payload alias p.
func ParsePayload(h Header, p []byte) (Payload, error) {
	if err := CheckLength(h); err != nil {
		return nil, err
	}
	if uint64(len(p)) != uint64(h.Length) {
		return nil, fmt.Errorf("doip: %d payload bytes for a header announcing %d", len(p), h.Length)
	}
	be := binary.BigEndian
	switch h.Type {
	case TypeGenericNACK:
		return GenericNACK{Code: NACKCode(p[0])}, nil
	case TypeVehicleIdentificationRequest:
		return VehicleIdentificationRequest{}, nil
	case TypeVehicleIdentificationEID:
		return VehicleIdentificationRequestEID{EID: [6]byte(p)}, nil
	case TypeVehicleIdentificationVIN:
		return VehicleIdentificationRequestVIN{VIN: [17]byte(p)}, nil
	case TypeVehicleAnnouncement:
		a := VehicleAnnouncement{VIN: [17]byte(p), LogicalAddress: be.Uint16(p[17:]), EID: [6]byte(p[19:]),
			GID: [6]byte(p[25:]), FurtherAction: FurtherAction(p[31])}
		if len(p) == 33 {
			a.HasSyncStatus, a.SyncStatus = true, p[32]
		}
		return a, nil
	case TypeRoutingActivationRequest:
		return RoutingActivationRequest{SourceAddress: be.Uint16(p), ActivationType: ActivationType(p[2]),
			Reserved: be.Uint32(p[3:]), OEM: oem(p[7:])}, nil
	case TypeRoutingActivationResponse:
		return RoutingActivationResponse{TesterAddress: be.Uint16(p), EntityAddress: be.Uint16(p[2:]),
			Code: ActivationCode(p[4]), Reserved: be.Uint32(p[5:]), OEM: oem(p[9:])}, nil
	case TypeAliveCheckRequest:
		return AliveCheckRequest{}, nil
	case TypeAliveCheckResponse:
		return AliveCheckResponse{SourceAddress: be.Uint16(p)}, nil
	case TypeEntityStatusRequest:
		return EntityStatusRequest{}, nil
	case TypeEntityStatusResponse:
		s := EntityStatusResponse{NodeType: NodeType(p[0]), MaxSockets: p[1], OpenSockets: p[2]}
		if len(p) == 7 {
			s.HasMaxDataSize, s.MaxDataSize = true, be.Uint32(p[3:])
		}
		return s, nil
	case TypePowerModeRequest:
		return PowerModeRequest{}, nil
	case TypePowerModeResponse:
		return PowerModeResponse{Mode: PowerMode(p[0])}, nil
	case TypeDiagnosticMessage:
		return DiagnosticMessage{SourceAddress: be.Uint16(p), TargetAddress: be.Uint16(p[2:]), Data: p[4:]}, nil
	case TypeDiagnosticACK:
		return DiagnosticACK{SourceAddress: be.Uint16(p), TargetAddress: be.Uint16(p[2:]), Code: DiagnosticCode(p[4]), Previous: p[5:]}, nil
	case TypeDiagnosticNACK:
		return DiagnosticNACK{SourceAddress: be.Uint16(p), TargetAddress: be.Uint16(p[2:]), Code: DiagnosticCode(p[4]), Previous: p[5:]}, nil
	}
	return nil, fmt.Errorf("%w: %#04x", ErrUnknownPayloadType, uint16(h.Type)) // unreachable: CheckLength knows the types
}

// oem returns the optional OEM-specific field: nil when absent.
func oem(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	return p
}

// GenericNACK (0x0000) answers a message whose header or payload the receiver rejects.
type GenericNACK struct{ Code NACKCode }

// VehicleIdentificationRequest (0x0001) asks every entity to identify itself.
type VehicleIdentificationRequest struct{}

// VehicleIdentificationRequestEID (0x0002) asks the entity with this EID to identify itself.
type VehicleIdentificationRequestEID struct{ EID [6]byte }

// VehicleIdentificationRequestVIN (0x0003) asks the entities of this vehicle to identify
// themselves.
type VehicleIdentificationRequestVIN struct{ VIN [17]byte }

// VehicleAnnouncement (0x0004) is both the vehicle announcement an entity sends when it starts and
// its answer to a vehicle identification request.
type VehicleAnnouncement struct {
	VIN            [17]byte
	LogicalAddress uint16
	EID            [6]byte // entity identification, usually a MAC address
	GID            [6]byte // group identification
	FurtherAction  FurtherAction
	HasSyncStatus  bool // the optional VIN/GID synchronisation status is present
	SyncStatus     byte
}

// RoutingActivationRequest (0x0005) asks the entity to route diagnostic messages from
// SourceAddress on this socket.
type RoutingActivationRequest struct {
	SourceAddress  uint16
	ActivationType ActivationType
	Reserved       uint32 // reserved by ISO 13400, zero
	OEM            []byte // optional, 4 bytes when present
}

// RoutingActivationResponse (0x0006) answers a routing activation request.
type RoutingActivationResponse struct {
	TesterAddress uint16
	EntityAddress uint16
	Code          ActivationCode
	Reserved      uint32
	OEM           []byte // optional, 4 bytes when present
}

// AliveCheckRequest (0x0007) asks the tester on a socket whether it is still there.
type AliveCheckRequest struct{}

// AliveCheckResponse (0x0008) is the tester's answer to an alive check, with its address.
type AliveCheckResponse struct{ SourceAddress uint16 }

// EntityStatusRequest (0x4001) asks for the entity's status.
type EntityStatusRequest struct{}

// EntityStatusResponse (0x4002) reports the entity's node type and sockets.
type EntityStatusResponse struct {
	NodeType       NodeType
	MaxSockets     byte // concurrent TCP_DATA sockets supported
	OpenSockets    byte // TCP_DATA sockets currently open
	HasMaxDataSize bool // the optional maximum data size is present
	MaxDataSize    uint32
}

// PowerModeRequest (0x4003) asks for the diagnostic power mode.
type PowerModeRequest struct{}

// PowerModeResponse (0x4004) reports the diagnostic power mode.
type PowerModeResponse struct{ Mode PowerMode }

// DiagnosticMessage (0x8001) carries one UDS message between a tester and a logical address.
type DiagnosticMessage struct {
	SourceAddress uint16
	TargetAddress uint16
	Data          []byte // at least one byte
}

// DiagnosticACK (0x8002) acknowledges a diagnostic message: source = the addressed node, target =
// the tester.
type DiagnosticACK struct {
	SourceAddress uint16
	TargetAddress uint16
	Code          DiagnosticCode // DiagnosticACKCode
	Previous      []byte         // optional: the start of the acknowledged message's data
}

// DiagnosticNACK (0x8003) refuses a diagnostic message: source = the addressed node, target = the
// tester.
type DiagnosticNACK struct {
	SourceAddress uint16
	TargetAddress uint16
	Code          DiagnosticCode
	Previous      []byte // optional: the start of the refused message's data
}

// PayloadType implements Payload.
func (GenericNACK) PayloadType() PayloadType { return TypeGenericNACK }

// Len implements Payload.
func (GenericNACK) Len() int { return 1 }

// AppendPayload implements Payload.
func (p GenericNACK) AppendPayload(b []byte) []byte { return append(b, byte(p.Code)) }

// PayloadType implements Payload.
func (VehicleIdentificationRequest) PayloadType() PayloadType {
	return TypeVehicleIdentificationRequest
}

// Len implements Payload.
func (VehicleIdentificationRequest) Len() int { return 0 }

// AppendPayload implements Payload.
func (VehicleIdentificationRequest) AppendPayload(b []byte) []byte { return b }

// PayloadType implements Payload.
func (VehicleIdentificationRequestEID) PayloadType() PayloadType {
	return TypeVehicleIdentificationEID
}

// Len implements Payload.
func (VehicleIdentificationRequestEID) Len() int { return 6 }

// AppendPayload implements Payload.
func (p VehicleIdentificationRequestEID) AppendPayload(b []byte) []byte {
	return append(b, p.EID[:]...)
}

// PayloadType implements Payload.
func (VehicleIdentificationRequestVIN) PayloadType() PayloadType {
	return TypeVehicleIdentificationVIN
}

// Len implements Payload.
func (VehicleIdentificationRequestVIN) Len() int { return 17 }

// AppendPayload implements Payload.
func (p VehicleIdentificationRequestVIN) AppendPayload(b []byte) []byte {
	return append(b, p.VIN[:]...)
}

// PayloadType implements Payload.
func (VehicleAnnouncement) PayloadType() PayloadType { return TypeVehicleAnnouncement }

// Len implements Payload.
func (p VehicleAnnouncement) Len() int { return 32 + boolInt(p.HasSyncStatus) }

// AppendPayload implements Payload.
func (p VehicleAnnouncement) AppendPayload(b []byte) []byte {
	b = append(b, p.VIN[:]...)
	b = binary.BigEndian.AppendUint16(b, p.LogicalAddress)
	b = append(append(b, p.EID[:]...), p.GID[:]...)
	b = append(b, byte(p.FurtherAction))
	if p.HasSyncStatus {
		b = append(b, p.SyncStatus)
	}
	return b
}

// PayloadType implements Payload.
func (RoutingActivationRequest) PayloadType() PayloadType { return TypeRoutingActivationRequest }

// Len implements Payload.
func (p RoutingActivationRequest) Len() int { return 7 + oemLen(p.OEM) }

// AppendPayload implements Payload.
func (p RoutingActivationRequest) AppendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, p.SourceAddress)
	b = append(b, byte(p.ActivationType))
	b = binary.BigEndian.AppendUint32(b, p.Reserved)
	return appendOEM(b, p.OEM)
}

// PayloadType implements Payload.
func (RoutingActivationResponse) PayloadType() PayloadType { return TypeRoutingActivationResponse }

// Len implements Payload.
func (p RoutingActivationResponse) Len() int { return 9 + oemLen(p.OEM) }

// AppendPayload implements Payload.
func (p RoutingActivationResponse) AppendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, p.TesterAddress)
	b = binary.BigEndian.AppendUint16(b, p.EntityAddress)
	b = append(b, byte(p.Code))
	b = binary.BigEndian.AppendUint32(b, p.Reserved)
	return appendOEM(b, p.OEM)
}

// PayloadType implements Payload.
func (AliveCheckRequest) PayloadType() PayloadType { return TypeAliveCheckRequest }

// Len implements Payload.
func (AliveCheckRequest) Len() int { return 0 }

// AppendPayload implements Payload.
func (AliveCheckRequest) AppendPayload(b []byte) []byte { return b }

// PayloadType implements Payload.
func (AliveCheckResponse) PayloadType() PayloadType { return TypeAliveCheckResponse }

// Len implements Payload.
func (AliveCheckResponse) Len() int { return 2 }

// AppendPayload implements Payload.
func (p AliveCheckResponse) AppendPayload(b []byte) []byte {
	return binary.BigEndian.AppendUint16(b, p.SourceAddress)
}

// PayloadType implements Payload.
func (EntityStatusRequest) PayloadType() PayloadType { return TypeEntityStatusRequest }

// Len implements Payload.
func (EntityStatusRequest) Len() int { return 0 }

// AppendPayload implements Payload.
func (EntityStatusRequest) AppendPayload(b []byte) []byte { return b }

// PayloadType implements Payload.
func (EntityStatusResponse) PayloadType() PayloadType { return TypeEntityStatusResponse }

// Len implements Payload.
func (p EntityStatusResponse) Len() int { return 3 + 4*boolInt(p.HasMaxDataSize) }

// AppendPayload implements Payload.
func (p EntityStatusResponse) AppendPayload(b []byte) []byte {
	b = append(b, byte(p.NodeType), p.MaxSockets, p.OpenSockets)
	if p.HasMaxDataSize {
		b = binary.BigEndian.AppendUint32(b, p.MaxDataSize)
	}
	return b
}

// PayloadType implements Payload.
func (PowerModeRequest) PayloadType() PayloadType { return TypePowerModeRequest }

// Len implements Payload.
func (PowerModeRequest) Len() int { return 0 }

// AppendPayload implements Payload.
func (PowerModeRequest) AppendPayload(b []byte) []byte { return b }

// PayloadType implements Payload.
func (PowerModeResponse) PayloadType() PayloadType { return TypePowerModeResponse }

// Len implements Payload.
func (PowerModeResponse) Len() int { return 1 }

// AppendPayload implements Payload.
func (p PowerModeResponse) AppendPayload(b []byte) []byte { return append(b, byte(p.Mode)) }

// PayloadType implements Payload.
func (DiagnosticMessage) PayloadType() PayloadType { return TypeDiagnosticMessage }

// Len implements Payload.
func (p DiagnosticMessage) Len() int { return 4 + len(p.Data) }

// AppendPayload implements Payload.
func (p DiagnosticMessage) AppendPayload(b []byte) []byte {
	return append(appendAddresses(b, p.SourceAddress, p.TargetAddress), p.Data...)
}

// PayloadType implements Payload.
func (DiagnosticACK) PayloadType() PayloadType { return TypeDiagnosticACK }

// Len implements Payload.
func (p DiagnosticACK) Len() int { return 5 + len(p.Previous) }

// AppendPayload implements Payload.
func (p DiagnosticACK) AppendPayload(b []byte) []byte {
	return append(append(appendAddresses(b, p.SourceAddress, p.TargetAddress), byte(p.Code)), p.Previous...)
}

// PayloadType implements Payload.
func (DiagnosticNACK) PayloadType() PayloadType { return TypeDiagnosticNACK }

// Len implements Payload.
func (p DiagnosticNACK) Len() int { return 5 + len(p.Previous) }

// AppendPayload implements Payload.
func (p DiagnosticNACK) AppendPayload(b []byte) []byte {
	return append(append(appendAddresses(b, p.SourceAddress, p.TargetAddress), byte(p.Code)), p.Previous...)
}

func appendAddresses(b []byte, source, target uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, source), target)
}

// oemLen is the length of an OEM-specific field: 4 when present.
func oemLen(oem []byte) int {
	if oem == nil {
		return 0
	}
	return 4
}

// appendOEM appends the OEM-specific field, cut or zero-padded to its 4 bytes, when present.
func appendOEM(b []byte, oem []byte) []byte {
	if oem == nil {
		return b
	}
	var f [4]byte
	copy(f[:], oem)
	return append(b, f[:]...)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Clone returns a copy of p whose byte slices do not alias the buffer it was parsed from.
func Clone(p Payload) Payload {
	switch v := p.(type) {
	case RoutingActivationRequest:
		v.OEM = slices.Clone(v.OEM)
		return v
	case RoutingActivationResponse:
		v.OEM = slices.Clone(v.OEM)
		return v
	case DiagnosticMessage:
		v.Data = slices.Clone(v.Data)
		return v
	case DiagnosticACK:
		v.Previous = slices.Clone(v.Previous)
		return v
	case DiagnosticNACK:
		v.Previous = slices.Clone(v.Previous)
		return v
	}
	return p
}
