package doip

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var vin = [17]byte([]byte("WAUZZZ8V5KA000001"))

// codecCases are messages written out by hand from ISO 13400-2's tables.
var codecCases = []struct {
	name string
	wire string
	msg  Message
}{
	{"generic NACK", "02fd0000 00000001 04", Message{2, GenericNACK{Code: NACKInvalidPayloadLength}}},
	{"vehicle identification, version 0xFF", "ff000001 00000000", Message{0xFF, VehicleIdentificationRequest{}}},
	{"vehicle identification by EID", "03fc0002 00000006 001a2b3c4d5e", Message{3, VehicleIdentificationRequestEID{EID: [6]byte{0, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e}}}},
	{"vehicle identification by VIN", "02fd0003 00000011 5741555a5a5a3856354b413030303030" + "31", Message{2, VehicleIdentificationRequestVIN{VIN: vin}}},
	{"vehicle announcement", "02fd0004 00000020 5741555a5a5a3856354b4130303030303110 01 001a2b3c4d5e 0a0b0c0d0e0f 00",
		Message{2, VehicleAnnouncement{VIN: vin, LogicalAddress: 0x1001, EID: [6]byte{0, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e}, GID: [6]byte{10, 11, 12, 13, 14, 15}}}},
	{"vehicle announcement with sync status", "03fc0004 00000021 5741555a5a5a3856354b4130303030303110 00 000000000000 000000000000 10 00",
		Message{3, VehicleAnnouncement{VIN: vin, LogicalAddress: 0x1000, FurtherAction: CentralSecurityRequired, HasSyncStatus: true}}},
	{"routing activation request", "02fd0005 00000007 0e00 00 00000000", Message{2, RoutingActivationRequest{SourceAddress: 0x0E00}}},
	{"routing activation request with OEM", "02fd0005 0000000b 0e80 e0 00000000 deadbeef",
		Message{2, RoutingActivationRequest{SourceAddress: 0x0E80, ActivationType: ActivationCentralSecurity, OEM: []byte{0xde, 0xad, 0xbe, 0xef}}}},
	{"routing activation response", "02fd0006 00000009 0e00 1001 10 00000000", Message{2, RoutingActivationResponse{TesterAddress: 0x0E00, EntityAddress: 0x1001, Code: ActivationSuccess}}},
	{"routing activation response with OEM", "03fc0006 0000000d 0e00 1001 04 00000000 01020304",
		Message{3, RoutingActivationResponse{TesterAddress: 0x0E00, EntityAddress: 0x1001, Code: ActivationMissingAuthentication, OEM: []byte{1, 2, 3, 4}}}},
	{"alive check request", "02fd0007 00000000", Message{2, AliveCheckRequest{}}},
	{"alive check response", "02fd0008 00000002 0e00", Message{2, AliveCheckResponse{SourceAddress: 0x0E00}}},
	{"entity status request", "02fd4001 00000000", Message{2, EntityStatusRequest{}}},
	{"entity status response", "02fd4002 00000003 00 04 01", Message{2, EntityStatusResponse{NodeType: NodeGateway, MaxSockets: 4, OpenSockets: 1}}},
	{"entity status response with size", "02fd4002 00000007 01 10 00 00001004",
		Message{2, EntityStatusResponse{NodeType: NodeNode, MaxSockets: 16, HasMaxDataSize: true, MaxDataSize: 4100}}},
	{"power mode request", "02fd4003 00000000", Message{2, PowerModeRequest{}}},
	{"power mode response", "02fd4004 00000001 01", Message{2, PowerModeResponse{Mode: PowerReady}}},
	{"diagnostic message", "02fd8001 00000006 0e00 1001 1003", Message{2, DiagnosticMessage{SourceAddress: 0x0E00, TargetAddress: 0x1001, Data: []byte{0x10, 0x03}}}},
	{"diagnostic ACK", "02fd8002 00000005 1001 0e00 00", Message{2, DiagnosticACK{SourceAddress: 0x1001, TargetAddress: 0x0E00, Previous: []byte{}}}},
	{"diagnostic NACK with previous data", "02fd8003 00000007 1fff 0e00 03 3e00",
		Message{2, DiagnosticNACK{SourceAddress: 0x1FFF, TargetAddress: 0x0E00, Code: DiagnosticUnknownTarget, Previous: []byte{0x3e, 0x00}}}},
}

