package profile

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/shekit/shekit/vcan/uds"
)

func mustParse(t *testing.T, src string) *Profile {
	t.Helper()
	p, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultLoadKeyErrors(t *testing.T) {
	st := Default().Operations[LoadKey].Steps[0]
	for _, tt := range []struct {
		erc  byte
		want string
	}{
		{0x07, "71 01 FD 10 07"}, // ERC_KEY_UPDATE_ERROR: positive, ends after the ERC
		{0x0B, "7F 31 72"},       // ERC_MEMORY_FAILURE
		{0x0A, "7F 31 22"},       // ERC_BUSY
	} {
		resp, err := st.EncodeResponse(Values{"ERC": {tt.erc}})
		if err != nil || !bytes.Equal(resp, unhex(t, tt.want)) {
			t.Fatalf("ERC %#02x: EncodeResponse = % X, %v, want %s", tt.erc, resp, err, tt.want)
		}
		v, err := st.DecodeResponse(resp)
		if erc, ok := v.ERC(); err != nil || !ok || byte(erc) != tt.erc || len(v) != 1 {
			t.Fatalf("ERC %#02x: DecodeResponse(% X) = %v, %v", tt.erc, resp, v, err)
		}
	}
	_, err := st.DecodeResponse(unhex(t, "7F 31 33"))
	var nre *uds.NegativeResponseError
	if !errors.As(err, &nre) || nre.NRC != uds.SecurityAccessDenied {
		t.Fatalf("DecodeResponse(7F 31 33) = %v, want a NegativeResponseError 0x33", err)
	}
	for resp, want := range map[string]error{
		"71 01 FD 10 07 00": ErrLength,  // bytes after a non-zero ERC
		"71 01 FD 10 00 01": ErrLength,  // success cut short
		"71 01 FD 11 00":    ErrContent, // another routine's answer
		"71":                ErrContent,
	} {
		if _, err := st.DecodeResponse(unhex(t, resp)); !errors.Is(err, want) {
			t.Errorf("DecodeResponse(%s) = %v, want %v", resp, err, want)
		}
	}
}

func TestEncodeRefusesBadValues(t *testing.T) {
	st := Default().Operations[LoadKey].Steps[0]
	if _, err := st.EncodeRequest(Values{"M1": seq(0, 16), "M2": seq(0, 32)}); !errors.Is(err, ErrMissing) {
		t.Errorf("without M3: %v, want ErrMissing", err)
	}
	if _, err := st.EncodeRequest(Values{"M1": seq(0, 16), "M2": seq(0, 31), "M3": seq(0, 16)}); !errors.Is(err, ErrLength) {
		t.Errorf("31-byte M2: %v, want ErrLength", err)
	}
	if _, err := st.DecodeRequest(unhex(t, "31 01 FD 10 00")); !errors.Is(err, ErrLength) {
		t.Errorf("DecodeRequest of a short request: %v, want ErrLength", err)
	}
}

// didProfile writes M1..M3 with a constant, a length field and a CRC, and reads M4/M5 with a CRC
// over the ERC and the keys, zero-filled on a SHE error.
const didProfile = `version: 1
name: did-test
addressing: {mode: normal-fixed, tester_address: 0xF1, ecu_address: 0x4A}
security: {algorithm: none}
errors: {on_error: zero-fill}
operations:
  ReadUID:
    steps: [{service: read-did, did: 0xF18C, response: [UID]}]
  LoadKey:
    session: extended
    steps:
      - service: write-did
        did: 0x0E01
        request: [{const: 0xA5}, {length: [M1, M2, M3], size: 2}, M1, M2, M3, {crc16: [M1, M2, M3]}]
      - service: read-did
        did: 0x0E02
        response: [ERC, M4, M5, {crc16: [ERC, M4, M5]}]
`

func TestLayoutConstLengthCRC(t *testing.T) {
	op := mustParse(t, didProfile).Operations[LoadKey]
	write, read := op.Steps[0], op.Steps[1]
	req, err := write.EncodeRequest(Values{"M1": seq(0x10, 16), "M2": seq(0x20, 32), "M3": seq(0x40, 16)})
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "2E 0E 01 A5 00 40"+
		"101112131415161718191A1B1C1D1E1F"+
		"202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F"+
		"404142434445464748494A4B4C4D4E4F 2E B1")
	if !bytes.Equal(req, want) {
		t.Fatalf("request\n% X\nwant\n% X", req, want)
	}
	for i, wantErr := range map[int]error{3: ErrContent, 5: ErrContent, len(req) - 1: ErrContent, 20: ErrContent} {
		bad := bytes.Clone(req)
		bad[i] ^= 0x01 // const, length, CRC, and a byte of M1 the CRC covers
		if _, err := write.DecodeRequest(bad); !errors.Is(err, wantErr) {
			t.Errorf("byte %d changed: DecodeRequest = %v, want %v", i, err, wantErr)
		}
	}
	resp, err := read.EncodeResponse(Values{"ERC": {0}, "M4": seq(0x80, 32), "M5": seq(0xA0, 16)})
	if err != nil || !bytes.HasPrefix(resp, unhex(t, "62 0E 02 00 80 81")) || !bytes.HasSuffix(resp, unhex(t, "AF F1 62")) || len(resp) != 3+1+48+2 {
		t.Fatalf("answer % X, %v", resp, err)
	}
	failed, err := read.EncodeResponse(Values{"ERC": {0x07}})
	wantFailed := append(append(unhex(t, "62 0E 02 07"), make([]byte, 48)...), 0xA5, 0xCD)
	if err != nil || !bytes.Equal(failed, wantFailed) {
		t.Fatalf("zero-filled answer\n% X, %v\nwant\n% X", failed, err, wantFailed)
	}
	if v, err := read.DecodeResponse(failed); err != nil || len(v) != 1 || v["ERC"][0] != 0x07 {
		t.Fatalf("DecodeResponse(zero-filled) = %v, %v", v, err)
	}
	if _, err := read.DecodeResponse(unhex(t, "62 0E 02 07")); !errors.Is(err, ErrLength) {
		t.Fatalf("a truncated answer under zero-fill: %v, want ErrLength", err)
	}
	if _, err := read.EncodeResponse(Values{"ERC": {0x0B}}); err != nil {
		t.Fatalf("ERC in the layout needs no NRC: %v", err)
	}
	if _, err := write.EncodeResponse(Values{"ERC": {0x07}}); err == nil || !strings.Contains(err.Error(), "ERC_KEY_UPDATE_ERROR has no way back") {
		t.Fatalf("write-did answer with an ERC and no way back: %v", err)
	}
}

