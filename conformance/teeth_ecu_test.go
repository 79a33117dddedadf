package conformance_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/conformance/report"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
)

// uncaught is a row of a fault that the suite does not catch yet: the suite passes against it.
const uncaught toothKind = "uncaught"

// ecuTooth is a row of the ECU teeth table: an ECU variant (a proxy in front of a simulated ECU,
// see ecuVariant) or a simulator fault flag, the ecu suite run against it, and what must happen.
type ecuTooth struct {
	name    string
	kind    toothKind
	variant *ecuVariant // the proxy every simulated ECU of the run sits behind; nil: none
	env     []string    // more CONF_* settings (a fault flag)
	caught  []string    // fault: the tests (parts of their names) that must fail
	// legal and uncaught: shows the behaviour on a client of the variant (nil when seen), so that
	// a variant that does nothing cannot pass as a legal variant or as a fault the suite misses
	shows func(ctx context.Context, c ecuProbe) error
}

// The ecu suite's tests the rows name (parts of their names).
const (
	eUnlock     = "ECU: SHE through UDS / enters the extended session and unlocks SecurityAccess"
	eSREG       = "ECU: SHE through UDS / reports a 15-byte UID, and SREG"
	eLoadKey    = "ECU: SHE through UDS / answers LoadKey with the M4 and M5 of the SHE model"
	eCounter    = "ECU: SHE through UDS / refuses a counter that is not greater"
	eWildcard   = "ECU: SHE through UDS / takes the wildcard UID"
	eWriteProt  = "ECU: SHE through UDS / refuses updates of a write-protected key"
	eGetID      = "ECU: SHE through UDS / answers GET_ID with CMAC"
	eMAC        = "ECU: SHE through UDS / verifies and generates MACs"
	eNRCs       = "ECU: SHE through UDS / answers each negative response code"
	eRoutineNRC = "ECU: SHE through UDS / answers a routine with a wrong-length record"
	eTiming     = "ECU: SHE through UDS / keeps P2 and P2*"
	eWrongKey   = "ECU: SHE through UDS / answers a wrong SecurityAccess key with NRC 0x35"
	eAttempts   = "ECU: SHE through UDS / answers NRC 0x36 on the declared number of wrong keys"
	eSessions   = "ECU: SHE through UDS / refuses routines in the default and programming sessions"
	eRefused    = "ECU: SHE through UDS / leaves the old key in use after a refused update"
	eReset      = "ECU: SHE through UDS / answers ECUReset hardReset"
	eScenarios  = "ECU: SHE through UDS / replays the engine-rule scenarios of she-engine-rules.json over UDS"
	eKeyIDByte  = "ECU: SHE through UDS / answers VerifyMAC and GenerateMAC with a KeyID byte above 0x0F with NRC 0x31"
	eCheckOrder = "ECU: SHE through UDS / checks SecurityAccess before a routine's record length"
	eSuppress   = "ECU: SHE through UDS / honours the suppress-positive-response bit"
	eS3         = "ECU: SHE through UDS / returns to the default session, locked, after S3"
)

// passThrough is the legal row of the proxy alone, which changes nothing to show.
const passThrough = "the simulator behind a proxy that passes everything on"

