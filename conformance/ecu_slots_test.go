package conformance_test

import (
	"testing"

	"github.com/shekit/shekit/conformance/report"
	"github.com/shekit/shekit/simulator/she"
)

// ecuSlotUse is what an ecu test loads a KEY_n slot for; each use has its own slot, so that no
// test meets another's key, and none is the declared sacrificial slot (which the write-protection
// test may have write-protected for good, on this run or an earlier one).
type ecuSlotUse int

const (
	slotLoaded     ecuSlotUse = iota // "answers LoadKey with the M4 and M5 of the SHE model"
	slotStale                        // "refuses a counter that is not greater than the slot's"
	slotForeign                      // "refuses M1–M3 authorized by another key" and "for another ECU's UID"
	slotNoWildcard                   // the wildcard test's key whose WILDCARD flag is clear
	slotWildcard                     // the wildcard test's key whose WILDCARD flag is set
	slotMAC                          // "verifies and generates MACs with a loaded MAC key"
	slotTiming                       // "keeps P2 and P2*"
	slotRefused                      // "leaves the old key in use after a refused update"
	slotAuthorizer                   // the ECUReset test's key that authorizes the RAM key
	numSlotUses
)

// preferredSlots is the slot of each use while the sacrificial slot is none of them; spareSlot is
// the one KEY_n slot no use prefers, taken by the use whose slot is declared sacrificial.
var preferredSlots = [numSlotUses]she.KeyID{4, 5, 6, 7, 8, 0xA, 0xB, 0xC, 0xD}

const spareSlot she.KeyID = 9

// ecuTestSlots chooses the slot of each use given the declared sacrificial slot (0: none): the
// preferred slots, with the sacrificial one replaced by the spare.
func ecuTestSlots(sacrificial she.KeyID) [numSlotUses]she.KeyID {
	slots := preferredSlots
	for i, id := range slots {
		if id == sacrificial {
			slots[i] = spareSlot
		}
	}
	return slots
}

// slotFor is the slot the ecu tests use for use, avoiding the declared sacrificial slot.
func slotFor(use ecuSlotUse) she.KeyID {
	return ecuTestSlots(confKeys.ecu.sacrificial)[use]
}

// TestECUTestSlotsAvoidTheSacrificialSlot: whichever KEY_n slot is declared sacrificial (or none),
// the ecu tests' slots are KEY_n slots, one per use, and none is the sacrificial one.
func TestECUTestSlotsAvoidTheSacrificialSlot(t *testing.T) {
	for _, sacrificial := range []she.KeyID{0, 4, 5, 6, 7, 8, 9, 0xA, 0xB, 0xC, 0xD} {
		slots := ecuTestSlots(sacrificial)
		seen := map[she.KeyID]bool{}
		for use, id := range slots {
			if id < 4 || id > 0xD {
				t.Errorf("sacrificial %#x: use %d gets %#x, not a KEY_n slot", byte(sacrificial), use, byte(id))
			}
			if id == sacrificial {
				t.Errorf("sacrificial %#x: use %d gets the sacrificial slot", byte(sacrificial), use)
			}
			if seen[id] {
				t.Errorf("sacrificial %#x: slot %#x is used twice", byte(sacrificial), byte(id))
			}
			seen[id] = true
		}
	}
	// The slots of the simulated ECUs (slot 9 sacrificial) are the ones the teeth tables name.
	if got, want := ecuTestSlots(9), [numSlotUses]she.KeyID{4, 5, 6, 7, 8, 0xA, 0xB, 0xC, 0xD}; got != want {
		t.Errorf("slots with 9 sacrificial: %x, want %x", got, want)
	}
	if got := ecuTestSlots(0xC)[slotRefused]; got != 9 {
		t.Errorf("the refused-update test's slot with C sacrificial: %#x, want 9", byte(got))
	}
}

// TestCertificationWithSlotCSacrificial runs the ecu target's certification twice in a row
// against one simulated ECU that keeps its key store between runs (`simulator fleet --doip` in a
// process of its own; on CONF_CAN=mem every test has a fresh ECU), with KEY_9 (0xC) declared
// sacrificial: the second run meets that slot write-protected, and no other test may use it.
func TestCertificationWithSlotCSacrificial(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the ecu suite twice against a simulator process")
	}
	bin := buildSimulator(t, t.TempDir())
	addr := startDoIPFleet(t, bin, "--count", "1", "--initial-master-key", "00000000000000000000000000000000")
	declared := []string{"CONF_DOIP=" + addr, "CONF_TIMING_MARGIN=1s", "CONF_ECU_MASTER_KEY=00000000000000000000000000000000",
		"CONF_ECU_SACRIFICIAL_KEY_ID=C", "CONF_TARGETS=ecu", "CONF_SECURITY_KEY=5348452d6b69742064656d6f206b6579"}
	for run := 1; run <= 2; run++ {
		res, output, err := runSuites(t, declared...)
		if err != nil {
			t.Fatalf("certification with slot C sacrificial, run %d: %v\n%s", run, err, output)
		}
		if len(res.Tests) == 0 {
			t.Fatalf("run %d ran no test", run)
		}
		for _, tr := range res.Tests {
			if tr.Outcome != report.Pass && tr.Outcome != report.NotApplicable {
				t.Errorf("run %d: %s: %s %s", run, tr.Name, tr.Outcome, tr.Message)
			}
		}
	}
}
