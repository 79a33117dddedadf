// Package profile reads diagnostic profiles: YAML files that say how a tester reaches an ECU, on
// CAN or over DoIP (ISO 13400-2), and how each SHE operation travels in UDS services, so that one file tells the simulated
// ECU, the station and the suites how an OEM's ECU takes its keys. It also holds the pure codec
// those users share: requests and answers per layout, CRC-16/CCITT-FALSE, CAN IDs per addressing
// mode, and the runner of an external seed/key command.
//
// # Schema, version 1
//
// Integers may be written in hex (0x7E0); durations as Go durations (50ms, 5s); bytes as hex
// strings ("01 AB"). Unknown fields are errors. Every error names the file, the line and the
// field: "my.yaml:12: link.tx_dl: 65 is out of range 8..64".
//
//	version: 1                   # required
//	name: my-ecu                 # required: lower-case letters, digits, dashes
//	description: text
//	transport: can               # can (default): ISO-TP on CAN, by addressing
//	                             #   | doip: DoIP (ISO 13400-2), by the doip section
//	doip:                        # transport doip only, and required with it
//	  logical_address: 0x1001    # required: the ECU's logical address, 0x0001..0x0DFF or
//	                             #   0x1000..0x7FFF (physical addresses; not 0x0E00..0x0FFF)
//	  tester_address: 0x0E00     # the tester's source address, 0x0E00..0x0FFF (default 0x0E00)
//	  entity: 192.0.2.10:13400   # optional: the DoIP entity's HOST:PORT (the vehicle's gateway
//	                             #   or the ECU itself); absent: the tester's own setting
//	addressing:                  # required on CAN; over DoIP optional: the ECU's CAN side
//	                             #   behind a gateway
//	  mode: normal               # normal | normal-fixed | extended | mixed
//	  id_bits: 11                # 11 | 29 (normal-fixed: 29)
//	  request_id: 0x7E0          # normal, extended, 11-bit mixed: physical request and
//	  response_id: 0x7E8         #   response CAN IDs
//	  functional_id: 0x7DF       #   optional functional request ID
//	  tester_address: 0xF1       # normal-fixed, 29-bit mixed: source/target addresses;
//	  ecu_address: 0x10          #   extended: the ECU's address leads each request frame,
//	  functional_address: 0x33   #   the tester's each answer; functional target (optional)
//	  address_extension: 0x00    # mixed: the first byte of every frame
//	link:                        # optional; defaults shown
//	  can: classic               # classic | fd
//	  tx_dl: 8                   # classic: 8; fd: 8, 12, 16, 20, 24, 32, 48 or 64 (default 64)
//	  brs: false                 # fd only: bit-rate switch
//	  padding: 0xCC              # a byte, or none (frames as long as their content)
//	  min_frame_length: 8        # padded frames are at least this long (1..tx_dl)
//	  block_size: 0              # ISO-TP BS and STmin this side asks for
//	  st_min: 0ms                # 0..127ms, or 100µs..900µs
//	  n_as: 1000ms               # ISO-TP timeouts, 1ms..1m
//	  n_bs: 1000ms
//	  n_cr: 1000ms
//	  p2: 50ms                   # as DiagnosticSessionControl announces them:
//	  p2_star: 5000ms            #   P2 in ms up to 65535ms, P2* in 10 ms up to 655350ms
//	  s3: 5s                     # a non-default session ends after this long without a request
//	security:                    # optional; absent: algorithm none
//	  algorithm: aes-cmac        # none | aes-cmac | external
//	  level: 0x01                # requestSeed sub-function (odd); sendKey is level+1
//	  seed_length: 16            # 1..32 bytes
//	  key: "00 11 … FF"          # aes-cmac: the 16-byte key; key = AES-CMAC(key, seed)
//	  command: [./seedkey.sh, --level, "1"]  # external: program and arguments, no shell; a
//	                             #   relative program is relative to the profile's directory
//	  seed_input: argument       # external: argument (the seed in hex, last) | stdin
//	  key_length: 16             # external: 1..64 bytes, read in hex from standard output
//	  timeout: 5s                # external: the command is killed after this long
//	  max_attempts: 3            # wrong keys before NRC 0x36
//	  delay: 10s                 # then NRC 0x37 for this long
//	errors:                      # how a SHE error code (ERC) other than ERC_NO_ERROR comes back
//	  nrc:                       # ERC name -> the NRC that carries it (one ERC per NRC)
//	    ERC_MEMORY_FAILURE: 0x72
//	  other_nrc: 0x22            # every other ERC, in a step whose answer has no ERC field
//	                             #   (the tester reads it back as ERC_GENERAL_ERROR)
//	  on_error: truncate         # an answer with ERC != 0 ends right after it (truncate), or
//	                             #   keeps its length with zero data (zero-fill)
//	operations:                  # required: ReadUID and LoadKey; optional: GetID, VerifyMAC,
//	  LoadKey:                   #   GenerateMAC, KeyCheck
//	    session: extended        # default | programming | extended | 0x01..0x7F
//	    security: true           # needs SecurityAccess (default: unless algorithm none)
//	    steps:                   # one request and its answer each, sent in order
//	      - service: routine-start   # routine-start (31 01 RID) | routine-results (31 03 RID)
//	        rid: 0xFD10              #   | write-did (2E DID) | read-did (22 DID)
//	        request: [M1, M2, M3]    #   | request-download | transfer-data | request-transfer-exit
//	        response: [ERC, M4, M5]
//
// Over DoIP (transport: doip) the tester's diagnostic messages carry its tester_address as source
// and the ECU's logical_address as target; P2 starts once the entity has acknowledged a request.
// Without addressing (an ECU with its own Ethernet port) the link's CAN and ISO-TP fields (can
// to n_cr) are errors: only p2, p2_star and s3 apply. With addressing they describe the ECU's CAN
// side, on which a gateway forwards the requests (a simulated ECU behind `simulator fleet --doip`).
//
// A layout (request, response) is the message after the service's header (31 01 RID, 71 01 RID,
// 2E DID…), as a list of items:
//
//   - a field: M1 (16 bytes), M2 (32), M3 (16), M4 (32), M5 (16), ERC (1), UID (15), SREG (1),
//     Challenge (16), MAC (16), KeyID (1), Message (16), Status (1: 00 verified, 01 mismatch);
//   - {field: Message, size: 64}: a message of another size (1..1024 bytes; Message only);
//   - {const: 0x01} or {const: "01 02"}: constant bytes;
//   - {length: [M1, M2, M3], size: 2, unit: bytes}: the fields' length, big-endian (unit bits
//     counts bits);
//   - {crc16: [M4, M5]}: CRC-16/CCITT-FALSE over the fields' bytes in that order, big-endian.
//
// Each field appears once in a layout; length and CRC items cover fields of their own layout.
// A request carries only what the tester has, an answer only what the operation brings back:
//
//	ReadUID      request: -                         answer: UID, SREG, ERC (UID required)
//	LoadKey      request: M1, M2, M3                answer: ERC, M4, M5
//	GetID        request: Challenge                 answer: ERC, UID, SREG, MAC
//	VerifyMAC    request: KeyID, Message, MAC       answer: ERC, Status
//	GenerateMAC  request: KeyID, Message            answer: ERC, MAC
//	KeyCheck     request: KeyID and Message or Challenge, with MAC when the answer is Status
//	             answer: ERC and Status (the ECU verified the tester's MAC under the slot's
//	             key) or MAC (the ECU computed one the tester compares); nothing is written
//
// Every field except ERC is sent at most once and brought back at most once in an operation;
// each operation but ReadUID needs an ERC field in an answer or errors.other_nrc. A read-did
// request carries only its DID. request-download (data_format, address, address_bytes and
// size_bytes; default 0x00, -, 4, 4) must be followed by transfer-data, whose request layout is
// the record sent as one block (counter 01); the memory size announced is that record's length,
// and the ECU's maxNumberOfBlockLength must let it through in one TransferData.
// request-transfer-exit follows transfer-data. Steps of different operations that send the same
// request header must be the same step, in the same session and security: a server tells
// operations apart by the header alone (the default profile's KeyCheck is its VerifyMAC), except
// transfer-data and request-transfer-exit, which belong to the request-download before them.
package profile
