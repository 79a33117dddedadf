package she

// authorizes reports whether slot authID may authorize an update of slot keyID (SHE v1.1 section
// 9.1): MASTER_ECU_KEY only by itself; BOOT_MAC_KEY and BOOT_MAC by MASTER_ECU_KEY or BOOT_MAC_KEY;
// KEY_n by MASTER_ECU_KEY or itself; the RAM key by SECRET_KEY (re-import of an exported key) or
// any KEY_n; SECRET_KEY never.
func (p Profile) authorizes(keyID, authID KeyID) bool {
	switch {
	case keyID == MasterECUKey:
		return authID == MasterECUKey
	case keyID == BootMACKey, keyID == BootMAC:
		return authID == MasterECUKey || authID == BootMACKey
	case keyID.IsUserKey():
		return authID == MasterECUKey || authID == keyID
	case keyID == p.RAMKey:
		return authID == SecretKey || authID.IsUserKey()
	}
	return false
}

// LoadKey is CMD_LOAD_KEY, the memory update protocol. It checks, in this order, and answers the
// first failure:
//
//  1. the target slot is write-protected: ERC_KEY_WRITE_PROTECTED;
//  2. the AuthID may not authorize the KeyID (see Profile rules), or the KeyID is no slot:
//     ERC_KEY_INVALID;
//  3. the authorizing slot is empty and the profile does not let it authorize this update:
//     ERC_KEY_EMPTY (otherwise an empty slot authorizes as the profile's empty value);
//  4. M3 is not the CMAC of M1 | M2, the UID is neither the SHE's nor an allowed wildcard (the
//     wildcard is refused when the target's WILDCARD flag is set), or the counter is not greater
//     than the slot's: ERC_KEY_UPDATE_ERROR;
//  5. the key store cannot be written: ERC_MEMORY_FAILURE.
//
// Then the key, counter and flags are stored together, durably, and M4 | M5 are returned. A
// refused update changes nothing. The RAM key is volatile, has no counter check and no flags.
func (e *Engine) LoadKey(m1 [16]byte, m2 [32]byte, m3 [16]byte) (m4 [32]byte, m5 [16]byte, erc ERC) {
	if !e.begin() {
		return m4, m5, Busy
	}
	defer e.end()
	keyID, authID := KeyID(m1[15]>>4), KeyID(m1[15]&0xF)
	target := e.slot(keyID)
	isRAM := keyID == e.profile.RAMKey
	if target != nil && target.Flags&WriteProtection != 0 {
		return m4, m5, KeyWriteProtected
	}
	if target == nil || !e.profile.authorizes(keyID, authID) {
		return m4, m5, KeyInvalid
	}
	auth := e.slot(authID)
	w := e.work
	switch {
	case auth.Loaded:
		w.key = auth.Key
	case e.profile.EmptyAuth == EmptyAuthorizesSelf && authID != keyID:
		return m4, m5, KeyEmpty
	default:
		w.key = e.profile.EmptyKey
	}
	copy(w.m1m2[:16], m1[:])
	copy(w.m1m2[16:], m2[:])
	w.m3 = m3
	if !w.checkM3() {
		return m4, m5, KeyUpdateError
	}
	o := w.openM2()
	wildcardOK := isRAM || target.Flags&Wildcard == 0 || e.dev.IgnoreWildcardFlag
	if o.UID != e.nvm.UID && !(o.UID == WildcardUID && wildcardOK) {
		return m4, m5, KeyUpdateError
	}
	if !isRAM && o.Counter <= target.Counter && !e.dev.SkipCounterCheck {
		return m4, m5, KeyUpdateError
	}
	if isRAM {
		e.vol.ram = Slot{Key: o.NewKey, Counter: o.Counter, Loaded: true}
		e.vol.ramPlain = false
	} else {
		next := e.stage()
		next.Slots[keyID] = Slot{Key: o.NewKey, Counter: o.Counter, Flags: o.Flags & e.profile.FlagMask, Loaded: true}
		if erc := e.commit(); erc != NoError {
			return m4, m5, erc
		}
	}
	m5 = w.buildM4M5(e.nvm.UID, keyID, authID, o.Counter, &o.NewKey)
	return w.m4, m5, NoError
}

// LoadPlainKey is CMD_LOAD_PLAIN_KEY: key becomes the RAM key, which may then be exported.
func (e *Engine) LoadPlainKey(key [16]byte) ERC {
	if !e.begin() {
		return Busy
	}
	defer e.end()
	e.vol.ram = Slot{Key: key, Loaded: true}
	e.vol.ramPlain = true
	return NoError
}

// ExportRAMKey is CMD_EXPORT_RAM_KEY: M1..M5 that load the current RAM key, authorized by
// SECRET_KEY, with counter 0 and no flags (M4 carries the '1' bit after the counter, as for
// CMD_LOAD_KEY). Only a key loaded in plain may be exported (else ERC_KEY_INVALID).
func (e *Engine) ExportRAMKey() (Messages, ERC) {
	if !e.begin() {
		return Messages{}, Busy
	}
	defer e.end()
	secret := &e.nvm.Slots[SecretKey]
	switch {
	case !e.vol.ram.Loaded || !secret.Loaded:
		return Messages{}, KeyEmpty
	case !e.vol.ramPlain:
		return Messages{}, KeyInvalid
	}
	u := KeyUpdate{UID: e.nvm.UID, KeyID: e.profile.RAMKey, AuthID: SecretKey, AuthKey: secret.Key, NewKey: e.vol.ram.Key}
	w := e.work
	w.buildM1M3(&u)
	m := Messages{M3: w.m3, M5: w.buildM4M5(u.UID, u.KeyID, u.AuthID, 0, &u.NewKey), M4: w.m4}
	copy(m.M1[:], w.m1m2[:16])
	copy(m.M2[:], w.m1m2[16:])
	return m, NoError
}
