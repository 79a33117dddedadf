// Package ecu is the simulated ECU: a SHE engine with its key store behind a UDS server on an
// ISO-TP transport, as SPEC section 3 profiles it, the fault flags that make it misbehave on
// purpose, fleets of such ECUs, and the client side of the same diagnostic interface that a
// station uses.
package ecu

import (
	"encoding/binary"

	"github.com/shekit/shekit/simulator/she"
)

// Data identifiers (ReadDataByIdentifier).
const (
	DIDSerial = 0xF18C // ECU serial number, ASCII
	DIDUID    = 0xFD00 // SHE UID, 15 bytes
	DIDSREG   = 0xFD01 // SHE status register, 1 byte
)

// Routine identifiers (RoutineControl startRoutine), in the extended session after
// SecurityAccess.
const (
	RIDLoadKey     = 0xFD10 // M1|M2|M3 (64) -> ERC (1) [| M4 | M5 (48) when ERC = 0]
	RIDGetID       = 0xFD11 // challenge (16) -> ERC | UID (15) | SREG (1) | MAC (16)
	RIDVerifyMAC   = 0xFD12 // KeyID (1) | message (16) | MAC (16) -> ERC | result (00 verified, 01 mismatch)
	RIDGenerateMAC = 0xFD13 // KeyID (1) | message (16) -> ERC | MAC (16)
)

// The default physical CAN IDs of a single ECU.
const (
	DefaultRequestID  = 0x7E0
	DefaultResponseID = 0x7E8
)

// FleetIDs returns the request and response CAN IDs of ECU i (from 0) in a fleet of n. Up to 8
// ECUs use the OBD pairs 0x7E0+i / 0x7E8+i with 11-bit IDs; larger fleets use 29-bit IDs
// 0x18000000 | i<<4 (request) and the same | 0x8 (response), room for 2^20 ECUs.
func FleetIDs(i, n int) (request, response uint32, extended bool) {
	if n <= 8 {
		return DefaultRequestID + uint32(i), DefaultResponseID + uint32(i), false
	}
	base := 0x18000000 | uint32(i)<<4
	return base, base | 0x8, true
}

// FleetUID returns ECU i's UID: base with its last four bytes replaced by i+1, big-endian, so
// that EcuType and SupplierID (the first four bytes) stay those of base.
func FleetUID(base she.UID, i int) she.UID {
	uid := base
	binary.BigEndian.PutUint32(uid[11:], uint32(i+1))
	return uid
}
