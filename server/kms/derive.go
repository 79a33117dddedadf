package kms

import (
	"encoding/binary"

	"github.com/shekit/shekit/simulator/she"
)

// CounterKDF is the NIST SP 800-108 key derivation function in counter mode with AES-CMAC as the
// PRF and a 32-bit counter before the fixed input data, for one 128-bit output block:
// CMAC(key, [1]_32 | fixed).
func CounterKDF(key [16]byte, fixed []byte) [16]byte {
	var buf [64]byte // what every key's derivation needs: no allocation
	in := binary.BigEndian.AppendUint32(buf[:0], 1)
	return she.CMAC(key, append(in, fixed...))
}

// DeriveKey derives a 128-bit key with CounterKDF from the fixed input data label | 0x00 |
// context | [128]_32 (SP 800-108 section 5).
func DeriveKey(root [16]byte, label string, context []byte) [16]byte {
	var buf [64]byte
	fixed := append(append(append(buf[:0], label...), 0), context...)
	return CounterKDF(root, binary.BigEndian.AppendUint32(fixed, 128))
}

// keyContext is the derivation context of a key: the UID (or, for SecOC keys, the ClusterID), the
// KeyID, and the generation (for ECU keys the counter it was issued with, for SecOC keys the
// cluster's key generation), 32-bit big-endian.
func keyContext(subject []byte, keyID she.KeyID, generation uint32) []byte {
	c := append(append(make([]byte, 0, 24), subject...), byte(keyID))
	return binary.BigEndian.AppendUint32(c, generation)
}
