package profile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// base is a valid profile; the table below breaks it one line at a time. Line numbers matter.
const base = `version: 1
name: test-ecu
addressing:
  mode: normal
  request_id: 0x7E0
  response_id: 0x7E8
link:
  can: classic
  padding: 0xCC
  p2: 50ms
security:
  algorithm: aes-cmac
  key: "000102030405060708090A0B0C0D0E0F"
errors:
  nrc:
    ERC_MEMORY_FAILURE: 0x72
operations:
  ReadUID:
    session: default
    security: false
    steps:
      - service: read-did
        did: 0xFD00
        response: [UID]
  LoadKey:
    session: extended
    steps:
      - service: routine-start
        rid: 0xFD10
        request: [M1, M2, M3]
        response: [ERC, M4, M5]
`

func TestParseBase(t *testing.T) {
	p, err := Parse("t.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "test-ecu" || p.Addressing.PhysicalRequest != 0x7E0 || p.Link.TxDL != 8 || !p.Link.Pad ||
		p.Link.PadByte != 0xCC || p.Link.MinFrameLength != 8 || p.Security.Level != 1 || p.Security.SeedLength != 16 ||
		p.Errors.NRC[0x0B] != 0x72 || len(p.Operations) != 2 || p.Operations[LoadKey].Steps[0].ID != 0xFD10 {
		t.Fatalf("parsed %+v", p)
	}
}

// keyCheck is a KeyCheck operation with the given layouts.
func keyCheck(request, response string) string {
	return "  KeyCheck:\n    session: extended\n    steps:\n      - service: routine-start\n        rid: 0xFD20\n" +
		"        request: " + request + "\n        response: " + response + "\n"
}

func TestParseRefusesMistakes(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown top-level field", "version: 1\n", "version: 1\nflavour: x\n",
			"t.yaml:2: flavour: unknown field (want one of version, name, description, transport, doip, addressing, link, security, errors, operations)"},
		{"version", "version: 1", "version: 2", "t.yaml:1: version: 2 is out of range (this version reads version 1)"},
		{"version type", "version: 1", "version: one", `t.yaml:1: version: want an integer, got "one"`},
		{"name", "name: test-ecu", "name: Test ECU", `t.yaml:2: name: "Test ECU": want lower-case letters, digits and dashes`},
		{"missing addressing", "addressing:\n  mode: normal\n  request_id: 0x7E0\n  response_id: 0x7E8\n", "",
			"t.yaml:1: addressing: missing"},
		{"addressing mode", "mode: normal", "mode: fixed", `t.yaml:4: addressing.mode: "fixed" is not one of normal, normal-fixed, extended, mixed`},
		{"11-bit ID out of range", "request_id: 0x7E0", "request_id: 0x800", "t.yaml:5: addressing.request_id: 0x800 is out of range 0..0x7FF"},
		{"same IDs", "response_id: 0x7E8", "response_id: 0x7E0", "t.yaml:6: addressing.response_id: 0x7e0 is also the request ID"},
		{"address byte in normal mode", "response_id: 0x7E8", "response_id: 0x7E8\n  ecu_address: 0x10",
			"t.yaml:7: addressing.ecu_address: not used by 11-bit normal addressing"},
		{"normal-fixed with 11 bits", "mode: normal\n  request_id: 0x7E0\n  response_id: 0x7E8", "mode: normal-fixed\n  id_bits: 11\n  tester_address: 0xF1\n  ecu_address: 0x10",
			"t.yaml:5: addressing.id_bits: 11: want 29 for normal-fixed addressing"},
		{"normal-fixed without the ECU's address", "mode: normal\n  request_id: 0x7E0\n  response_id: 0x7E8", "mode: normal-fixed\n  tester_address: 0xF1",
			"t.yaml:4: addressing.ecu_address: missing"},
		{"tx_dl on classic CAN", "can: classic", "can: classic\n  tx_dl: 64",
			"t.yaml:9: link.tx_dl: 64 is out of range 8..8 (classic CAN; 12..64 need can: fd)"},
		{"tx_dl on CAN FD", "can: classic", "can: fd\n  tx_dl: 65", "t.yaml:9: link.tx_dl: 65 is out of range 8..64"},
		{"tx_dl not a DLC length", "can: classic", "can: fd\n  tx_dl: 40", "t.yaml:9: link.tx_dl: 40 is not a CAN FD data length (8, 12, 16, 20, 24, 32, 48, 64)"},
		{"brs on classic CAN", "can: classic", "can: classic\n  brs: true", "t.yaml:9: link.brs: the bit-rate switch needs can: fd"},
		{"brs type", "can: classic", "can: fd\n  brs: yes please", `t.yaml:9: link.brs: want true or false, got "yes please"`},
		{"padding", "padding: 0xCC", "padding: 0x1CC", "t.yaml:9: link.padding: 0x1CC is out of range 0..0xFF (or none)"},
		{"min frame length without padding", "padding: 0xCC", "padding: none\n  min_frame_length: 8",
			"t.yaml:10: link.min_frame_length: not used without padding"},
		{"min frame length", "padding: 0xCC", "padding: 0xCC\n  min_frame_length: 9", "t.yaml:10: link.min_frame_length: 9 is out of range 1..8 (tx_dl)"},
		{"p2 not a duration", "p2: 50ms", "p2: 50", "t.yaml:10: link.p2: want a duration such as 50ms, got integer 50"},
		{"p2 out of range", "p2: 50ms", "p2: 70s", "t.yaml:10: link.p2: 70s is out of range 1ms..1m5.535s"},
		{"st_min", "p2: 50ms", "p2: 50ms\n  st_min: 150us", "t.yaml:11: link.st_min: 150µs: want whole milliseconds up to 127ms, or 100µs..900µs in steps of 100µs"},
		{"algorithm", "algorithm: aes-cmac", "algorithm: xor", `t.yaml:12: security.algorithm: "xor" is not one of none, aes-cmac, external`},
		{"key length", `key: "000102030405060708090A0B0C0D0E0F"`, `key: "0001"`, "t.yaml:13: security.key: 2 bytes: an AES-128 key is 16"},
		{"key not hex", `key: "000102030405060708090A0B0C0D0E0F"`, `key: "zz"`, `t.yaml:13: security.key: want bytes in hex such as "01 AB", got "zz"`},
		{"even level", "algorithm: aes-cmac", "algorithm: aes-cmac\n  level: 2", "t.yaml:13: security.level: 0x02: requestSeed levels are odd (sendKey is level+1)"},
		{"seed length", "algorithm: aes-cmac", "algorithm: aes-cmac\n  seed_length: 33", "t.yaml:13: security.seed_length: 33 is out of range 1..32"},
		{"command for aes-cmac", "algorithm: aes-cmac", "algorithm: aes-cmac\n  command: [x]", "t.yaml:13: security.command: not used by aes-cmac"},
		{"external without a command", "algorithm: aes-cmac\n  key: \"000102030405060708090A0B0C0D0E0F\"", "algorithm: external",
			"t.yaml:12: security.command: missing"},
		{"external command not a list", "algorithm: aes-cmac\n  key: \"000102030405060708090A0B0C0D0E0F\"", "algorithm: external\n  command: ./x.sh",
			`t.yaml:13: security.command: want a non-empty list, got "./x.sh"`},
		{"external timeout", "algorithm: aes-cmac\n  key: \"000102030405060708090A0B0C0D0E0F\"", "algorithm: external\n  command: [./x.sh]\n  timeout: 2h",
			"t.yaml:14: security.timeout: 2h is out of range 1ms..1m0s"},
		{"unknown ERC", "ERC_MEMORY_FAILURE: 0x72", "ERC_OOPS: 0x72",
			"t.yaml:16: errors.nrc.ERC_OOPS: unknown field (want one of ERC_SEQUENCE_ERROR, ERC_KEY_NOT_AVAILABLE, ERC_KEY_INVALID, ERC_KEY_EMPTY, ERC_NO_SECURE_BOOT, ERC_KEY_WRITE_PROTECTED, ERC_KEY_UPDATE_ERROR, ERC_RNG_SEED, ERC_NO_DEBUGGING, ERC_BUSY, ERC_MEMORY_FAILURE, ERC_GENERAL_ERROR)"},
		{"two ERCs one NRC", "ERC_MEMORY_FAILURE: 0x72", "ERC_MEMORY_FAILURE: 0x72\n    ERC_BUSY: 0x72",
			"t.yaml:17: errors.nrc.ERC_BUSY: 0x72 already carries ERC_MEMORY_FAILURE"},
		{"response pending as an error", "ERC_MEMORY_FAILURE: 0x72", "ERC_MEMORY_FAILURE: 0x78",
			"t.yaml:16: errors.nrc.ERC_MEMORY_FAILURE: 0x78 is responsePending, not an answer"},
		{"unknown operation", "  ReadUID:\n", "  ReadKey:\n",
			"t.yaml:18: operations.ReadKey: unknown field (want one of ReadUID, LoadKey, GetID, VerifyMAC, GenerateMAC, KeyCheck)"},
		{"session", "session: extended", "session: engineering",
			`t.yaml:26: operations.LoadKey.session: "engineering": want default, programming, extended or a number 0x01..0x7F`},
		{"security in the default session", "session: extended", "session: default",
			"t.yaml:26: operations.LoadKey.session: SecurityAccess needs a non-default session"},
		{"unknown service", "service: routine-start", "service: routine-stop",
			`t.yaml:28: operations.LoadKey.steps[0].service: "routine-stop" is not one of routine-start, routine-results, write-did, read-did, request-download, transfer-data, request-transfer-exit`},
		{"did on a routine", "rid: 0xFD10", "rid: 0xFD10\n        did: 0xFD00",
			"t.yaml:30: operations.LoadKey.steps[0].did: not used by routine-start"},
		{"routine without rid", "        rid: 0xFD10\n", "", "t.yaml:28: operations.LoadKey.steps[0].rid: missing"},
		{"rid out of range", "rid: 0xFD10", "rid: 0x1FD10", "t.yaml:29: operations.LoadKey.steps[0].rid: 0x1FD10 is out of range 0..0xFFFF"},
		{"unknown layout field", "request: [M1, M2, M3]", "request: [M1, M2, M6]",
			`t.yaml:30: operations.LoadKey.steps[0].request[2]: unknown field "M6" (want one of Challenge, ERC, KeyID, M1, M2, M3, M4, M5, MAC, Message, SREG, Status, UID)`},
		{"field the tester does not have", "request: [M1, M2, M3]", "request: [M1, M2, M3, M4]",
			"t.yaml:30: operations.LoadKey.steps[0].request[3]: M4 cannot be in LoadKey's request (it carries M1, M2, M3)"},
		{"field the operation does not bring back", "response: [ERC, M4, M5]", "response: [ERC, M4, M5, MAC]",
			"t.yaml:31: operations.LoadKey.steps[0].response[3]: MAC cannot be in LoadKey's response (it carries ERC, M4, M5)"},
		{"field twice", "request: [M1, M2, M3]", "request: [M1, M2, M3, M1]",
			"t.yaml:30: operations.LoadKey.steps[0].request[3]: M1 is already in this layout"},
		{"missing field", "request: [M1, M2, M3]", "request: [M1, M2]", "t.yaml:25: operations.LoadKey: no request carries M3"},
		{"missing answer", "response: [ERC, M4, M5]", "response: [ERC, M4]", "t.yaml:25: operations.LoadKey: no answer brings back M5"},
		{"no way back for an ERC", "response: [ERC, M4, M5]", "response: [M4, M5]",
			"t.yaml:25: operations.LoadKey: no way back for a SHE error: no answer has an ERC field and errors.other_nrc is not set"},
		{"crc over an unknown field", "response: [ERC, M4, M5]", "response: [ERC, M4, M5, {crc16: [M4, M6]}]",
			`t.yaml:31: operations.LoadKey.steps[0].response[3].crc16[1]: unknown field "M6" (want one of Challenge, ERC, KeyID, M1, M2, M3, M4, M5, MAC, Message, SREG, Status, UID)`},
		{"crc over a field of another layout", "response: [ERC, M4, M5]", "response: [ERC, M4, M5, {crc16: [M1]}]",
			"t.yaml:31: operations.LoadKey.steps[0].response[3]: crc16 over M1: not a field of this layout"},
		{"length too small", "request: [M1, M2, M3]", "request: [{length: [M1, M2, M3], size: 1, unit: bits}, M1, M2, M3]",
			"t.yaml:30: operations.LoadKey.steps[0].request[0]: length over M1, M2, M3 is 512: more than 1 byte(s) hold"},
		{"const out of range", "request: [M1, M2, M3]", "request: [{const: 0x100}, M1, M2, M3]",
			`t.yaml:30: operations.LoadKey.steps[0].request[0].const: 0x100 is out of range 0..0xFF (longer constants in hex: "01 02")`},
		{"two kinds in one item", "request: [M1, M2, M3]", "request: [{const: 1, crc16: [M1]}, M1, M2, M3]",
			"t.yaml:30: operations.LoadKey.steps[0].request[0]: want exactly one of field (with size), const, length (with size and unit) or crc16"},
		{"a size for a fixed field", "request: [M1, M2, M3]", "request: [M1, {field: M2, size: 16}, M3]",
			`t.yaml:30: operations.LoadKey.steps[0].request[1].field: "M2": only Message has a declared size (write other fields by name)`},
		{"a message without a size", "request: [M1, M2, M3]", "request: [M1, M2, M3, {field: Message}]",
			"t.yaml:30: operations.LoadKey.steps[0].request[3].size: missing"},
		{"read-did with a request", "did: 0xFD00", "did: 0xFD00\n        request: [{const: 1}]",
			"t.yaml:24: operations.ReadUID.steps[0].request: a read-did request carries only its DID"},
		{"transfer-data first", "      - service: routine-start\n        rid: 0xFD10\n", "      - service: transfer-data\n",
			"t.yaml:28: operations.LoadKey.steps[0]: transfer-data must follow request-download"},
		{"same header, other layout", "response: [ERC, M4, M5]\n", "response: [ERC, M4, M5]\n  GenerateMAC:\n    session: extended\n    steps:\n      - service: routine-start\n        rid: 0xFD10\n        request: [KeyID, Message]\n        response: [ERC, MAC]\n",
			"t.yaml:32: operations.GenerateMAC.steps[0]: sends the request header of LoadKey.steps[0] (31 01 FD 10) but differs from it"},
		{"key check that neither verifies nor computes", "response: [ERC, M4, M5]\n", "response: [ERC, M4, M5]\n" + keyCheck("[KeyID, Message]", "[ERC]"),
			"t.yaml:32: operations.KeyCheck: a key check brings back either Status (the ECU verified a MAC) or MAC (the ECU computed one)"},
		{"key check without the MAC to verify", "response: [ERC, M4, M5]\n", "response: [ERC, M4, M5]\n" + keyCheck("[KeyID, Message]", "[ERC, Status]"),
			"t.yaml:32: operations.KeyCheck: a key check that brings back Status sends the MAC to verify"},
		{"key check without a KeyID", "response: [ERC, M4, M5]\n", "response: [ERC, M4, M5]\n" + keyCheck("[Challenge]", "[ERC, MAC]"),
			"t.yaml:32: operations.KeyCheck: no request carries KeyID"},
		{"key check sending a MAC and getting one", "response: [ERC, M4, M5]\n", "response: [ERC, M4, M5]\n" + keyCheck("[KeyID, Message, MAC]", "[ERC, MAC]"),
			"t.yaml:32: operations.KeyCheck: a key check that brings back a MAC does not send one"},
		{"download without transfer", "response: [ERC, M4, M5]\n", "response: [ERC, M4, M5]\n" + "  GetID:\n    session: extended\n    steps:\n      - {service: request-download, address: 0x1000}\n      - {service: routine-start, rid: 0x0202, request: [Challenge], response: [ERC, UID, SREG, MAC]}\n",
			"t.yaml:35: operations.GetID.steps[0]: request-download must be followed by transfer-data"},
		{"download size too small", "response: [ERC, M4, M5]\n", "response: [ERC, M4, M5]\n" + "  GetID:\n    session: extended\n    steps:\n      - {service: request-download, address: 0x1000, size_bytes: 1, address_bytes: 2}\n      - {service: transfer-data, request: [Challenge, {const: \"" + strings.Repeat("00", 240) + "\"}]}\n",
			"t.yaml:35: operations.GetID.steps[0].size_bytes: 1 cannot count the 256 bytes of the transfer"},
		{"transfer-data without a record", "response: [ERC, M4, M5]\n", "response: [ERC, M4, M5]\n" + "  GetID:\n    session: extended\n    steps:\n      - {service: request-download, address: 0x1000}\n      - {service: transfer-data}\n      - {service: request-transfer-exit, request: [Challenge], response: [ERC, UID, SREG, MAC]}\n",
			"t.yaml:36: operations.GetID.steps[1].request: transfer-data carries the record: want a request layout"},
		{"download address too long", "response: [ERC, M4, M5]\n", "response: [ERC, M4, M5]\n" + "  GetID:\n    session: extended\n    steps:\n      - {service: request-download, address: 0x10000, address_bytes: 2}\n",
			"t.yaml:35: operations.GetID.steps[0].address: 0x10000 is out of range 0..0xffff (address_bytes 2)"},
		{"download with a layout", "response: [ERC, M4, M5]\n", "response: [ERC, M4, M5]\n" + "  GetID:\n    session: extended\n    steps:\n      - {service: request-download, address: 0x1000, request: [Challenge]}\n",
			"t.yaml:35: operations.GetID.steps[0]: request-download's request and answer are ISO 14229's; the record goes in transfer-data"},
		{"extended functional ID without its address", "mode: normal\n  request_id: 0x7E0", "mode: extended\n  tester_address: 0xF1\n  ecu_address: 0x40\n  functional_id: 0x6F1\n  request_id: 0x7E0",
			"t.yaml:4: addressing.functional_address: extended addressing needs functional_id and functional_address together"},
		{"key of an external command", "algorithm: aes-cmac", "algorithm: external\n  command: [./x.sh]",
			"t.yaml:14: security.key: not used by an external command (it keeps its secrets)"},
		{"security type", "    security: false", "    security: 0",
			"t.yaml:20: operations.ReadUID.security: want true or false, got integer 0"},
		{"no operations", "    session: default", "    session: 0x80",
			"t.yaml:19: operations.ReadUID.session: 0x80 is out of range 0x01..0x7F"},
		{"steps not a list", "    steps:\n      - service: read-did\n        did: 0xFD00\n        response: [UID]", "    steps: read-did",
			`t.yaml:21: operations.ReadUID.steps: want a non-empty list, got "read-did"`},
		{"no addressing mode", "  mode: normal\n", "", "t.yaml:4: addressing.mode: missing"},
		{"empty file", base, "", "t.yaml:1: empty file"},
		{"only a comment", base, "# nothing\n", "t.yaml:1: empty file"},
		{"alias", "can: classic", "can: &c classic\n  brs: *c", "t.yaml:9: link.brs: want true or false, got an alias"},
		{"not YAML", "version: 1", "version: [1", "t.yaml:1: not YAML: yaml: line 1: did not find expected ',' or ']'"},
		{"two documents", "version: 1", "version: 1\n---\nversion: 1\n---", "t.yaml:2: a second YAML document: want one profile per file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(base, tt.old) {
				t.Fatalf("base has no %q", tt.old)
			}
			src := strings.Replace(base, tt.old, tt.new, 1)
			_, err := Parse("t.yaml", []byte(src))
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("Parse = %v, want an *Error", err)
			}
			if err.Error() != tt.want {
				t.Fatalf("Parse error\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(path, []byte(strings.Replace(base, "p2: 50ms", "p2: 0ms", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Find(path)
	if want := path + ":10: link.p2: 0ms is out of range 1ms..1m5.535s"; err == nil || err.Error() != want {
		t.Fatalf("Find = %v, want %s", err, want)
	}
	if _, err := Find(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Find(missing file) = %v", err)
	}
}

func TestParseSecurityNone(t *testing.T) {
	src := strings.Replace(base, "algorithm: aes-cmac\n  key: \"000102030405060708090A0B0C0D0E0F\"", "algorithm: none", 1)
	p, err := Parse("t.yaml", []byte(src))
	if err != nil || p.Operations[LoadKey].Security {
		t.Fatalf("algorithm none: %v, %v; want LoadKey without SecurityAccess", p, err)
	}
	src = strings.Replace(src, "    session: extended\n", "    session: extended\n    security: true\n", 1)
	_, err = Parse("t.yaml", []byte(src))
	if want := "t.yaml:26: operations.LoadKey.security: needs SecurityAccess, but security.algorithm is none"; err == nil || err.Error() != want {
		t.Fatalf("Parse = %v, want %s", err, want)
	}
}

// Two downloads share TransferData's header; their RequestDownloads tell them apart.
func TestParseTwoDownloads(t *testing.T) {
	src := downloadProfile + `  GetID:
    session: programming
    steps:
      - {service: request-download, address: 0x00FD2000, size_bytes: 2}
      - {service: transfer-data, request: [Challenge]}
      - {service: request-transfer-exit, response: [ERC, UID, SREG, MAC]}
`
	p, err := Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Operations[GetID].Steps[0].MemorySize; got != 16 {
		t.Fatalf("GetID's download announces %d bytes, want 16", got)
	}
	src = strings.Replace(src, "0x00FD2000", "0x00FD1000", 1)
	src = strings.Replace(src, "request: [Challenge]}", "request: [Challenge, {const: \""+strings.Repeat("00", 48)+"\"}]}", 1)
	want := "t.yaml:15: operations.GetID.steps[0]: sends the request header of LoadKey.steps[0] (34 00 24 00 FD 10 00 00 40) but differs from it"
	if _, err := Parse("t.yaml", []byte(src)); err == nil || err.Error() != want {
		t.Fatalf("Parse = %v, want %s", err, want)
	}
}
