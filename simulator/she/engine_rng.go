package she

import "crypto/aes"

// InitRNG is CMD_INIT_RNG (SHE v1.1 section 9.4): PRNG_SEED_KEY = KDF(SECRET_KEY, PRNG_SEED_KEY_C);
// the stored seed becomes ENC_ECB(PRNG_SEED_KEY, seed), durably, and is the PRNG state;
// PRNG_KEY = KDF(SECRET_KEY, PRNG_KEY_C). A second call in one power cycle answers
// ERC_SEQUENCE_ERROR.
func (e *Engine) InitRNG() ERC {
	if !e.begin() {
		return Busy
	}
	defer e.end()
	if e.vol.sreg&StatusRNDInit != 0 {
		return SequenceError
	}
	secret := &e.nvm.Slots[SecretKey]
	if !secret.Loaded {
		return KeyEmpty
	}
	w := e.work
	w.key = secret.Key
	w.mp.derivePair(&w.key, &PRNGSeedKeyC, &PRNGKeyC, &w.k1, &w.k2)
	b, _ := aes.NewCipher(w.k1[:])
	seed := e.buf[:16]
	b.Encrypt(seed, e.nvm.PRNGSeed[:])
	next := e.stage()
	copy(next.PRNGSeed[:], seed)
	if erc := e.commit(); erc != NoError {
		return erc
	}
	e.vol.prngState = e.nvm.PRNGSeed
	e.vol.prngKey = w.k2
	e.vol.sreg |= StatusRNDInit
	return NoError
}

// ExtendSeed is CMD_EXTEND_SEED: the PRNG state and the stored seed each become the AES-MP hash
// of themselves followed by entropy (PRNG_STATE' = AES-MP(PRNG_STATE | ENTROPY), padded). Before
// CMD_INIT_RNG it answers ERC_RNG_SEED.
func (e *Engine) ExtendSeed(entropy [16]byte) ERC {
	if !e.begin() {
		return Busy
	}
	defer e.end()
	if e.vol.sreg&StatusRNDInit == 0 {
		return RNGSeed
	}
	next := e.stage()
	next.PRNGSeed = e.extend(&e.nvm.PRNGSeed, &entropy)
	state := e.extend(&e.vol.prngState, &entropy)
	if erc := e.commit(); erc != NoError {
		return erc
	}
	e.vol.prngState = state
	return NoError
}

// extend returns AES-MP(v | entropy | PRNG_EXTENSION_C), the last block being the MP padding of a
// 256-bit message.
func (e *Engine) extend(v, entropy *[16]byte) [16]byte {
	in := e.buf[:48]
	copy(in[:16], v[:])
	copy(in[16:32], entropy[:])
	copy(in[32:], PRNGExtensionC[:])
	out := e.work.mp.compress(in)
	clear(in)
	return out
}

// Rnd is CMD_RND: PRNG_STATE = ENC_ECB(PRNG_KEY, PRNG_STATE), returned. Before CMD_INIT_RNG it
// answers ERC_RNG_SEED.
func (e *Engine) Rnd() ([16]byte, ERC) {
	if !e.begin() {
		return [16]byte{}, Busy
	}
	defer e.end()
	return e.rnd()
}

func (e *Engine) rnd() ([16]byte, ERC) {
	if e.vol.sreg&StatusRNDInit == 0 {
		return [16]byte{}, RNGSeed
	}
	b, _ := aes.NewCipher(e.vol.prngKey[:])
	b.Encrypt(e.vol.prngState[:], e.vol.prngState[:])
	return e.vol.prngState, NoError
}
