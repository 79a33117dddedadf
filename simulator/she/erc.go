package she

//go:generate go tool stringer -type=ERC,Status -linecomment -output=erc_string.go

// ERC is a SHE error code, as returned by every command (SHE v1.1 section 6.4). The values are the
// specification's, in its order.
type ERC uint8

// The SHE error codes.
const (
	NoError           ERC = 0x00 // ERC_NO_ERROR
	SequenceError     ERC = 0x01 // ERC_SEQUENCE_ERROR
	KeyNotAvailable   ERC = 0x02 // ERC_KEY_NOT_AVAILABLE
	KeyInvalid        ERC = 0x03 // ERC_KEY_INVALID
	KeyEmpty          ERC = 0x04 // ERC_KEY_EMPTY
	NoSecureBoot      ERC = 0x05 // ERC_NO_SECURE_BOOT
	KeyWriteProtected ERC = 0x06 // ERC_KEY_WRITE_PROTECTED
	KeyUpdateError    ERC = 0x07 // ERC_KEY_UPDATE_ERROR
	RNGSeed           ERC = 0x08 // ERC_RNG_SEED
	NoDebugging       ERC = 0x09 // ERC_NO_DEBUGGING
	Busy              ERC = 0x0A // ERC_BUSY
	MemoryFailure     ERC = 0x0B // ERC_MEMORY_FAILURE
	GeneralError      ERC = 0x0C // ERC_GENERAL_ERROR
)

// Status is the SHE status register SREG (SHE v1.1 section 6.5).
type Status uint8

// The SREG bits.
const (
	StatusBusy         Status = 0x01 // BUSY
	StatusSecureBoot   Status = 0x02 // SECURE_BOOT
	StatusBootInit     Status = 0x04 // BOOT_INIT
	StatusBootFinished Status = 0x08 // BOOT_FINISHED
	StatusBootOK       Status = 0x10 // BOOT_OK
	StatusRNDInit      Status = 0x20 // RND_INIT
	StatusExtDebugger  Status = 0x40 // EXT_DEBUGGER
	StatusIntDebugger  Status = 0x80 // INT_DEBUGGER
)