// ecuTeeth is the table: a new rule of the diagnostic profile adds a row.
var ecuTeeth = []ecuTooth{
	// Legal variants: the profile allows them, the simulator does not show them.
	{name: passThrough, kind: legal, variant: &ecuVariant{}},
	{name: "ISO-TP padding 0x55", kind: legal, variant: &ecuVariant{opts: []isotp.Option{isotp.WithPadding(0x55)}},
		shows: showsPadding(0x55)},
	{name: "no ISO-TP padding (short frames)", kind: legal, variant: &ecuVariant{opts: []isotp.Option{isotp.WithoutPadding()}},
		shows: showsNoPadding},
	{name: "flow control BS=1, STmin=5ms", kind: legal,
		variant: &ecuVariant{opts: []isotp.Option{isotp.WithFlowControl(1, 5*time.Millisecond)}}, shows: showsFlowControl},
	{name: "re-locks when the same session is requested again", kind: legal, variant: relockSameSession, shows: showsRelock},
	{name: "4-byte seeds", kind: legal, variant: withSeeds(seedRules{seedLen: 4}), env: []string{"CONF_ECU_SEED_LENGTH=4"},
		shows: showsSeedLength(4)},
	{name: "32-byte seeds", kind: legal, variant: withSeeds(seedRules{seedLen: 32}), env: []string{"CONF_ECU_SEED_LENGTH=32"},
		shows: showsSeedLength(32)},
	{name: "1-byte seeds", kind: legal, variant: withSeeds(seedRules{seedLen: 1}), env: []string{"CONF_ECU_SEED_LENGTH=1"},
		shows: showsSeedLength(1)},
	{name: "response pending before every routine answer", kind: legal, variant: &ecuVariant{pending: true}, shows: showsPending},
	{name: "every answer 40 ms late (P2 = 50 ms)", kind: legal, variant: &ecuVariant{delay: 40 * time.Millisecond},
		shows: showsLate(40 * time.Millisecond)},
	{name: "announces P2 = 150 ms, P2* = 2 s", kind: legal, variant: announcesTiming(150*time.Millisecond, 2*time.Second),
		shows: showsTiming(150*time.Millisecond, 2*time.Second)},

	// Faults of SecurityAccess.
	{name: "SecurityAccess takes any key", kind: faulty, variant: withSeeds(seedRules{anyKey: true}),
		caught: []string{eWrongKey, eAttempts}},
	{name: "a wrong key does not use up the seed", kind: faulty, variant: withSeeds(seedRules{keepSeed: true}),
		caught: []string{eWrongKey}},
	{name: "no NRC 0x36 after the last attempt", kind: faulty,
		variant: replaceNRC(uds.SecurityAccess, uds.ExceededNumberOfAttempts, uds.InvalidKey), caught: []string{eAttempts}},
	{name: "ECUReset ends the delay after too many attempts", kind: faulty, variant: withSeeds(seedRules{forgetLockout: true}),
		caught: []string{eAttempts}},
	{name: "a seed request while unlocked answers a fresh seed", kind: faulty, variant: withSeeds(seedRules{seedWhileUnlocked: true}),
		caught: []string{eWrongKey}},

	{name: "a right key does not reset the count of wrong keys", kind: faulty,
		variant: withSeeds(seedRules{countAllWrongKeys: true}), shows: showsWrongKeysCounted, caught: []string{eWrongKey}},
	{name: "the all-zero seed while unlocked longer than the seeds", kind: faulty,
		variant: withSeeds(seedRules{seedLen: 4, unlockedSeedLen: 16}), env: []string{"CONF_ECU_SEED_LENGTH=4"}, caught: []string{eWrongKey}},
	{name: "ECUReset clears the count of wrong keys", kind: faulty, variant: resetForgivesAttempts, shows: showsAttemptsForgiven,
		caught: []string{eAttempts}},

	// Faults of sessions.
	{name: "RoutineControl in the default session", kind: faulty, variant: routinesInSession(uds.DefaultSession),
		caught: []string{eSessions}},
	{name: "RoutineControl in the programming session", kind: faulty, variant: routinesInSession(uds.ProgrammingSession),
		caught: []string{eSessions}},
	{name: "no re-lock on a change to another session", kind: faulty, variant: unlockSticks, caught: []string{eSessions}},
	{name: "no return to the default session after S3", kind: faulty, variant: s3Ignored, shows: showsS3Ignored,
		caught: []string{eS3}},

	// Faults of ECUReset.
	{name: "ECUReset leaves SecurityAccess unlocked", kind: faulty, variant: resetKeepsUnlock, caught: []string{eReset}},
	{name: "ECUReset leaves the extended session", kind: faulty, variant: resetKeepsSession, caught: []string{eReset}},
	{name: "ECUReset keeps the RAM key", kind: faulty, variant: resetKeepsRAMKey, caught: []string{eReset}},
	{name: "softReset taken as a hardReset", kind: faulty, variant: softResetTaken, caught: []string{eReset}},

	// Faults of the SHE behind the routines.
	{name: "a refused update still changes the slot", kind: faulty, variant: refusedUpdateWrites, caught: []string{eRefused, eCounter}},
	{name: "write protection ignored", kind: faulty, variant: writeProtectionDropped, caught: []string{eWriteProt}},
	{name: "GET_ID MAC wrong", kind: faulty, variant: getIDMACWrong, caught: []string{eGetID}},
	{name: "M4 of another slot (M5 consistent)", kind: faulty, variant: m4OfAnotherSlot, caught: []string{eLoadKey}},
	{name: "MAC commands take a key without KEY_USAGE", kind: faulty, variant: macIgnoresKeyUsage, caught: []string{eScenarios}},
	{name: "VerifyMAC answers verified for any MAC", kind: faulty, variant: verifyAlwaysTrue, caught: []string{eMAC, eRefused}},

	// Faults of the answers' form.
	{name: "NRC 0x22 instead of 0x33 for a routine while locked", kind: faulty,
		variant: replaceNRC(uds.RoutineControl, uds.SecurityAccessDenied, uds.ConditionsNotCorrect), caught: []string{eSessions, eNRCs}},
	{name: "NRC 0x13 instead of 0x31 for an unknown routine", kind: faulty,
		variant: replaceNRC(uds.RoutineControl, uds.RequestOutOfRange, uds.IncorrectMessageLengthOrInvalidFormat),
		caught:  []string{eRoutineNRC}},
	{name: "KeyID byte above 0x0F taken (VerifyMAC, GenerateMAC)", kind: faulty, variant: keyIDMasked, caught: []string{eKeyIDByte}},
	{name: "a positive answer with another routine's RID", kind: faulty, variant: ridNotEchoed, caught: []string{eMAC}},
	{name: "fields after an ERC other than ERC_NO_ERROR", kind: faulty, variant: ercWithFields, caught: []string{eCounter, eRefused}},
	{name: "LoadKey answered after P2 with no response pending", kind: faulty, variant: lateLoadKey, caught: []string{eTiming}},
	{name: "record length checked before SecurityAccess (0x13, not 0x33, while locked)", kind: faulty,
		variant: lengthBeforeSecurity, shows: showsLengthFirst, caught: []string{eCheckOrder}},
	{name: "a positive answer despite the suppress bit", kind: faulty, variant: suppressIgnored, shows: showsSuppressIgnored,
		caught: []string{eSuppress}},
	{name: "a positive answer despite the suppress bit, after P2", kind: faulty, variant: suppressIgnoredLate,
		caught: []string{eSuppress}},

	// The simulator's fault flags.
	{name: "flag wrong-proof", kind: faulty, env: []string{"CONF_SIM_FAULT=wrong-proof"}, caught: []string{eLoadKey}},
	{name: "flag no-counter-check", kind: faulty, env: []string{"CONF_SIM_FAULT=no-counter-check"}, caught: []string{eCounter}},
	{name: "flag accept-wildcard", kind: faulty, env: []string{"CONF_SIM_FAULT=accept-wildcard"}, caught: []string{eWildcard}},
	{name: "flag nvm-failure", kind: faulty, env: []string{"CONF_SIM_FAULT=nvm-failure"}, caught: []string{eLoadKey}},
	{name: "flag slow-nvm", kind: faulty, env: []string{"CONF_SIM_FAULT=slow-nvm"}, caught: []string{eTiming}},
	{name: "flag silent", kind: faulty, env: []string{"CONF_SIM_FAULT=silent"}, caught: []string{eUnlock}},
	{name: "flag boot-failure", kind: faulty, env: []string{"CONF_SIM_FAULT=boot-failure"}, caught: []string{eSREG}},

	// Faults no test catches yet are rows of kind uncaught: the suite passes against them. When
	// a test starts to catch one, its row fails here: make it a fault row naming that test.
}

