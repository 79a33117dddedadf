// Package kms is the reference implementation of the OEM key-management system's supplier API for
// SHE key provisioning: POST/PUT supplierKeyProvisioning and POST/PUT supplierKeySyncValue, with
// the registry of suppliers and ECU types, key derivation, counters and the provisioning state
// machine. Storage is behind the Store interface.
package kms

import "github.com/shekit/shekit/openapi/kmswire"

// EcuID is what the API's EcuID carries (the contract's convention, openapi/kmswire).
type EcuID = kmswire.EcuID

// ParseEcuID reads 54 hexadecimal characters, in either case.
func ParseEcuID(s string) (EcuID, bool) { return kmswire.ParseEcuID(s) }
