package she

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// fuzzFactory is a state with every kind of slot the LOAD_KEY rules look at: a loaded master key,
// a write-protected key, a wildcard-protected key, an empty one.
func fuzzFactory() NVM {
	nvm := NVM{UID: UID{0x00, 0x01, 0x00, 0x1d, 14: 0x0b}}
	nvm.Slots[SecretKey] = Slot{Key: [16]byte{0x0f, 0x0e}, Loaded: true}
	nvm.Slots[MasterECUKey] = Slot{Key: [16]byte{0x39, 0xe6}, Counter: 3, Flags: 0x0D, Loaded: true}
	nvm.Slots[Key1] = Slot{Key: [16]byte{0x41}, Counter: 7, Flags: WriteProtection, Loaded: true}
	nvm.Slots[Key1+1] = Slot{Key: [16]byte{0x42}, Counter: 2, Flags: Wildcard | KeyUsage, Loaded: true}
	return nvm
}

// engineState is everything a command may change; it is comparable.
type engineState struct {
	nvm NVM
	vol volatile
}

func stateOf(e *Engine) engineState { return engineState{e.nvm, e.vol} }

// FuzzLoadKey sends CMD_LOAD_KEY with messages built for the fuzzed fields (so that the fuzzer
// reaches every check, success included) and then disturbed by a fuzzed mask. A refused command
// must leave the engine exactly as it was; an accepted one must store what M2 carried and prove
// it with M4/M5.
func FuzzLoadKey(f *testing.F) {
	f.Add(uint8(0x11), uint8(0), uint32(4), uint8(0x0D), []byte{}, false)
	f.Add(uint8(0x51), uint8(0), uint32(1), uint8(0x0F), []byte{}, true)
	f.Add(uint8(0x41), uint8(1), uint32(8), uint8(0x00), []byte{}, false)
	f.Add(uint8(0xE4), uint8(2), uint32(0), uint8(0x00), []byte{0, 0, 0, 1}, false)
	f.Add(uint8(0x01), uint8(0), uint32(5), uint8(0x1F), []byte{0xff}, true)
	f.Fuzz(func(t *testing.T, ids, authChoice uint8, counter uint32, flags uint8, mask []byte, csec bool) {
		profile := ProfileAUTOSAR
		if csec {
			profile = ProfileCSEc
		}
		e := NewEngine(profile, fuzzFactory(), nil)
		u := KeyUpdate{UID: e.nvm.UID, KeyID: KeyID(ids >> 4), AuthID: KeyID(ids & 0xF),
			Counter: counter & MaxCounter, Flags: Flags(flags & 0x3F), NewKey: [16]byte{0xAA, ids}}
		switch authChoice % 4 {
		case 0: // the authorizing slot's real value (or the profile's empty value)
			if s := e.slot(u.AuthID); s != nil && s.Loaded {
				u.AuthKey = s.Key
			} else {
				u.AuthKey = profile.EmptyKey
			}
		case 1:
			u.AuthKey = [16]byte{0xBA, 0xD0}
		case 2:
			u.UID = WildcardUID
			if s := e.slot(u.AuthID); s != nil && s.Loaded {
				u.AuthKey = s.Key
			}
		}
		m, err := BuildMessages(u)
		if err != nil {
			t.Fatal(err)
		}
		raw := append(append(append([]byte{}, m.M1[:]...), m.M2[:]...), m.M3[:]...)
		for i, b := range mask {
			raw[i%len(raw)] ^= b
		}
		before := stateOf(e)
		m4, m5, erc := e.LoadKey([16]byte(raw[:16]), [32]byte(raw[16:48]), [16]byte(raw[48:]))
		if erc != NoError {
			if after := stateOf(e); after != before {
				t.Fatalf("%v changed the engine's state", erc)
			}
			if m4 != [32]byte{} || m5 != [16]byte{} {
				t.Fatalf("%v answered M4/M5", erc)
			}
			return
		}
		keyID := KeyID(raw[15] >> 4)
		s := e.slot(keyID)
		p := VerifyM4M5(s.Key, m4, m5)
		if !p.M4Valid || !p.M5Valid || p.Counter != s.Counter || p.KeyID != keyID || p.UID != e.nvm.UID {
			t.Fatalf("accepted update, but M4/M5 do not prove it: %+v", p)
		}
		if keyID != profile.RAMKey && s.Counter <= before.nvm.Slots[keyID].Counter {
			t.Fatalf("counter %d accepted over %d", s.Counter, before.nvm.Slots[keyID].Counter)
		}
	})
}

