package she

import (
	"crypto/aes"
	"crypto/cipher"
	"sync"
	"sync/atomic"
)

// Slot is one key slot: its key, its 28-bit counter, its flags, and whether it holds a key at all.
type Slot struct {
	Key     [16]byte
	Counter uint32
	Flags   Flags
	Loaded  bool // false: the slot is empty
}

// NVM is the SHE's non-volatile memory: what survives a power cycle and what a [Store] persists.
// It is a comparable value.
type NVM struct {
	UID      UID
	Slots    [Key10 + 1]Slot // SECRET_KEY .. KEY_10; the RAM key is volatile
	PRNGSeed [16]byte
}

// Store persists the non-volatile memory. Save must make the new state durable before it returns
// nil, and must leave the previous state in place when it fails.
type Store interface {
	Save(nvm *NVM) error
}

// volatile is the state a power cycle clears.
type volatile struct {
	sreg         Status
	ram          Slot
	ramPlain     bool // the RAM key was loaded with CMD_LOAD_PLAIN_KEY and may be exported
	prngState    [16]byte
	prngKey      [16]byte
	challenge    [16]byte
	challengeSet bool
	extDebugger  bool
}

// Engine executes SHE commands. It is safe for concurrent use in the way a SHE is: a command
// issued while another runs answers ERC_BUSY, except CANCEL and GET_STATUS, which any caller may
// issue at any time.
type Engine struct {
	profile Profile
	dev     Deviations
	store   Store
	nvm     NVM
	next    NVM // staging copy of nvm for a change being committed (kept here: Save must not make it escape)
	vol     volatile

	busy     atomic.Bool
	canceled atomic.Bool
	status   atomic.Uint32 // SREG as GET_STATUS reads it, BUSY included

	mu   sync.Mutex // guards nvm and vol; held only by the caller that won busy
	work *updateWork
	mac  macState
	buf  [64]byte // scratch for MAC input and cipher blocks; must stay in the heap-allocated Engine
}

// NewEngine returns an engine for the profile with non-volatile memory nvm, as found after a power
// cycle: secure boot not yet run, PRNG not initialized. store may be nil (nothing is persisted).
func NewEngine(p Profile, nvm NVM, store Store) *Engine {
	e := &Engine{profile: p, store: store, nvm: nvm, work: newUpdateWork()}
	e.publish()
	return e
}

// Deviations make an engine break rules of the specification on purpose, so that a conformance
// suite can show it notices. A conforming engine has none.
type Deviations struct {
	SkipCounterCheck   bool // CMD_LOAD_KEY accepts counters that are not greater than the slot's
	IgnoreWildcardFlag bool // CMD_LOAD_KEY accepts the wildcard UID whatever the WILDCARD flag says
}

// SetDeviations makes the engine deviate from the specification as d says.
func (e *Engine) SetDeviations(d Deviations) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dev = d
}

// Profile returns the engine's profile.
func (e *Engine) Profile() Profile { return e.profile }

// NVM returns a copy of the non-volatile memory.
func (e *Engine) NVM() NVM {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nvm
}

// UID returns the SHE's UID.
func (e *Engine) UID() UID {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nvm.UID
}

// begin claims the engine for one command. It returns false, and the command must answer
// ERC_BUSY, when another command is running.
func (e *Engine) begin() bool {
	if !e.busy.CompareAndSwap(false, true) {
		return false
	}
	e.mu.Lock()
	e.canceled.Store(false)
	e.status.Store(uint32(e.vol.sreg | StatusBusy))
	return true
}

// end releases the engine after a command.
func (e *Engine) end() {
	e.publish()
	e.mu.Unlock()
	e.busy.Store(false)
}

// publish makes the current SREG visible to GET_STATUS.
func (e *Engine) publish() {
	s := e.vol.sreg
	if e.vol.extDebugger {
		s |= StatusExtDebugger
	}
	e.status.Store(uint32(s))
}

