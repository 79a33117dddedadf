package she

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"math/rand/v2"
	"testing"

	"github.com/aead/cmac"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCMACRFC4493 checks the four examples of RFC 4493 section 4.
func TestCMACRFC4493(t *testing.T) {
	key := [16]byte(mustHex(t, "2b7e151628aed2a6abf7158809cf4f3c"))
	msg := mustHex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	for _, tc := range []struct {
		n   int
		tag string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		got := CMAC(key, msg[:tc.n])
		if hex.EncodeToString(got[:]) != tc.tag {
			t.Errorf("len %d: got %x, want %s", tc.n, got, tc.tag)
		}
	}
}

// TestCMACMatchesIndependentImplementation compares with github.com/aead/cmac over every message
// length around the block boundaries and in streamed pieces.
func TestCMACMatchesIndependentImplementation(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= 100; n++ {
		var key [16]byte
		msg := make([]byte, n)
		for i := range key {
			key[i] = byte(r.Uint32())
		}
		for i := range msg {
			msg[i] = byte(r.Uint32())
		}
		b, _ := aes.NewCipher(key[:])
		want, err := cmac.Sum(msg, b, 16)
		if err != nil {
			t.Fatal(err)
		}
		if got := CMAC(key, msg); !bytes.Equal(got[:], want) {
			t.Fatalf("len %d: got %x, aead/cmac %x", n, got, want)
		}
		var s macState // streamed in two pieces split at every point
		for cut := 0; cut <= n; cut += 7 {
			s.reset(b)
			s.write(msg[:cut], nil)
			s.write(msg[cut:], nil)
			if got := s.final(); !bytes.Equal(got[:], want) {
				t.Fatalf("len %d cut %d: got %x, want %x", n, cut, got, want)
			}
		}
	}
}

func TestPadMP(t *testing.T) {
	for _, tc := range []struct{ n, blocks int }{{0, 1}, {10, 1}, {11, 2}, {16, 2}, {26, 2}, {27, 3}, {32, 3}} {
		p := PadMP(make([]byte, tc.n))
		if len(p) != 16*tc.blocks {
			t.Errorf("len %d: padded to %d bytes, want %d", tc.n, len(p), 16*tc.blocks)
			continue
		}
		if p[tc.n] != 0x80 {
			t.Errorf("len %d: no 1 bit after the message", tc.n)
		}
		bits := uint64(p[len(p)-5])<<32 | uint64(p[len(p)-4])<<24 | uint64(p[len(p)-3])<<16 | uint64(p[len(p)-2])<<8 | uint64(p[len(p)-1])
		if bits != uint64(tc.n)*8 {
			t.Errorf("len %d: length field %d", tc.n, bits)
		}
	}
	if _, err := CompressMP(make([]byte, 17)); err == nil {
		t.Error("CompressMP accepted a partial block")
	}
}
