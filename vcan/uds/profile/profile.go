package profile

import (
	"time"

	"go.yaml.in/yaml/v3"
)

// Version is the schema version this package reads.
const Version = 1

// Profile is one ECU's diagnostic profile: how a tester reaches it on the bus and how each SHE
// operation travels in UDS services.
type Profile struct {
	Name        string
	Description string
	// Source names where the profile came from: the file name, or "builtin:NAME".
	Source string
	// Dir is the directory relative program paths of an external seed/key command are resolved
	// against: the file's directory, or "" for a built-in profile (its scripts are embedded).
	Dir string
	// Transport is how a tester reaches the ECU: on CAN by Addressing, or over DoIP by DoIP.
	Transport Transport
	DoIP      DoIPAddressing // transport doip
	// Addressing is the ECU's CAN side: how a tester reaches it on CAN, or the gateway forwards
	// to it over DoIP. HasAddressing says whether the profile gives it (always on CAN).
	Addressing    Addressing
	HasAddressing bool
	Link          Link
	Security      Security
	Errors        Errors
	// Operations holds the operations the profile defines, by name.
	Operations map[OpName]*Operation
}

// Transport is how a tester reaches the ECU.
type Transport string

// The transports. The zero Transport is CAN.
const (
	TransportCAN  Transport = "can"  // ISO-TP on CAN (ISO 15765-2), by Addressing
	TransportDoIP Transport = "doip" // DoIP (ISO 13400-2), by DoIPAddressing
)

// OverDoIP reports whether the tester reaches the ECU over DoIP.
func (p *Profile) OverDoIP() bool { return p.Transport == TransportDoIP }

// DoIPAddressing names the ECU and the tester over DoIP (ISO 13400-2).
type DoIPAddressing struct {
	// LogicalAddress is the ECU's: 0x0001..0x0DFF or 0x1000..0x7FFF (a physical address).
	LogicalAddress uint16
	// TesterAddress is the tester's source address, 0x0E00..0x0FFF (default 0x0E00).
	TesterAddress uint16
	// Entity is the DoIP entity's HOST:PORT (the vehicle's gateway, or the ECU itself); "" when
	// the profile leaves it to the tester's configuration.
	Entity string
}

// AddressingMode is how CAN IDs and address bytes name a tester and an ECU (ISO 15765-2).
type AddressingMode string

// The addressing modes.
const (
	Normal      AddressingMode = "normal"       // IDs given; 11- or 29-bit
	NormalFixed AddressingMode = "normal-fixed" // 29-bit 0x18DA<target><source>, functional 0x18DB
	Extended    AddressingMode = "extended"     // IDs given; first data byte is the target address
	Mixed       AddressingMode = "mixed"        // first data byte is the address extension
)

// Addressing names a tester's and an ECU's CAN IDs and address bytes.
type Addressing struct {
	Mode AddressingMode
	// IDBits is 11 or 29 (normal-fixed: always 29).
	IDBits int
	// PhysicalRequest, PhysicalResponse and FunctionalRequest are the CAN IDs of normal, extended
	// and 11-bit mixed addressing; FunctionalRequest 0 means none.
	PhysicalRequest, PhysicalResponse, FunctionalRequest uint32
	HasFunctional                                        bool
	// TesterAddress and ECUAddress are the source/target addresses of normal-fixed and 29-bit
	// mixed addressing, and the address bytes of extended addressing (ECUAddress leads every
	// request, TesterAddress every response). FunctionalAddress is the functional target.
	TesterAddress, ECUAddress, FunctionalAddress byte
	// AddressExtension is mixed addressing's first data byte, in both directions.
	AddressExtension byte
}

// Link is the CAN and ISO-TP layer and the application timing.
type Link struct {
	FD bool // CAN FD; classic CAN otherwise
	// TxDL is the largest frame's data length: 8 on classic CAN, 8..64 (a valid DLC length) on FD.
	TxDL int
	BRS  bool // CAN FD bit-rate switch
	// Pad reports whether frames are padded, with PadByte, to at least MinFrameLength bytes (and
	// on CAN FD to the next valid data length).
	Pad            bool
	PadByte        byte
	MinFrameLength int
	BlockSize      uint8
	STmin          time.Duration
	NAs, NBs, NCr  time.Duration
	P2, P2Star     time.Duration
	// S3 is how long a non-default session lasts without a request (ISO 14229-2 S3server).
	S3 time.Duration
}

// Algorithm is a SecurityAccess seed/key algorithm.
type Algorithm string

// The seed/key algorithms.
const (
	AlgorithmNone     Algorithm = "none"     // no SecurityAccess: no operation needs it
	AlgorithmAESCMAC  Algorithm = "aes-cmac" // key = AES-CMAC(Key, seed), 16 bytes
	AlgorithmExternal Algorithm = "external" // an external command computes the key
)

// SeedInput is how an external command receives the seed.
type SeedInput string

// The seed inputs.
const (
	SeedArgument SeedInput = "argument" // the seed in hex as the last argument
	SeedStdin    SeedInput = "stdin"    // the seed in hex and a newline on standard input
)