func TestCodecRoundTrip(t *testing.T) {
	for _, c := range codecCases {
		t.Run(c.name, func(t *testing.T) {
			wire := unhex(t, c.wire)
			got, n, err := Parse(append(wire, 0xAA, 0xBB)) // what follows is the next message
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if n != len(wire) || !reflect.DeepEqual(got, c.msg) {
				t.Fatalf("Parse = %#v, %d; want %#v, %d", got, n, c.msg, len(wire))
			}
			if enc := Append([]byte{0x55}, c.msg); !bytes.Equal(enc, append([]byte{0x55}, wire...)) {
				t.Fatalf("Append = % x, want 55 % x", enc, wire)
			}
			if c.msg.Len() != len(wire) {
				t.Fatalf("Len = %d, want %d", c.msg.Len(), len(wire))
			}
			read, err := ReadMessage(bytes.NewReader(wire), 4096)
			if err != nil || !reflect.DeepEqual(read, c.msg) {
				t.Fatalf("ReadMessage = %#v, %v", read, err)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, c := range []struct {
		name, wire string
		want       error
		code       NACKCode
	}{
		{"inverse byte wrong", "02fc8001 00000005 0e00 1001 3e", ErrIncorrectPattern, NACKIncorrectPattern},
		{"version 0x01", "01fe0007 00000000", ErrIncorrectPattern, NACKIncorrectPattern},
		{"version 0x04", "04fb0007 00000000", ErrIncorrectPattern, NACKIncorrectPattern},
		{"version 0xFF outside vehicle identification", "ff000005 00000007 0e00 00 00000000", ErrIncorrectPattern, NACKIncorrectPattern},
		{"unknown payload type", "02fd9999 00000000", ErrUnknownPayloadType, NACKUnknownPayloadType},
		{"reserved payload type 0x0009", "02fd0009 00000000", ErrUnknownPayloadType, NACKUnknownPayloadType},
		{"routing activation of 8 bytes", "02fd0005 00000008 0e00 00 00000000 00", ErrInvalidPayloadLength, NACKInvalidPayloadLength},
		{"alive check request with a payload", "02fd0007 00000001 00", ErrInvalidPayloadLength, NACKInvalidPayloadLength},
		{"diagnostic message without data", "02fd8001 00000004 0e00 1001", ErrInvalidPayloadLength, NACKInvalidPayloadLength},
		{"announcement of 34 bytes", "02fd0004 00000022" + strings.Repeat("00", 34), ErrInvalidPayloadLength, NACKInvalidPayloadLength},
		{"short header", "02fd80", io.ErrUnexpectedEOF, 0xFF},
		{"short payload", "02fd8001 00000006 0e00 1001 10", io.ErrUnexpectedEOF, 0xFF},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, n, err := Parse(unhex(t, c.wire))
			if !errors.Is(err, c.want) || n != 0 {
				t.Fatalf("Parse = %d, %v; want %v", n, err, c.want)
			}
			code, ok := NACKCodeOf(err)
			if ok != (c.code != 0xFF) || ok && code != c.code {
				t.Fatalf("NACKCodeOf = %v, %v; want %v", code, ok, c.code)
			}
		})
	}
}

func TestReadMessageDiscardsAndStaysInStep(t *testing.T) {
	stream := unhex(t, "02fd9999 00000003 010203"+ // unknown type: discarded
		"02fd8001 00000009 0e00 1001 0102030405"+ // 9 > 8: too large, discarded
		"02fd8001 00000005 0e00 1001 3e"+ // the next message is intact
		"02fd0007 00000003 000000") // invalid length
	r := bytes.NewReader(stream)
	if _, err := ReadMessage(r, 8); !errors.Is(err, ErrUnknownPayloadType) {
		t.Fatalf("first: %v", err)
	}
	if _, err := ReadMessage(r, 8); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("second: %v", err)
	}
	m, err := ReadMessage(r, 8)
	want := Message{2, DiagnosticMessage{SourceAddress: 0x0E00, TargetAddress: 0x1001, Data: []byte{0x3e}}}
	if err != nil || !reflect.DeepEqual(m, want) {
		t.Fatalf("third = %#v, %v", m, err)
	}
	if _, err := ReadMessage(r, 8); !errors.Is(err, ErrInvalidPayloadLength) {
		t.Fatalf("fourth: %v", err)
	}
	if _, err := ReadMessage(bytes.NewReader(unhex(t, "02fd8001 00000006 0e00")), 8); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("cut payload: %v", err)
	}
}

func TestCodes(t *testing.T) {
	closing := map[ActivationCode]bool{0x00: true, 0x01: true, 0x02: true, 0x03: true, 0x04: false, 0x05: false,
		0x06: true, 0x07: true, 0x10: false, 0x11: false, 0xE0: false}
	for code, want := range closing {
		if code.ClosesSocket() != want {
			t.Errorf("activation code %#02x closes the socket: %v, want %v", byte(code), !want, want)
		}
	}
	for code, want := range map[NACKCode]bool{0: true, 1: false, 2: false, 3: false, 4: true} {
		if code.ClosesSocket() != want {
			t.Errorf("generic NACK %#02x closes the socket: %v, want %v", byte(code), !want, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, c := range codecCases {
		f.Add(unhex(f, c.wire))
	}
	f.Add(unhex(f, "02fd8001 ffffffff 0e00"))
	f.Add(unhex(f, "ff000003 00000011"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, n, err := Parse(b)
		r, rerr := ReadMessage(bytes.NewReader(b), 1<<16)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with n = %d", err, n)
			}
			if rerr == nil && len(b) >= HeaderLength+1<<16 {
				return // too large for ReadMessage, within reach of Parse: not comparable
			}
			if rerr == nil {
				t.Fatalf("Parse failed (%v), ReadMessage read %#v", err, r)
			}
			return
		}
		if n > len(b) || m.Len() != n {
			t.Fatalf("n = %d, Len = %d, input %d bytes", n, m.Len(), len(b))
		}
		if enc := Append(nil, m); !bytes.Equal(enc, b[:n]) {
			t.Fatalf("Append(Parse(% x)) = % x", b[:n], enc)
		}
		if n-HeaderLength <= 1<<16 && (rerr != nil || !reflect.DeepEqual(r, m)) {
			t.Fatalf("ReadMessage = %#v, %v; Parse = %#v", r, rerr, m)
		}
		want := bytes.Clone(b[:n])
		c := Message{m.Version, Clone(m.Payload)}
		clear(b)
		if enc := Append(nil, c); !bytes.Equal(enc, want) {
			t.Fatalf("the clone changed with its input: % x, want % x", enc, want)
		}
	})
}
