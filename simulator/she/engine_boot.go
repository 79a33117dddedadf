package she

import (
	"crypto/aes"
	"crypto/subtle"
	"math"
)

// BootMACInput returns the 16 bytes that precede the boot image in the BOOT_MAC computation:
// 96 zero bits and the image size in bits as a 32-bit big-endian number. It reports false when the
// image is too large for that size field.
func BootMACInput(imageLen int) ([16]byte, bool) {
	var h [16]byte
	bits := uint64(imageLen) * 8
	if bits > math.MaxUint32 {
		return h, false
	}
	h[12], h[13], h[14], h[15] = byte(bits>>24), byte(bits>>16), byte(bits>>8), byte(bits)
	return h, true
}

// BootMACOf returns the BOOT_MAC of image under bootMACKey (SHE v1.1 section 9.2):
// CMAC(BOOT_MAC_KEY, 0^96 | size in bits (32) | image). It is what a factory writes into BOOT_MAC.
func BootMACOf(bootMACKey [16]byte, image []byte) [16]byte {
	head, _ := BootMACInput(len(image))
	b, _ := aes.NewCipher(bootMACKey[:])
	s := new(macState)
	s.reset(b)
	s.write(head[:], nil)
	s.write(image, nil)
	return s.final()
}

// SecureBoot is CMD_SECURE_BOOT over the boot image:
//
//   - run before in this power cycle: ERC_SEQUENCE_ERROR; empty image: ERC_GENERAL_ERROR;
//   - BOOT_MAC_KEY empty: ERC_NO_SECURE_BOOT, SREG BOOT_INIT only;
//   - BOOT_MAC empty: the MAC is learned into BOOT_MAC (BOOT_INIT, BOOT_FINISHED; BOOT_OK clear);
//   - MAC equal to BOOT_MAC: SECURE_BOOT, BOOT_INIT, BOOT_OK;
//   - MAC different: SECURE_BOOT, BOOT_INIT, BOOT_FINISHED with BOOT_OK clear, so that
//     boot-protected keys answer ERC_KEY_NOT_AVAILABLE.
//
// CANCEL during the MAC finishes the boot unsuccessfully (BOOT_FINISHED) and answers
// ERC_GENERAL_ERROR.
func (e *Engine) SecureBoot(image []byte) ERC {
	if !e.begin() {
		return Busy
	}
	defer e.end()
	if e.vol.sreg&StatusBootInit != 0 {
		return SequenceError
	}
	head, ok := BootMACInput(len(image))
	if len(image) == 0 || !ok {
		return GeneralError
	}
	key := &e.nvm.Slots[BootMACKey]
	if !key.Loaded {
		e.vol.sreg |= StatusBootInit
		return NoSecureBoot
	}
	b, _ := aes.NewCipher(key.Key[:])
	copy(e.buf[:16], head[:])
	e.mac.reset(b)
	if !e.mac.write(e.buf[:16], &e.canceled) || !e.mac.write(image, &e.canceled) {
		e.vol.sreg |= StatusBootInit | StatusBootFinished
		return GeneralError
	}
	sum := e.mac.final()
	stored := &e.nvm.Slots[BootMAC]
	if !stored.Loaded {
		next := e.stage()
		next.Slots[BootMAC] = Slot{Key: sum, Loaded: true}
		if erc := e.commit(); erc != NoError {
			return erc
		}
		e.vol.sreg |= StatusBootInit | StatusBootFinished
		return NoError
	}
	if subtle.ConstantTimeCompare(sum[:], stored.Key[:]) == 1 {
		e.vol.sreg |= StatusSecureBoot | StatusBootInit | StatusBootOK
	} else {
		e.vol.sreg |= StatusSecureBoot | StatusBootInit | StatusBootFinished
	}
	return NoError
}

// bootPending reports whether a verified secure boot awaits CMD_BOOT_OK or CMD_BOOT_FAILURE.
func (e *Engine) bootPending() bool {
	s := e.vol.sreg
	return s&StatusSecureBoot != 0 && s&StatusBootOK != 0 && s&StatusBootFinished == 0
}

// BootOK is CMD_BOOT_OK: it finishes a successful secure boot (BOOT_FINISHED). Without one
// pending it answers ERC_NO_SECURE_BOOT.
func (e *Engine) BootOK() ERC {
	if !e.begin() {
		return Busy
	}
	defer e.end()
	if !e.bootPending() {
		return NoSecureBoot
	}
	e.vol.sreg |= StatusBootFinished
	return NoError
}

// BootFailure is CMD_BOOT_FAILURE: a later boot stage failed; it finishes the boot and clears
// BOOT_OK, which locks boot-protected keys. Without a secure boot pending it answers
// ERC_NO_SECURE_BOOT.
func (e *Engine) BootFailure() ERC {
	if !e.begin() {
		return Busy
	}
	defer e.end()
	if !e.bootPending() {
		return NoSecureBoot
	}
	e.vol.sreg = e.vol.sreg&^StatusBootOK | StatusBootFinished
	return NoError
}