// Security is the SecurityAccess (0x27) configuration.
type Security struct {
	Algorithm Algorithm
	// Level is the requestSeed sub-function (odd); sendKey is Level+1.
	Level       byte
	SeedLength  int // bytes, 1..32
	KeyLength   int // bytes; 16 for aes-cmac
	Key         []byte
	Command     []string // external: program and arguments, no shell
	Input       SeedInput
	Timeout     time.Duration
	MaxAttempts int
	Delay       time.Duration
}

// ERC is a SHE error code (SHE v1.1 section 6.4).
type ERC byte

// Errors says how a SHE error code other than ERC_NO_ERROR comes back.
type Errors struct {
	// NRC maps an ERC to the negative response code that carries it (one ERC per NRC).
	NRC map[ERC]byte
	// OtherNRC carries every other ERC of a step whose answer has no ERC field; 0 means none.
	OtherNRC byte
	// ZeroFill: an answer with a non-zero ERC field keeps its length, its other data fields
	// zero; otherwise (the default) it ends right after the ERC.
	ZeroFill bool
}

// OpName names a SHE operation.
type OpName string

// The operations a profile may define.
const (
	ReadUID     OpName = "ReadUID"
	LoadKey     OpName = "LoadKey"
	GetID       OpName = "GetID"
	VerifyMAC   OpName = "VerifyMAC"
	GenerateMAC OpName = "GenerateMAC"
	KeyCheck    OpName = "KeyCheck" // proves a slot's key without changing it
)

// OpNames lists the operations in the order they are documented and matched.
var OpNames = []OpName{ReadUID, LoadKey, GetID, VerifyMAC, GenerateMAC, KeyCheck}

// Operation is one SHE operation: the session and security it needs and its UDS exchanges.
type Operation struct {
	Name     OpName
	Session  byte // DiagnosticSessionControl sub-function
	Security bool // needs SecurityAccess
	Steps    []*Step
}

// Service is the UDS service of one step.
type Service string

// The services.
const (
	RoutineStart        Service = "routine-start"         // 0x31 01 RID
	RoutineResults      Service = "routine-results"       // 0x31 03 RID
	WriteDID            Service = "write-did"             // 0x2E DID
	ReadDID             Service = "read-did"              // 0x22 DID
	RequestDownload     Service = "request-download"      // 0x34
	TransferData        Service = "transfer-data"         // 0x36 01
	RequestTransferExit Service = "request-transfer-exit" // 0x37
)

// Step is one request and its answer.
type Step struct {
	Service Service
	ID      uint16 // RID or DID
	// Download parameters (request-download): dataFormatIdentifier, the memory address and the
	// byte counts of the address and size; the size is the next step's request length.
	DataFormat              byte
	Address                 uint32
	AddressBytes, SizeBytes int
	MemorySize              int
	Request, Response       Layout
	errs                    *Errors
}

// Layout is a message's data after the service's header, as a sequence of items.
type Layout []Item

// ItemKind is what an item of a layout is.
type ItemKind int

// The item kinds.
const (
	FieldItem  ItemKind = iota // a named field
	ConstItem                  // constant bytes
	LengthItem                 // the length of named fields
	CRCItem                    // CRC-16/CCITT-FALSE over named fields, big-endian
)

// Item is one element of a layout.
type Item struct {
	Kind  ItemKind
	Field string   // FieldItem
	Const []byte   // ConstItem
	Over  []string // LengthItem, CRCItem: the fields covered
	// Size is a LengthItem's width (1..4 bytes, big-endian), or a FieldItem's declared size
	// (Message only; 0: the field's usual size).
	Size  int
	Bits  bool   // LengthItem: counts bits rather than bytes
	count uint64 // LengthItem: its value, from the sizes of the fields it covers
	node  *yaml.Node
}

// Fields and their sizes in bytes.
var fieldSizes = map[string]int{
	"M1": 16, "M2": 32, "M3": 16, "M4": 32, "M5": 16,
	"ERC": 1, "UID": 15, "SREG": 1, "Challenge": 16, "MAC": 16,
	"KeyID": 1, "Message": 16, "Status": 1,
}

// FieldSize returns a field's usual size in bytes, 0 for an unknown field. A layout may declare
// another size for Message (see Layout.FieldSize).
func FieldSize(name string) int { return fieldSizes[name] }

// FieldSize returns the size of a field in this layout, 0 when the layout does not have it.
func (l Layout) FieldSize(name string) int {
	for _, it := range l {
		if it.Kind == FieldItem && it.Field == name {
			return it.size()
		}
	}
	return 0
}

// Size returns the layout's length in bytes.
func (l Layout) Size() int {
	n := 0
	for _, it := range l {
		n += it.size()
	}
	return n
}

func (it Item) size() int {
	switch it.Kind {
	case FieldItem:
		if it.Size > 0 {
			return it.Size
		}
		return fieldSizes[it.Field]
	case ConstItem:
		return len(it.Const)
	case LengthItem:
		return it.Size
	default:
		return 2
	}
}
