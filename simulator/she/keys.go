package she

import (
	"encoding/hex"
	"fmt"
)

// KeyID is the 4-bit identifier of a SHE key slot.
type KeyID uint8

// Key slots of the SHE specification. The RAM key's slot number depends on the profile (see
// [Profile.RAMKey]); [RAMKey] is the AUTOSAR/HIS number.
const (
	SecretKey    KeyID = 0x0
	MasterECUKey KeyID = 0x1
	BootMACKey   KeyID = 0x2
	BootMAC      KeyID = 0x3
	Key1         KeyID = 0x4
	Key10        KeyID = 0xD
	RAMKey       KeyID = 0xE
)

// NumSlots is the number of 4-bit key slot numbers.
const NumSlots = 16

// String names the slot as the SHE specification does (KEY_n for the user keys).
func (id KeyID) String() string {
	switch {
	case id == SecretKey:
		return "SECRET_KEY"
	case id == MasterECUKey:
		return "MASTER_ECU_KEY"
	case id == BootMACKey:
		return "BOOT_MAC_KEY"
	case id == BootMAC:
		return "BOOT_MAC"
	case id >= Key1 && id <= Key10:
		return fmt.Sprintf("KEY_%d", id-Key1+1)
	case id == 0xE || id == 0xF:
		return fmt.Sprintf("RAM_KEY(0x%X)", uint8(id))
	}
	return fmt.Sprintf("KeyID(0x%X)", uint8(id))
}

// IsUserKey reports whether id is one of KEY_1..KEY_10.
func (id KeyID) IsUserKey() bool { return id >= Key1 && id <= Key10 }

// Flags are the protection flags of a key slot. The first five are those of the SHE specification,
// transmitted in M2 in the order WRITE_PROTECTION, BOOT_PROTECTION, DEBUGGER_PROTECTION, KEY_USAGE,
// WILDCARD; the numeric values follow that order, so "01101" is 0x0D. VerifyOnly is the sixth flag of
// NXP's CSEc and is only meaningful in the csec profile.
type Flags uint8

// The key flags.
const (
	WriteProtection    Flags = 0x10
	BootProtection     Flags = 0x08
	DebuggerProtection Flags = 0x04
	KeyUsage           Flags = 0x02 // set: MAC key; clear: cipher key
	Wildcard           Flags = 0x01 // set: updates with the wildcard UID are refused
	VerifyOnly         Flags = 0x20 // CSEc only: the MAC key may verify but not generate
)

// ParseFlags reads flags written as five bits (WP BP DP KU WC) or, for CSEc, six bits (… VO).
func ParseFlags(s string) (Flags, error) {
	if len(s) != 5 && len(s) != 6 {
		return 0, fmt.Errorf("she: flags %q: want 5 bits (WP BP DP KU WC) or 6 (… VO)", s)
	}
	var f Flags
	for i := 0; i < 5; i++ {
		switch s[i] {
		case '1':
			f |= 0x10 >> i
		case '0':
		default:
			return 0, fmt.Errorf("she: flags %q: bit %d is not 0 or 1", s, i)
		}
	}
	if len(s) == 6 {
		switch s[5] {
		case '1':
			f |= VerifyOnly
		case '0':
		default:
			return 0, fmt.Errorf("she: flags %q: bit 5 is not 0 or 1", s)
		}
	}
	return f, nil
}

// String writes the five SHE flags as bits, most significant first, and a sixth bit when
// VerifyOnly is set.
func (f Flags) String() string {
	b := make([]byte, 0, 6)
	for i := 0; i < 5; i++ {
		b = append(b, '0'+byte(f>>(4-i))&1)
	}
	if f&VerifyOnly != 0 {
		b = append(b, '1')
	}
	return string(b)
}

// UID is the 120-bit unique identifier of a SHE. The all-zero UID is the wildcard.
type UID [15]byte

// WildcardUID is the UID that M1 carries when a key update is not bound to one SHE.
var WildcardUID = UID{}

// ParseUID reads a UID written as 30 hexadecimal digits.
func ParseUID(s string) (UID, error) {
	var u UID
	if err := decodeHexInto(u[:], s, "UID"); err != nil {
		return u, err
	}
	return u, nil
}

// String writes the UID as 30 lowercase hexadecimal digits.
func (u UID) String() string { return hex.EncodeToString(u[:]) }

// decodeHexInto decodes s into dst, which it must fill exactly.
func decodeHexInto(dst []byte, s, what string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("she: %s: want %d hex digits, got %d", what, 2*len(dst), len(s))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("she: %s: %v", what, err)
	}
	return nil
}

// EmptyAuth says how a profile treats an empty slot used to authorize a key update.
type EmptyAuth uint8

const (
	// EmptyAuthorizesAny: an empty authorizing slot acts as a key of the profile's empty value,
	// whichever slot is updated (the OEM document's examples authorize KEY_2 with an empty,
	// all-zero MASTER_ECU_KEY).
	EmptyAuthorizesAny EmptyAuth = iota
	// EmptyAuthorizesSelf: an empty slot authorizes only its own first update (AuthID = KeyID);
	// any other update it would authorize answers KEY_EMPTY.
	EmptyAuthorizesSelf
)

// Profile is the set of choices in which SHE implementations differ. It is a value: an [Engine] is
// built with one, and nothing else in the code forks on the vendor.
type Profile struct {
	Name      string
	RAMKey    KeyID     // slot number of the RAM key
	EmptyKey  [16]byte  // the value an empty slot has when it authorizes an update
	EmptyAuth EmptyAuth // which updates an empty slot may authorize
	FlagMask  Flags     // the flags a key update may set
}

// The two profiles.
var (
	// ProfileAUTOSAR is the HIS/AUTOSAR SHE: RAM_KEY 0xE, five flags, an empty key authorizes as
	// all-zero (the default, as the OEM document's examples show).
	ProfileAUTOSAR = Profile{Name: "autosar", RAMKey: 0xE, EmptyAuth: EmptyAuthorizesAny, FlagMask: 0x1F}
	// ProfileCSEc is NXP's CSEc: RAM_KEY 0xF, erased (empty) keys read as all-FF and authorize only
	// their own first update, six flags with VERIFY_ONLY.
	ProfileCSEc = Profile{Name: "csec", RAMKey: 0xF, EmptyKey: [16]byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	}, EmptyAuth: EmptyAuthorizesSelf, FlagMask: 0x3F}
)

// ProfileByName returns the profile called name ("autosar" or "csec").
func ProfileByName(name string) (Profile, error) {
	switch name {
	case ProfileAUTOSAR.Name:
		return ProfileAUTOSAR, nil
	case ProfileCSEc.Name:
		return ProfileCSEc, nil
	}
	return Profile{}, fmt.Errorf("she: unknown profile %q (want autosar or csec)", name)
}

// ValidSlot reports whether id names a key slot in this profile.
func (p Profile) ValidSlot(id KeyID) bool {
	return id <= Key10 || id == p.RAMKey
}
