package she

import (
	"crypto/aes"
	"crypto/subtle"
	"errors"
	"sync"
)

// MaxCounter is the largest value of a key slot's 28-bit counter.
const MaxCounter = 1<<28 - 1

// KeyUpdate is what the memory update protocol (SHE v1.1 section 9.1, CMD_LOAD_KEY) transports:
// the new key for slot KeyID of the SHE with UID, authorized by the key in slot AuthID.
type KeyUpdate struct {
	UID     UID
	KeyID   KeyID
	AuthID  KeyID
	AuthKey [16]byte // value of the authorizing key
	NewKey  [16]byte
	Counter uint32 // 28 bits
	Flags   Flags
}

// Messages are M1..M5 of the memory update protocol. M1-M3 go to the SHE; M4 and M5 are the
// SHE's proof that it stored the key.
type Messages struct {
	M1 [16]byte // UID | KeyID | AuthID
	M2 [32]byte // ENC_CBC(K1, counter | flags | 0... | new key), IV 0, K1 = KDF(AuthKey, KEY_UPDATE_ENC_C)
	M3 [16]byte // CMAC(K2, M1 | M2), K2 = KDF(AuthKey, KEY_UPDATE_MAC_C)
	M4 [32]byte // UID | KeyID | AuthID | ENC_ECB(K3, counter | 1 | 0...), K3 = KDF(NewKey, KEY_UPDATE_ENC_C)
	M5 [16]byte // CMAC(K4, M4), K4 = KDF(NewKey, KEY_UPDATE_MAC_C)
}

// Opened is what M1-M3 say once decrypted with the authorizing key.
type Opened struct {
	UID     UID
	KeyID   KeyID
	AuthID  KeyID
	Counter uint32
	Flags   Flags
	NewKey  [16]byte
	M3Valid bool // M3 is the CMAC of M1 | M2 under the authorizing key
}

// Proof is what M4 and M5 say once checked with the new key.
type Proof struct {
	UID     UID
	KeyID   KeyID
	AuthID  KeyID
	Counter uint32
	M5Valid bool // M5 is the CMAC of M4 under the new key
	M4Valid bool // M4's encrypted block decrypts to counter | 1 | zeros
}

// Errors of the protocol functions.
var (
	ErrCounterRange = errors.New("she: counter exceeds 28 bits")
	ErrKeyIDRange   = errors.New("she: KeyID and AuthID must be 4-bit values (0..15)")
)

// updateWork holds every buffer and the MP state that building or opening messages needs, so that
// a message costs only the AES key schedules. Pure functions take one from a pool; an Engine owns
// one.
type updateWork struct {
	mp             mpState
	mac            macState
	k1, k2, k3, k4 [16]byte
	key            [16]byte
	m1m2           [48]byte // M1 | M2
	m3             [16]byte
	m4             [32]byte
	plain          [32]byte
}

var workPool = sync.Pool{New: func() any { return newUpdateWork() }}

func newUpdateWork() *updateWork {
	return &updateWork{mp: *newMPState()}
}

// BuildMessages returns M1..M5 for u. It fails only when the counter exceeds 28 bits or an ID
// exceeds 4 bits.
func BuildMessages(u KeyUpdate) (Messages, error) {
	if u.Counter > MaxCounter {
		return Messages{}, ErrCounterRange
	}
	if u.KeyID > 0xF || u.AuthID > 0xF {
		return Messages{}, ErrKeyIDRange
	}
	w := workPool.Get().(*updateWork)
	defer workPool.Put(w)
	w.buildM1M3(&u)
	m5 := w.buildM4M5(u.UID, u.KeyID, u.AuthID, u.Counter, &u.NewKey)
	m := Messages{M3: w.m3, M4: w.m4, M5: m5}
	copy(m.M1[:], w.m1m2[:16])
	copy(m.M2[:], w.m1m2[16:])
	return m, nil
}

// OpenM1M3 decrypts M2 with the key derived from authKey and checks M3. It returns the content
// even when M3 is invalid, so that a tool can show what a message carries; callers that act on it
// must check M3Valid first.
func OpenM1M3(authKey [16]byte, m1 [16]byte, m2 [32]byte, m3 [16]byte) Opened {
	w := workPool.Get().(*updateWork)
	defer workPool.Put(w)
	copy(w.m1m2[:16], m1[:])
	copy(w.m1m2[16:], m2[:])
	w.m3 = m3
	w.key = authKey
	valid := w.checkM3()
	o := w.openM2()
	o.M3Valid = valid
	return o
}

