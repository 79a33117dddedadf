package she

import (
	"encoding/hex"
	"fmt"
	"testing"
)

func TestBuildMessagesRejectsOutOfRange(t *testing.T) {
	if _, err := BuildMessages(KeyUpdate{Counter: MaxCounter + 1}); err != ErrCounterRange {
		t.Errorf("counter 2^28: err = %v", err)
	}
	if _, err := BuildMessages(KeyUpdate{KeyID: 16}); err != ErrKeyIDRange {
		t.Errorf("KeyID 16: err = %v", err)
	}
	if _, err := BuildMessages(KeyUpdate{Counter: MaxCounter, KeyID: 15, AuthID: 15}); err != nil {
		t.Errorf("largest values: %v", err)
	}
}

func TestFlagsText(t *testing.T) {
	for _, tc := range []struct {
		text string
		f    Flags
	}{
		{"01101", BootProtection | DebuggerProtection | Wildcard},
		{"01111", BootProtection | DebuggerProtection | KeyUsage | Wildcard},
		{"10000", WriteProtection},
		{"000101", KeyUsage | VerifyOnly},
	} {
		f, err := ParseFlags(tc.text)
		if err != nil || f != tc.f {
			t.Errorf("ParseFlags(%q) = %v, %v; want %#x", tc.text, f, err, uint8(tc.f))
		}
		if got := tc.f.String(); got != tc.text {
			t.Errorf("%#x.String() = %q, want %q", uint8(tc.f), got, tc.text)
		}
	}
	for _, bad := range []string{"", "0110", "0110x", "0111111", "2"} {
		if _, err := ParseFlags(bad); err == nil {
			t.Errorf("ParseFlags(%q) accepted", bad)
		}
	}
}

// TestVerifyM4M5DetectsTampering: a proof for another counter, key or flipped byte is refused.
func TestVerifyM4M5DetectsTampering(t *testing.T) {
	u := benchUpdate
	m, _ := BuildMessages(u)
	if p := VerifyM4M5(u.NewKey, m.M4, m.M5); !p.M4Valid || !p.M5Valid || p.Counter != 1 {
		t.Fatalf("genuine proof refused: %+v", p)
	}
	for i := range 32 {
		m4 := m.M4
		m4[i] ^= 0x01
		if VerifyM4M5(u.NewKey, m4, m.M5).M5Valid {
			t.Errorf("M4 byte %d flipped: M5 still valid", i)
		}
	}
	other := u.NewKey
	other[0] ^= 1
	if VerifyM4M5(other, m.M4, m.M5).M5Valid {
		t.Error("wrong key: M5 valid")
	}
}

// ExampleBuildMessages replays the OEM document's MasterECUKey example: the first master key,
// authorized by the empty (all-zero) MASTER_ECU_KEY, counter 1, flags 01101.
func ExampleBuildMessages() {
	uid, _ := ParseUID("000300010000000000000000000002")
	newKey, _ := hex.DecodeString("39e6354ee40d0ab487025fb5db08a768")
	flags, _ := ParseFlags("01101")
	m, _ := BuildMessages(KeyUpdate{UID: uid, KeyID: MasterECUKey, AuthID: MasterECUKey,
		NewKey: [16]byte(newKey), Counter: 1, Flags: flags})
	fmt.Printf("M1 %x\nM2 %x\nM3 %x\nM4 %x\nM5 %x\n", m.M1, m.M2, m.M3, m.M4, m.M5)
	// Output:
	// M1 00030001000000000000000000000211
	// M2 83a6957a7c21c35c9bf9083c09c728fa8ebb3965805bfe8f9fd6b88b7fcf8df4
	// M3 1eae814952a1ad6f9efc2e0c20378c3d
	// M4 000300010000000000000000000002119d65cbf811941c12318183fce05f9880
	// M5 adf3b9cb4e14a5cb60899f1a4a59feb2
}

// ExampleOpenM1M3 opens the document's SecOCKey example with the all-zero authorizing key.
func ExampleOpenM1M3() {
	m1, _ := hex.DecodeString("00030001000000000000000000000251")
	m2, _ := hex.DecodeString("16d4ca7b74b48dafefdae7ade95eacbe5851dad0b3c5f6b319b2b12ccb4242a3")
	m3, _ := hex.DecodeString("91ec2cf7188e7749cde1890067415d65")
	o := OpenM1M3([16]byte{}, [16]byte(m1), [32]byte(m2), [16]byte(m3))
	fmt.Println(o.UID, o.KeyID, o.AuthID, o.Counter, o.Flags)
	fmt.Printf("%x %v\n", o.NewKey, o.M3Valid)
	// Output:
	// 000300010000000000000000000002 KEY_2 MASTER_ECU_KEY 1 01111
	// db32ed5e285d975f6148cd346d382fa7 true
}

func FuzzOpenM1M3(f *testing.F) {
	f.Add([]byte{0x00, 0x03, 0x00, 0x01}, uint8(0x11), []byte{}, []byte{0x39, 0xe6}, uint32(1), uint8(0x0D), []byte{})
	f.Add([]byte{}, uint8(0xE0), []byte{1, 2, 3}, []byte{}, uint32(MaxCounter), uint8(0x3F), []byte{0xff})
	f.Fuzz(func(t *testing.T, uid []byte, ids uint8, authKey, newKey []byte, counter uint32, flags uint8, noise []byte) {
		u := KeyUpdate{KeyID: KeyID(ids >> 4), AuthID: KeyID(ids & 0xF), Counter: counter & MaxCounter, Flags: Flags(flags & 0x3F)}
		copy(u.UID[:], uid)
		copy(u.AuthKey[:], authKey)
		copy(u.NewKey[:], newKey)
		m, err := BuildMessages(u)
		if err != nil {
			t.Fatal(err)
		}
		want := Opened{UID: u.UID, KeyID: u.KeyID, AuthID: u.AuthID, Counter: u.Counter, Flags: u.Flags, NewKey: u.NewKey, M3Valid: true}
		if got := OpenM1M3(u.AuthKey, m.M1, m.M2, m.M3); got != want {
			t.Fatalf("round trip: got %+v, want %+v", got, want)
		}
		if p := VerifyM4M5(u.NewKey, m.M4, m.M5); !p.M4Valid || !p.M5Valid || p.Counter != u.Counter {
			t.Fatalf("proof: %+v", p)
		}
		// Any change of the messages must invalidate M3.
		if len(noise) == 0 {
			return
		}
		msg := append(append(append([]byte{}, m.M1[:]...), m.M2[:]...), m.M3[:]...)
		changed := false
		for i, b := range noise {
			if b != 0 {
				msg[i%len(msg)] ^= b
				changed = true
			}
		}
		o := OpenM1M3(u.AuthKey, [16]byte(msg[:16]), [32]byte(msg[16:48]), [16]byte(msg[48:]))
		if changed && string(msg) != string(append(append(m.M1[:], m.M2[:]...), m.M3[:]...)) && o.M3Valid {
			t.Fatal("changed M1|M2|M3 still has a valid M3")
		}
	})
}
