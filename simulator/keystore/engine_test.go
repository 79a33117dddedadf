package keystore

import (
	"path/filepath"
	"testing"

	"github.com/shekit/shekit/simulator/she"
)

// TestEngineStateSurvivesRestart: a key loaded through CMD_LOAD_KEY is in the file when the
// command answers, and an engine started again from the file authorizes with it and refuses a
// replayed update; the RAM key and the boot state do not survive.
func TestEngineStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ecu.json")
	store, nvm, found, err := Open(path)
	if err != nil || found {
		t.Fatalf("open: found=%v err=%v", found, err)
	}
	nvm.UID = she.UID{0x00, 0x03, 0x00, 0x01, 14: 0x02}
	nvm.Slots[she.SecretKey] = she.Slot{Key: [16]byte{0x5e}, Loaded: true}
	e := she.NewEngine(she.ProfileAUTOSAR, nvm, store)

	master := [16]byte{0x39, 0xe6}
	first, _ := she.BuildMessages(she.KeyUpdate{UID: nvm.UID, KeyID: she.MasterECUKey, AuthID: she.MasterECUKey,
		NewKey: master, Counter: 1, Flags: 0x0D})
	if _, _, erc := e.LoadKey(first.M1, first.M2, first.M3); erc != she.NoError {
		t.Fatal(erc)
	}
	if erc := e.LoadPlainKey([16]byte{0xee}); erc != she.NoError {
		t.Fatal(erc)
	}
	if erc := e.InitRNG(); erc != she.NoError {
		t.Fatal(erc)
	}

	// Restart: a new engine on what the file holds.
	store, nvm, found, err = Open(path)
	if err != nil || !found {
		t.Fatalf("reopen: found=%v err=%v", found, err)
	}
	if nvm != e.NVM() {
		t.Fatal("file and engine disagree after LOAD_KEY and INIT_RNG")
	}
	e = she.NewEngine(she.ProfileAUTOSAR, nvm, store)
	if _, _, erc := e.LoadKey(first.M1, first.M2, first.M3); erc != she.KeyUpdateError {
		t.Fatalf("replayed M1-M3 after restart: %v, want ERC_KEY_UPDATE_ERROR", erc)
	}
	next, _ := she.BuildMessages(she.KeyUpdate{UID: nvm.UID, KeyID: she.Key1, AuthID: she.MasterECUKey,
		AuthKey: master, NewKey: [16]byte{0x41}, Counter: 1})
	if _, _, erc := e.LoadKey(next.M1, next.M2, next.M3); erc != she.NoError {
		t.Fatalf("KEY_1 authorized by the stored master key: %v", erc)
	}
	if erc := e.EncryptECB(she.RAMKey, make([]byte, 16), make([]byte, 16)); erc != she.KeyEmpty {
		t.Fatalf("RAM key after restart: %v, want ERC_KEY_EMPTY", erc)
	}
	if e.Status()&she.StatusRNDInit != 0 {
		t.Fatal("PRNG initialized after restart")
	}
}
