package she

import (
	"crypto/aes"
	"crypto/cipher"
	"sync/atomic"
)

// macState computes AES-CMAC (NIST SP 800-38B, RFC 4493) with 128-bit blocks, incrementally. Its
// buffers live in the struct, which callers keep (an Engine, a pooled builder) so that a MAC costs
// no allocation.
type macState struct {
	b    cipher.Block
	k, x [16]byte
	n    int // bytes of the current block absorbed into x, 0..16; the block is encrypted lazily
}

// reset starts a MAC under b.
func (s *macState) reset(b cipher.Block) {
	s.b, s.x, s.n = b, [16]byte{}, 0
}

// write absorbs p. It returns false, having stopped, if stop is set before a block is encrypted.
// The last block, complete or not, is kept for final.
func (s *macState) write(p []byte, stop *atomic.Bool) bool {
	for len(p) > 0 {
		if s.n == 16 {
			if stop != nil && stop.Load() {
				return false
			}
			s.b.Encrypt(s.x[:], s.x[:])
			s.n = 0
		}
		m := min(16-s.n, len(p))
		xorInto(s.x[s.n:], p[:m])
		s.n += m
		p = p[m:]
	}
	return true
}

// final returns the tag: the last block, padded if incomplete, masked with subkey K1 (complete)
// or K2 (padded), encrypted.
func (s *macState) final() [16]byte {
	s.k = [16]byte{}
	s.b.Encrypt(s.k[:], s.k[:]) // L = E(0)
	double(&s.k)                // K1
	if s.n < 16 {
		double(&s.k) // K2
		s.x[s.n] ^= 0x80
	}
	xorInto(s.x[:], s.k[:])
	s.b.Encrypt(s.x[:], s.x[:])
	s.k = [16]byte{}
	return s.x
}

// sum returns the CMAC of msg under b.
func (s *macState) sum(b cipher.Block, msg []byte) [16]byte {
	s.reset(b)
	s.write(msg, nil)
	return s.final()
}

// double multiplies v by x in GF(2^128) with the CMAC polynomial, without branching on v.
func double(v *[16]byte) {
	carry := v[0] >> 7
	for i := 0; i < 15; i++ {
		v[i] = v[i]<<1 | v[i+1]>>7
	}
	v[15] = v[15]<<1 ^ (0x87 & -carry)
}

// xorInto sets dst[i] ^= src[i] for every byte of src.
func xorInto(dst, src []byte) {
	for i := range src {
		dst[i] ^= src[i]
	}
}

// CMAC returns the AES-128 CMAC (RFC 4493) of msg under key.
func CMAC(key [16]byte, msg []byte) [16]byte {
	b, _ := aes.NewCipher(key[:]) // a 16-byte key cannot fail
	s := new(macState)
	return s.sum(b, msg)
}

// GetIDMAC is the MAC of CMD_GET_ID (SHE v1.1 section 9.3): CMAC(MASTER_ECU_KEY, challenge | UID |
// SREG). A SHE whose MASTER_ECU_KEY is empty answers an all-zero MAC instead.
func GetIDMAC(masterECUKey, challenge [16]byte, uid UID, sreg Status) [16]byte {
	var msg [32]byte
	copy(msg[:16], challenge[:])
	copy(msg[16:31], uid[:])
	msg[31] = byte(sreg)
	return CMAC(masterECUKey, msg[:])
}

// DebugAuthorization is the value CMD_DEBUG_AUTHORIZATION expects (SHE v1.1 section 9.5):
// CMAC(KDF(MASTER_ECU_KEY, DEBUG_KEY_C), challenge | UID), a 31-byte message.
func DebugAuthorization(masterECUKey, challenge [16]byte, uid UID) [16]byte {
	var msg [31]byte
	copy(msg[:16], challenge[:])
	copy(msg[16:], uid[:])
	return CMAC(KDF(masterECUKey, DebugKeyC), msg[:])
}
