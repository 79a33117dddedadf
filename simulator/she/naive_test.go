package she

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/aead/cmac"
)

// naiveM1M5 builds M1-M5 the straightforward way, from the definitions, with crypto/cipher's CBC
// mode, github.com/aead/cmac and a fresh AES key schedule for every step. It is the reference the
// optimized builder is compared with, and the baseline of its benchmark.
func naiveM1M5(u KeyUpdate) Messages {
	enc := func(key, block []byte) []byte {
		b, _ := aes.NewCipher(key)
		out := make([]byte, 16)
		b.Encrypt(out, block)
		return out
	}
	mp := func(blocks ...[]byte) []byte {
		h := make([]byte, 16)
		for _, x := range blocks {
			e := enc(h, x)
			for i := range h {
				h[i] ^= e[i] ^ x[i]
			}
		}
		return h
	}
	mac := func(key, msg []byte) []byte {
		b, _ := aes.NewCipher(key)
		t, _ := cmac.Sum(msg, b, 16)
		return t
	}
	k1 := mp(u.AuthKey[:], KeyUpdateEncC[:])
	k2 := mp(u.AuthKey[:], KeyUpdateMACC[:])
	k3 := mp(u.NewKey[:], KeyUpdateEncC[:])
	k4 := mp(u.NewKey[:], KeyUpdateMACC[:])

	var m Messages
	copy(m.M1[:], u.UID[:])
	m.M1[15] = byte(u.KeyID)<<4 | byte(u.AuthID)
	plain := make([]byte, 32)
	f := uint64(u.Flags&0x1F)<<31 | uint64(u.Flags>>5&1)<<30
	binary.BigEndian.PutUint64(plain, uint64(u.Counter)<<36|f)
	copy(plain[16:], u.NewKey[:])
	b1, _ := aes.NewCipher(k1)
	cipher.NewCBCEncrypter(b1, make([]byte, 16)).CryptBlocks(m.M2[:], plain)
	copy(m.M3[:], mac(k2, append(m.M1[:], m.M2[:]...)))
	copy(m.M4[:16], m.M1[:])
	block := make([]byte, 16)
	binary.BigEndian.PutUint64(block, uint64(u.Counter)<<36|1<<35)
	copy(m.M4[16:], enc(k3, block))
	copy(m.M5[:], mac(k4, m.M4[:]))
	return m
}

func TestBuildMessagesMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		var u KeyUpdate
		for j := range u.UID {
			u.UID[j] = byte(r.Uint32())
		}
		for j := range u.AuthKey {
			u.AuthKey[j], u.NewKey[j] = byte(r.Uint32()), byte(r.Uint32())
		}
		u.KeyID, u.AuthID = KeyID(r.IntN(16)), KeyID(r.IntN(16))
		u.Counter, u.Flags = r.Uint32()&MaxCounter, Flags(r.IntN(64))
		got, err := BuildMessages(u)
		if err != nil {
			t.Fatal(err)
		}
		if want := naiveM1M5(u); got != want {
			t.Fatalf("update %+v:\ngot  %x\nwant %x", u, got, want)
		}
	}
}

// BenchmarkM1M5Naive is the baseline for BenchmarkM1M5: twelve key schedules, CBC and CMAC
// objects per call.
func BenchmarkM1M5Naive(b *testing.B) {
	u := benchUpdate
	b.ReportAllocs()
	for b.Loop() {
		u.Counter = u.Counter%MaxCounter + 1
		naiveM1M5(u)
	}
}