// TestECUTeeth runs the ecu suite against each row's ECU: a fault must fail it on every test the
// row names (failed, not errored; only those tests run), a legal variant must pass it with no
// test skipped, and so must a fault not caught yet (so that the table says when a new test
// catches it).
func TestECUTeeth(t *testing.T) {
	skipUnderRace(t)
	wholeSuite := make(chan struct{}, 1) // one whole-suite run at a time: each is many ECUs' worth of timing
	for _, row := range ecuTeeth {
		t.Run(string(row.kind)+"/"+row.name, func(t *testing.T) {
			t.Parallel()
			if row.kind != faulty {
				wholeSuite <- struct{}{}
				defer func() { <-wholeSuite }()
			}
			env := append([]string{"CONF_SUITES=ecu", ecuVariantEnv + "="}, row.env...)
			if row.variant != nil {
				env = append(env, ecuVariantEnv+"="+row.name)
			}
			focus := ""
			if row.kind == faulty {
				focus = ecuFocus(row.caught)
			}
			res, out, runErr := runFocused(t, focus, env...)
			outcome := map[string]report.Outcome{}
			var notPassed []string
			for _, tr := range res.Tests {
				if tr.Suite != "ecu" {
					continue
				}
				outcome[tr.Name] = tr.Outcome
				if tr.Outcome != report.Pass {
					notPassed = append(notPassed, fmt.Sprintf("%s: %s %s", tr.Outcome, tr.Name, firstLine(tr.Message)))
				}
			}
			if len(outcome) == 0 {
				t.Fatalf("no ecu test ran:\n%s", out)
			}
			switch row.kind {
			case legal:
				if runErr != nil || len(notPassed) > 0 {
					t.Fatalf("a legal variant did not pass:\n%s", strings.Join(notPassed, "\n"))
				}
			case uncaught:
				if runErr != nil || len(notPassed) > 0 {
					t.Fatalf("a fault the table lists as not caught yet is now caught: make its row a fault row naming the test:\n%s",
						strings.Join(notPassed, "\n"))
				}
			case faulty:
				var failed []string
				for name, o := range outcome {
					if o == report.Fail {
						failed = append(failed, strings.TrimPrefix(name, "ECU: SHE through UDS / "))
					}
				}
				t.Logf("row %q failed: %q", row.name, failed)
				if runErr == nil {
					t.Fatalf("the ecu suite passed against the fault")
				}
				for _, want := range row.caught {
					if !caughtBy(outcome, want) {
						t.Errorf("not caught by %q; not passed:\n%s", want, strings.Join(notPassed, "\n"))
					}
				}
			}
		})
	}
}