// Status is CMD_GET_STATUS: the status register. It never waits and never fails.
func (e *Engine) Status() Status { return Status(e.status.Load()) }

// sreg returns the status register as commands see it (BUSY clear).
func (e *Engine) sreg() Status {
	s := e.vol.sreg
	if e.vol.extDebugger {
		s |= StatusExtDebugger
	}
	return s
}

// Cancel is CMD_CANCEL: it makes a running command stop at its next block and answer
// ERC_GENERAL_ERROR, with nothing changed. With no command running it does nothing.
func (e *Engine) Cancel() ERC {
	if e.busy.Load() {
		e.canceled.Store(true)
	}
	return NoError
}

// PowerCycle simulates a reset: the RAM key, the PRNG state, the boot state and a pending debug
// challenge are lost; the non-volatile memory stays. The caller runs SecureBoot again, as the
// SHE's host does after a reset.
func (e *Engine) PowerCycle() ERC {
	if !e.begin() {
		return Busy
	}
	defer e.end()
	ext := e.vol.extDebugger
	e.vol = volatile{extDebugger: ext}
	return NoError
}

// AttachDebugger simulates an external debugger being attached or detached (SREG EXT_DEBUGGER).
// While one is attached, keys with DEBUGGER_PROTECTION are not available.
func (e *Engine) AttachDebugger(attached bool) ERC {
	if !e.begin() {
		return Busy
	}
	defer e.end()
	e.vol.extDebugger = attached
	return NoError
}

// stage returns the staging copy of the non-volatile memory, equal to the current one, for a
// command to change and then commit.
func (e *Engine) stage() *NVM {
	e.next = e.nvm
	return &e.next
}

// commit persists the staged memory and, once it is durable, makes it the engine's non-volatile
// memory. On failure nothing changes and the command answers ERC_MEMORY_FAILURE.
func (e *Engine) commit() ERC {
	if e.store != nil {
		if err := e.store.Save(&e.next); err != nil {
			return MemoryFailure
		}
	}
	e.nvm = e.next
	return NoError
}

// keyPurpose is what a command wants a key for.
type keyPurpose uint8

const (
	forCipher keyPurpose = iota
	forGenerateMAC
	forVerifyMAC
)

// slot returns the slot id names in this profile, the RAM key included, or nil.
func (e *Engine) slot(id KeyID) *Slot {
	switch {
	case id == e.profile.RAMKey:
		return &e.vol.ram
	case id <= Key10:
		return &e.nvm.Slots[id]
	}
	return nil
}

// usableKey returns the cipher of key id for purpose, or the error code the SHE answers:
// KEY_INVALID for a slot the command may not use or a key of the other usage, KEY_EMPTY for an
// empty slot, KEY_NOT_AVAILABLE for a boot-protected key without a successful secure boot or a
// debugger-protected key while a debugger is attached.
func (e *Engine) usableKey(id KeyID, purpose keyPurpose) (cipher.Block, ERC) {
	isRAM := id == e.profile.RAMKey
	allowed := id.IsUserKey() || isRAM || (purpose == forVerifyMAC && id == BootMACKey)
	if !allowed {
		return nil, KeyInvalid
	}
	s := e.slot(id)
	if !s.Loaded {
		return nil, KeyEmpty
	}
	if s.Flags&BootProtection != 0 && e.vol.sreg&StatusBootOK == 0 {
		return nil, KeyNotAvailable
	}
	if s.Flags&DebuggerProtection != 0 && e.vol.extDebugger {
		return nil, KeyNotAvailable
	}
	if !isRAM && id != BootMACKey {
		macKey := s.Flags&KeyUsage != 0
		switch {
		case purpose == forCipher && macKey,
			purpose != forCipher && !macKey,
			purpose == forGenerateMAC && s.Flags&VerifyOnly != 0:
			return nil, KeyInvalid
		}
	}
	b, _ := aes.NewCipher(s.Key[:])
	return b, NoError
}
