package she

import "crypto/subtle"

// GetID is CMD_GET_ID: the UID, the status register and CMAC(MASTER_ECU_KEY, challenge | UID |
// SREG) over exactly the SREG returned (BUSY clear). With MASTER_ECU_KEY empty the MAC is zero.
func (e *Engine) GetID(challenge [16]byte) (UID, Status, [16]byte, ERC) {
	if !e.begin() {
		return UID{}, 0, [16]byte{}, Busy
	}
	defer e.end()
	sreg := e.sreg()
	master := &e.nvm.Slots[MasterECUKey]
	var mac [16]byte
	if master.Loaded {
		mac = GetIDMAC(master.Key, challenge, e.nvm.UID, sreg)
	}
	return e.nvm.UID, sreg, mac, NoError
}

// DebugChallenge is CMD_DEBUG_CHALLENGE: a fresh challenge from the PRNG (ERC_RNG_SEED before
// CMD_INIT_RNG), valid for one CMD_DEBUG_AUTHORIZATION.
func (e *Engine) DebugChallenge() ([16]byte, ERC) {
	if !e.begin() {
		return [16]byte{}, Busy
	}
	defer e.end()
	c, erc := e.rnd()
	if erc != NoError {
		return c, erc
	}
	e.vol.challenge, e.vol.challengeSet = c, true
	return c, NoError
}

// DebugAuthorization is CMD_DEBUG_AUTHORIZATION. Every attempt uses up the challenge. In order:
// no challenge pending: ERC_SEQUENCE_ERROR; MASTER_ECU_KEY empty: ERC_KEY_EMPTY; auth is not
// DebugAuthorization(MASTER_ECU_KEY, challenge, UID): ERC_NO_DEBUGGING; any key write-protected:
// ERC_KEY_WRITE_PROTECTED, nothing erased. On success every key but SECRET_KEY is erased (the UID
// and PRNG seed stay), the RAM key and PRNG state are cleared, and SREG shows INT_DEBUGGER.
func (e *Engine) DebugAuthorization(auth [16]byte) ERC {
	if !e.begin() {
		return Busy
	}
	defer e.end()
	if !e.vol.challengeSet {
		return SequenceError
	}
	challenge := e.vol.challenge
	e.vol.challenge, e.vol.challengeSet = [16]byte{}, false
	master := &e.nvm.Slots[MasterECUKey]
	if !master.Loaded {
		return KeyEmpty
	}
	want := DebugAuthorization(master.Key, challenge, e.nvm.UID)
	if subtle.ConstantTimeCompare(want[:], auth[:]) != 1 {
		return NoDebugging
	}
	for _, s := range e.nvm.Slots[MasterECUKey:] {
		if s.Loaded && s.Flags&WriteProtection != 0 {
			return KeyWriteProtected
		}
	}
	next := e.stage()
	for i := MasterECUKey; i <= Key10; i++ {
		next.Slots[i] = Slot{}
	}
	if erc := e.commit(); erc != NoError {
		return erc
	}
	e.vol.ram, e.vol.ramPlain = Slot{}, false
	e.vol.prngState, e.vol.prngKey = [16]byte{}, [16]byte{}
	e.vol.sreg = e.vol.sreg&^StatusRNDInit | StatusIntDebugger
	return NoError
}
