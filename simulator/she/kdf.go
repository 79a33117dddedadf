package she

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
)

// The constants of the SHE key derivation function (SHE v1.1 section 7.1). Each already carries
// the Miyaguchi-Preneel padding for a message of one key and one constant.
var (
	KeyUpdateEncC     = [16]byte{0x01, 0x01, 0x53, 0x48, 0x45, 0x00, 0x80, 15: 0xb0}
	KeyUpdateMACC     = [16]byte{0x01, 0x02, 0x53, 0x48, 0x45, 0x00, 0x80, 15: 0xb0}
	DebugKeyC         = [16]byte{0x01, 0x03, 0x53, 0x48, 0x45, 0x00, 0x80, 15: 0xb0}
	PRNGKeyC          = [16]byte{0x01, 0x04, 0x53, 0x48, 0x45, 0x00, 0x80, 15: 0xb0}
	PRNGSeedKeyC      = [16]byte{0x01, 0x05, 0x53, 0x48, 0x45, 0x00, 0x80, 15: 0xb0}
	PRNGExtensionC    = [16]byte{0: 0x80, 14: 0x01}
	errNotWholeBlocks = errors.New("she: Miyaguchi-Preneel input is not a whole number of 16-byte blocks")
)

// mpState runs the AES Miyaguchi-Preneel compression. It keeps the cipher of the all-zero key,
// which every compression starts with, and its buffers, so that a compression allocates only the
// key schedules of the chaining values after the first.
type mpState struct {
	zero cipher.Block
	h, t [16]byte
}

func newMPState() *mpState {
	z, _ := aes.NewCipher(make([]byte, 16))
	return &mpState{zero: z}
}

// first sets the chaining value after block x under the initial value 0: H1 = E_0(x) ^ x.
func (s *mpState) first(x []byte) {
	s.zero.Encrypt(s.h[:], x)
	xorInto(s.h[:], x)
}

// next returns the cipher keyed with the current chaining value and advances it over block x:
// H' = E_H(x) ^ x ^ H.
func (s *mpState) next(x []byte) cipher.Block {
	b, _ := aes.NewCipher(s.h[:])
	s.step(b, x)
	return b
}

// step advances the chaining value over x with b, the cipher keyed by the current chaining value.
func (s *mpState) step(b cipher.Block, x []byte) {
	b.Encrypt(s.t[:], x)
	xorInto(s.t[:], x)
	xorInto(s.h[:], s.t[:])
}

// compress returns the compression of padded, a whole number of blocks, from H0 = 0.
func (s *mpState) compress(padded []byte) [16]byte {
	s.first(padded[:16])
	for p := padded[16:]; len(p) > 0; p = p[16:] {
		s.next(p[:16])
	}
	return s.h
}

// CompressMP returns the AES Miyaguchi-Preneel compression (SHE v1.1 section 7.3) of padded, which
// must already be a whole number of 16-byte blocks, starting from the chaining value 0.
func CompressMP(padded []byte) ([16]byte, error) {
	if len(padded) == 0 || len(padded)%16 != 0 {
		return [16]byte{}, errNotWholeBlocks
	}
	return newMPState().compress(padded), nil
}

// PadMP appends SHE's Miyaguchi-Preneel padding to msg: a 1 bit, zeros, and the message length in
// bits as a 40-bit big-endian number, filling the last block.
func PadMP(msg []byte) []byte {
	n := len(msg)
	padded := make([]byte, (n+1+5+15)/16*16)
	copy(padded, msg)
	padded[n] = 0x80
	bits := uint64(n) * 8
	for i := 0; i < 5; i++ {
		padded[len(padded)-1-i] = byte(bits >> (8 * i))
	}
	return padded
}

// MP returns the AES Miyaguchi-Preneel hash of msg: CompressMP(PadMP(msg)).
func MP(msg []byte) [16]byte {
	return newMPState().compress(PadMP(msg))
}

// KDF is SHE's key derivation function: KDF(K, C) = AES-MP(K | C), where C is one of the
// constants above, which carry the padding.
func KDF(key, constant [16]byte) [16]byte {
	s := newMPState()
	s.first(key[:])
	s.next(constant[:])
	return s.h
}

// derivePair derives the two keys of one key's pair of constants, sharing the first compression
// step: out1 = KDF(key, c1), out2 = KDF(key, c2). key, out1 and out2 must not be caller stack
// memory that would otherwise stay on the stack (they are handed to a cipher.Block).
func (s *mpState) derivePair(key, c1, c2, out1, out2 *[16]byte) {
	s.first(key[:])
	h1 := s.h
	b, _ := aes.NewCipher(s.h[:])
	s.step(b, c1[:])
	*out1 = s.h
	s.h = h1
	s.step(b, c2[:])
	*out2 = s.h
}