// A 64-byte message with its length in bits before it, as SHE's CMD_GENERATE_MAC takes it.
func TestSizedMessage(t *testing.T) {
	p := mustParse(t, strings.Replace(didProfile, "operations:\n", `operations:
  GenerateMAC:
    session: extended
    steps:
      - service: routine-start
        rid: 0x0E40
        request: [KeyID, {length: [Message], size: 2, unit: bits}, {field: Message, size: 64}]
        response: [ERC, MAC]
`, 1))
	st := p.Operations[GenerateMAC].Steps[0]
	if st.Request.FieldSize("Message") != 64 || st.Request.Size() != 67 {
		t.Fatalf("Message %d bytes, request %d", st.Request.FieldSize("Message"), st.Request.Size())
	}
	msg := seq(0, 64)
	req, err := st.EncodeRequest(Values{"KeyID": {0x04}, "Message": msg})
	if want := append(unhex(t, "31 01 0E 40 04 02 00"), msg...); err != nil || !bytes.Equal(req, want) {
		t.Fatalf("request % X, %v, want % X", req, err, want)
	}
	if _, err := st.EncodeRequest(Values{"KeyID": {0x04}, "Message": seq(0, 16)}); !errors.Is(err, ErrLength) {
		t.Fatalf("a 16-byte message: %v, want ErrLength", err)
	}
}

const downloadProfile = `version: 1
name: download-test
addressing: {mode: normal, request_id: 0x700, response_id: 0x708}
security: {algorithm: none}
errors: {other_nrc: 0x22}
operations:
  ReadUID:
    steps: [{service: read-did, did: 0xF18C, response: [UID]}]
  LoadKey:
    session: programming
    steps:
      - {service: request-download, address: 0x00FD1000, address_bytes: 4, size_bytes: 2}
      - {service: transfer-data, request: [M1, M2, M3]}
      - {service: request-transfer-exit, response: [ERC, M4, M5]}
`

func TestDownloadSequence(t *testing.T) {
	steps := mustParse(t, downloadProfile).Operations[LoadKey].Steps
	req, err := steps[0].EncodeRequest(nil)
	if err != nil || !bytes.Equal(req, unhex(t, "34 00 24 00 FD 10 00 00 40")) {
		t.Fatalf("RequestDownload % X, %v", req, err)
	}
	resp, err := steps[0].EncodeResponse(nil)
	if err != nil || !bytes.Equal(resp, unhex(t, "74 20 00 42")) {
		t.Fatalf("RequestDownload answer % X, %v", resp, err)
	}
	if _, err := steps[0].DecodeResponse(unhex(t, "74 40 00 00 01 00")); err != nil {
		t.Fatalf("a 4-byte maxNumberOfBlockLength: %v", err)
	}
	if _, err := steps[0].DecodeResponse(unhex(t, "74 20 00 41")); !errors.Is(err, ErrContent) {
		t.Fatalf("blocks one byte too short: %v, want ErrContent", err)
	}
	req, err = steps[1].EncodeRequest(Values{"M1": seq(0, 16), "M2": seq(0, 32), "M3": seq(0, 16)})
	if err != nil || !bytes.HasPrefix(req, unhex(t, "36 01 00 01")) || len(req) != 66 {
		t.Fatalf("TransferData % X, %v", req, err)
	}
	if resp, err := steps[1].EncodeResponse(nil); err != nil || !bytes.Equal(resp, unhex(t, "76 01")) {
		t.Fatalf("TransferData answer % X, %v", resp, err)
	}
	if req, err := steps[2].EncodeRequest(nil); err != nil || !bytes.Equal(req, unhex(t, "37")) {
		t.Fatalf("RequestTransferExit % X, %v", req, err)
	}
	if v, err := steps[1].DecodeResponse(unhex(t, "7F 36 22")); err != nil || v["ERC"][0] != 0x0C {
		t.Fatalf("other_nrc = %v, %v, want ERC_GENERAL_ERROR", v, err)
	}
}
