// Package kms is the reference implementation of the OEM key-management system's supplier API for
// SHE key provisioning: POST/PUT supplierKeyProvisioning and POST/PUT supplierKeySyncValue, with
// the registry of suppliers and ECU types, key derivation, counters and the provisioning state
// machine. Storage is behind the Store interface.
package kms

import (
	"encoding/binary"
	"encoding/hex"

	"github.com/shekit/shekit/simulator/she"
)

// EcuID is what the API's EcuID carries (54 hex characters, a convention of the reference
// implementation): the SecOC cluster the ECU belongs to (8 bytes), its model (4 bytes) and its SHE
// UID (15 bytes), which starts with the EcuType (2 bytes) and the SupplierID (2 bytes).
type EcuID struct {
	ClusterID [8]byte
	Model     [4]byte
	UID       she.UID
}

// ParseEcuID reads 54 hexadecimal characters, in either case.
func ParseEcuID(s string) (EcuID, bool) {
	var id EcuID
	if len(s) != 54 {
		return id, false
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return id, false
	}
	copy(id.ClusterID[:], b[:8])
	copy(id.Model[:], b[8:12])
	copy(id.UID[:], b[12:])
	return id, true
}

// EcuType is the first two bytes of the UID.
func (id EcuID) EcuType() uint16 { return binary.BigEndian.Uint16(id.UID[:2]) }

// SupplierID is the third and fourth bytes of the UID.
func (id EcuID) SupplierID() uint16 { return binary.BigEndian.Uint16(id.UID[2:4]) }

// String writes the EcuID as 54 lowercase hex characters.
func (id EcuID) String() string {
	return hex.EncodeToString(id.ClusterID[:]) + hex.EncodeToString(id.Model[:]) + id.UID.String()
}