// ecuFocus is the Ginkgo focus that runs only the tests named (parts of their names after the
// suite's title): a fault row needs no other test to run.
func ecuFocus(tests []string) string {
	var parts []string
	for _, name := range tests {
		_, it, _ := strings.Cut(name, " / ")
		parts = append(parts, regexp.QuoteMeta(it))
	}
	return strings.Join(parts, "|")
}

// TestECUTeethTableSize: the table keeps at least 15 faulty ECUs, each naming a test that must
// catch it, and 6 legal variants; every variant is found by its name in a child run.
func TestECUTeethTableSize(t *testing.T) {
	count := map[toothKind]int{}
	names := map[string]bool{}
	for _, r := range ecuTeeth {
		count[r.kind]++
		if names[r.name] {
			t.Errorf("two rows are called %q", r.name)
		}
		names[r.name] = true
		if r.kind == faulty && len(r.caught) == 0 {
			t.Errorf("fault %q names no test that must catch it", r.name)
		}
		if r.kind != faulty && r.shows == nil && r.name != passThrough {
			t.Errorf("%s row %q does not show its behaviour", r.kind, r.name)
		}
		if _, ok := ecuVariantNamed(r.name); ok != (r.variant != nil) {
			t.Errorf("row %q: its variant is not found by name", r.name)
		}
	}
	if count[faulty] < 15 || count[legal] < 6 {
		t.Errorf("%d faults, %d legal variants; want at least 15 and 6", count[faulty], count[legal])
	}
}