// blockingStore holds every Save until released, and can fail.
type blockingStore struct {
	entered chan struct{}
	release chan struct{}
	saved   []NVM
	fail    bool
}

func (s *blockingStore) Save(nvm *NVM) error {
	if s.entered != nil {
		s.entered <- struct{}{}
		<-s.release
	}
	if s.fail {
		return errors.New("flash write failed")
	}
	s.saved = append(s.saved, *nvm)
	return nil
}

func masterUpdate(t *testing.T, counter uint32) Messages {
	t.Helper()
	m, err := BuildMessages(KeyUpdate{UID: fuzzFactory().UID, KeyID: MasterECUKey, AuthID: MasterECUKey,
		AuthKey: [16]byte{0x39, 0xe6}, NewKey: [16]byte{0x99}, Counter: counter, Flags: 0x0D})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBusyWhileACommandRuns(t *testing.T) {
	store := &blockingStore{entered: make(chan struct{}), release: make(chan struct{})}
	e := NewEngine(ProfileAUTOSAR, fuzzFactory(), store)
	m := masterUpdate(t, 4)
	done := make(chan ERC)
	go func() {
		_, _, erc := e.LoadKey(m.M1, m.M2, m.M3)
		done <- erc
	}()
	<-store.entered // LOAD_KEY is writing the key store
	if e.Status()&StatusBusy == 0 {
		t.Error("SREG BUSY clear while LOAD_KEY runs")
	}
	if _, erc := e.Rnd(); erc != Busy {
		t.Errorf("CMD_RND during LOAD_KEY: %v, want ERC_BUSY", erc)
	}
	if _, _, erc := e.LoadKey(m.M1, m.M2, m.M3); erc != Busy {
		t.Errorf("second LOAD_KEY: %v, want ERC_BUSY", erc)
	}
	close(store.release)
	if erc := <-done; erc != NoError {
		t.Fatalf("LOAD_KEY: %v", erc)
	}
	if e.Status()&StatusBusy != 0 {
		t.Error("SREG BUSY still set")
	}
}

func TestLoadKeyCommitsBeforeAnswering(t *testing.T) {
	store := &blockingStore{}
	e := NewEngine(ProfileAUTOSAR, fuzzFactory(), store)
	m := masterUpdate(t, 4)
	if _, _, erc := e.LoadKey(m.M1, m.M2, m.M3); erc != NoError {
		t.Fatal(erc)
	}
	if len(store.saved) != 1 || store.saved[0] != e.NVM() {
		t.Fatalf("store saw %d states; the last one must be the engine's", len(store.saved))
	}
	if s := store.saved[0].Slots[MasterECUKey]; s.Key != [16]byte{0x99} || s.Counter != 4 {
		t.Fatalf("stored master slot %+v", s)
	}
}

func TestMemoryFailureChangesNothing(t *testing.T) {
	store := &blockingStore{fail: true}
	e := NewEngine(ProfileAUTOSAR, fuzzFactory(), store)
	before := stateOf(e)
	m := masterUpdate(t, 4)
	if _, _, erc := e.LoadKey(m.M1, m.M2, m.M3); erc != MemoryFailure {
		t.Fatalf("LOAD_KEY with a failing store: %v", erc)
	}
	if stateOf(e) != before {
		t.Fatal("failed LOAD_KEY changed the engine")
	}
	if erc := e.InitRNG(); erc != MemoryFailure {
		t.Fatalf("INIT_RNG with a failing store: %v", erc)
	}
	if stateOf(e) != before {
		t.Fatal("failed INIT_RNG changed the engine")
	}
}

// runUntilCanceled starts cmd, waits until the engine shows BUSY, cancels, and returns cmd's
// answer.
func runUntilCanceled(t *testing.T, e *Engine, cmd func() ERC) ERC {
	t.Helper()
	var started atomic.Bool
	done := make(chan ERC, 1)
	go func() {
		started.Store(true)
		done <- cmd()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for e.Status()&StatusBusy == 0 {
		if time.Now().After(deadline) {
			t.Fatal("command never showed BUSY")
		}
		runtime.Gosched()
	}
	if erc := e.Cancel(); erc != NoError {
		t.Fatalf("CANCEL: %v", erc)
	}
	return <-done
}

func TestCancel(t *testing.T) {
	if erc := NewEngine(ProfileAUTOSAR, NVM{}, nil).Cancel(); erc != NoError {
		t.Fatalf("CANCEL with nothing running: %v", erc)
	}
	// 256 MiB keeps the command running long enough to be caught, even under -race.
	big := make([]byte, 256<<20)

	nvm := fuzzFactory()
	nvm.Slots[Key1+1].Flags = KeyUsage
	e := NewEngine(ProfileAUTOSAR, nvm, nil)
	if erc := runUntilCanceled(t, e, func() ERC { _, erc := e.GenerateMAC(Key1+1, big); return erc }); erc != GeneralError {
		t.Errorf("canceled GENERATE_MAC: %v, want ERC_GENERAL_ERROR", erc)
	}
	if _, erc := e.GenerateMAC(Key1+1, []byte("after")); erc != NoError {
		t.Errorf("GENERATE_MAC after a cancel: %v", erc)
	}

	nvm.Slots[BootMACKey] = Slot{Key: [16]byte{0xb0}, Counter: 1, Loaded: true}
	nvm.Slots[BootMAC] = Slot{Key: [16]byte{0x01}, Loaded: true}
	e = NewEngine(ProfileAUTOSAR, nvm, nil)
	if erc := runUntilCanceled(t, e, func() ERC { return e.SecureBoot(big) }); erc != GeneralError {
		t.Errorf("canceled SECURE_BOOT: %v", erc)
	}
	if s := e.Status(); s&StatusBootFinished == 0 || s&StatusBootOK != 0 {
		t.Errorf("after a canceled SECURE_BOOT SREG = %08b, want BOOT_FINISHED without BOOT_OK", uint8(s))
	}
}

func TestDeviations(t *testing.T) {
	nvm := fuzzFactory()
	replay := masterUpdate(t, 3) // the slot already holds counter 3
	wild, _ := BuildMessages(KeyUpdate{UID: WildcardUID, KeyID: Key1 + 1, AuthID: Key1 + 1, AuthKey: [16]byte{0x42},
		NewKey: [16]byte{0x43}, Counter: 3, Flags: KeyUsage})
	e := NewEngine(ProfileAUTOSAR, nvm, nil)
	if _, _, erc := e.LoadKey(replay.M1, replay.M2, replay.M3); erc != KeyUpdateError {
		t.Fatalf("conforming engine, old counter: %v", erc)
	}
	if _, _, erc := e.LoadKey(wild.M1, wild.M2, wild.M3); erc != KeyUpdateError {
		t.Fatalf("conforming engine, wildcard on a WILDCARD key: %v", erc)
	}
	e.SetDeviations(Deviations{SkipCounterCheck: true, IgnoreWildcardFlag: true})
	if _, _, erc := e.LoadKey(replay.M1, replay.M2, replay.M3); erc != NoError {
		t.Fatalf("deviating engine, old counter: %v", erc)
	}
	if _, _, erc := e.LoadKey(wild.M1, wild.M2, wild.M3); erc != NoError {
		t.Fatalf("deviating engine, wildcard: %v", erc)
	}
}
