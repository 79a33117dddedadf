package she

import (
	"crypto/subtle"
)

// EncryptECB is CMD_ENC_ECB: dst = AES-ECB(key id, src), src a whole number of blocks.
func (e *Engine) EncryptECB(id KeyID, dst, src []byte) ERC {
	return e.cipherCommand(id, nil, dst, src, true)
}

// DecryptECB is CMD_DEC_ECB.
func (e *Engine) DecryptECB(id KeyID, dst, src []byte) ERC {
	return e.cipherCommand(id, nil, dst, src, false)
}

// EncryptCBC is CMD_ENC_CBC with initialization vector iv.
func (e *Engine) EncryptCBC(id KeyID, iv [16]byte, dst, src []byte) ERC {
	return e.cipherCommand(id, &iv, dst, src, true)
}

// DecryptCBC is CMD_DEC_CBC with initialization vector iv.
func (e *Engine) DecryptCBC(id KeyID, iv [16]byte, dst, src []byte) ERC {
	return e.cipherCommand(id, &iv, dst, src, false)
}

// cipherCommand runs one of the four cipher commands; iv nil means ECB. dst and src must have the
// same length, a non-zero multiple of 16, and may be the same slice. A canceled command leaves
// dst partly written and answers ERC_GENERAL_ERROR.
func (e *Engine) cipherCommand(id KeyID, iv *[16]byte, dst, src []byte, encrypt bool) ERC {
	if !e.begin() {
		return Busy
	}
	defer e.end()
	if len(src) == 0 || len(src)%16 != 0 || len(dst) != len(src) {
		return GeneralError
	}
	b, erc := e.usableKey(id, forCipher)
	if erc != NoError {
		return erc
	}
	chain, saved := e.buf[:16], e.buf[16:32]
	if iv != nil {
		copy(chain, iv[:])
	}
	for i := 0; i < len(src); i += 16 {
		if e.canceled.Load() {
			return GeneralError
		}
		in, out := src[i:i+16], dst[i:i+16]
		switch {
		case iv == nil && encrypt:
			b.Encrypt(out, in)
		case iv == nil:
			b.Decrypt(out, in)
		case encrypt:
			xorInto(chain, in)
			b.Encrypt(out, chain)
			copy(chain, out)
		default:
			copy(saved, in) // in and out may be the same block
			b.Decrypt(out, in)
			xorInto(out, chain)
			copy(chain, saved)
		}
	}
	clear(e.buf[:32])
	return NoError
}

// GenerateMAC is CMD_GENERATE_MAC: the AES-CMAC of msg under key id, a MAC key.
func (e *Engine) GenerateMAC(id KeyID, msg []byte) ([16]byte, ERC) {
	if !e.begin() {
		return [16]byte{}, Busy
	}
	defer e.end()
	b, erc := e.usableKey(id, forGenerateMAC)
	if erc != NoError {
		return [16]byte{}, erc
	}
	e.mac.reset(b)
	if !e.mac.write(msg, &e.canceled) {
		return [16]byte{}, GeneralError
	}
	return e.mac.final(), NoError
}

// VerifyMAC is CMD_VERIFY_MAC: it compares the first macBits bits of mac (0 means all 128) with
// the AES-CMAC of msg under key id, in constant time. verified is the VERIFICATION_STATUS the SHE
// reports as 0.
func (e *Engine) VerifyMAC(id KeyID, msg, mac []byte, macBits int) (verified bool, erc ERC) {
	if !e.begin() {
		return false, Busy
	}
	defer e.end()
	if macBits == 0 {
		macBits = 128
	}
	if macBits < 0 || macBits > 128 || len(mac) < (macBits+7)/8 {
		return false, GeneralError
	}
	b, erc := e.usableKey(id, forVerifyMAC)
	if erc != NoError {
		return false, erc
	}
	e.mac.reset(b)
	if !e.mac.write(msg, &e.canceled) {
		return false, GeneralError
	}
	want := e.mac.final()
	return macPrefixEqual(want[:], mac, macBits), NoError
}

// macPrefixEqual compares the first bits bits of a and b in constant time.
func macPrefixEqual(a, b []byte, bits int) bool {
	full := bits / 8
	eq := subtle.ConstantTimeCompare(a[:full], b[:full])
	if rest := bits % 8; rest != 0 {
		mask := byte(0xFF << (8 - rest))
		eq &= subtle.ConstantTimeByteEq(a[full]&mask, b[full]&mask)
	}
	return eq == 1
}