// VerifyM4M5 checks M4 and M5 with the key that the SHE reports it stored.
func VerifyM4M5(newKey [16]byte, m4 [32]byte, m5 [16]byte) Proof {
	w := workPool.Get().(*updateWork)
	defer workPool.Put(w)
	w.key = newKey
	w.mp.derivePair(&w.key, &KeyUpdateEncC, &KeyUpdateMACC, &w.k3, &w.k4)
	w.m4 = m4
	b4, _ := aes.NewCipher(w.k4[:])
	w.m3 = w.mac.sum(b4, w.m4[:]) // reuse m3 as the computed M5
	var p Proof
	p.M5Valid = subtle.ConstantTimeCompare(w.m3[:], m5[:]) == 1
	copy(p.UID[:], m4[:15])
	p.KeyID, p.AuthID = KeyID(m4[15]>>4), KeyID(m4[15]&0xF)
	b3, _ := aes.NewCipher(w.k3[:])
	b3.Decrypt(w.plain[:16], w.m4[16:])
	v := header(w.plain[:8])
	p.Counter = uint32(v >> 36)
	p.M4Valid = v&(1<<36-1) == 1<<35 && allZero(w.plain[8:16])
	return p
}

// packM1 writes UID | KeyID | AuthID.
func packM1(dst []byte, uid UID, keyID, authID KeyID) {
	copy(dst[:15], uid[:])
	dst[15] = byte(keyID)<<4 | byte(authID)&0xF
}

// putHeader writes the first eight bytes of M2's or M4's plaintext: the 28-bit counter followed
// by 36 further bits (next).
func putHeader(dst []byte, counter uint32, next uint64) {
	v := uint64(counter)<<36 | next
	for i := 0; i < 8; i++ {
		dst[i] = byte(v >> (56 - 8*i))
	}
}

// header reads eight bytes big-endian.
func header(src []byte) uint64 {
	var v uint64
	for i := 0; i < 8; i++ {
		v = v<<8 | uint64(src[i])
	}
	return v
}

func allZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return acc == 0
}

// flagBits places flags after the counter: WP BP DP KU WC in bits 35..31, VERIFY_ONLY in bit 30.
func flagBits(f Flags) uint64 {
	return uint64(f&0x1F)<<31 | uint64(f>>5&1)<<30
}

// flagsFromHeader reads the flags back from the header of M2's plaintext.
func flagsFromHeader(v uint64) Flags {
	return Flags(v>>31&0x1F) | Flags(v>>30&1)<<5
}

// buildM1M3 writes M1 | M2 and M3 for u.
func (w *updateWork) buildM1M3(u *KeyUpdate) {
	w.key = u.AuthKey
	w.mp.derivePair(&w.key, &KeyUpdateEncC, &KeyUpdateMACC, &w.k1, &w.k2)
	packM1(w.m1m2[:16], u.UID, u.KeyID, u.AuthID)

	w.plain = [32]byte{}
	putHeader(w.plain[:8], u.Counter, flagBits(u.Flags))
	copy(w.plain[16:], u.NewKey[:])
	m2 := w.m1m2[16:]
	b1, _ := aes.NewCipher(w.k1[:])
	b1.Encrypt(m2[:16], w.plain[:16])
	xorInto(w.plain[16:], m2[:16])
	b1.Encrypt(m2[16:], w.plain[16:])
	w.plain = [32]byte{}

	b2, _ := aes.NewCipher(w.k2[:])
	w.m3 = w.mac.sum(b2, w.m1m2[:])
}

// checkM3 derives K1 and K2 from w.key and reports, in constant time, whether w.m3 is the CMAC of
// w.m1m2 under K2.
func (w *updateWork) checkM3() bool {
	w.mp.derivePair(&w.key, &KeyUpdateEncC, &KeyUpdateMACC, &w.k1, &w.k2)
	b2, _ := aes.NewCipher(w.k2[:])
	want := w.mac.sum(b2, w.m1m2[:])
	return subtle.ConstantTimeCompare(want[:], w.m3[:]) == 1
}

// openM2 decrypts M2 of w.m1m2 with w.k1 (set by checkM3) and returns what M1 and M2 carry.
func (w *updateWork) openM2() Opened {
	m2 := w.m1m2[16:]
	b1, _ := aes.NewCipher(w.k1[:])
	b1.Decrypt(w.plain[:16], m2[:16])
	b1.Decrypt(w.plain[16:], m2[16:])
	xorInto(w.plain[16:], m2[:16])
	var o Opened
	copy(o.UID[:], w.m1m2[:15])
	o.KeyID, o.AuthID = KeyID(w.m1m2[15]>>4), KeyID(w.m1m2[15]&0xF)
	v := header(w.plain[:8])
	o.Counter = uint32(v >> 36)
	o.Flags = flagsFromHeader(v)
	copy(o.NewKey[:], w.plain[16:])
	w.plain = [32]byte{}
	return o
}

// buildM4M5 writes M4 into w.m4 and returns M5 for a key stored with the given counter.
func (w *updateWork) buildM4M5(uid UID, keyID, authID KeyID, counter uint32, newKey *[16]byte) [16]byte {
	w.key = *newKey
	w.mp.derivePair(&w.key, &KeyUpdateEncC, &KeyUpdateMACC, &w.k3, &w.k4)
	packM1(w.m4[:16], uid, keyID, authID)
	putHeader(w.m4[16:24], counter, 1<<35)
	clear(w.m4[24:])
	b3, _ := aes.NewCipher(w.k3[:])
	b3.Encrypt(w.m4[16:], w.m4[16:])
	b4, _ := aes.NewCipher(w.k4[:])
	return w.mac.sum(b4, w.m4[:])
}
