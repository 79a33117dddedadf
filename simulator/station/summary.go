package station

import "time"

// Outcomes of a key and of its sync.
const (
	Injected   = "injected"   // the ECU stored the key, its M4/M5 matched, the KMS took the report
	Refused    = "refused"    // the KMS gave no messages (refusal or unreachable)
	Failed     = "failed"     // the ECU did not store the key, or its proof differed; reported as such
	Unreported = "unreported" // the ECU's part succeeded but the report did not reach the KMS
	NoAnswer   = "no answer"  // the ECU did not answer, not even late: nothing is reported
	Verified   = "verified"   // key sync: the ECU's key gives the KMS's KeySyncValue
	Mismatch   = "mismatch"   // key sync: it does not (or the ECU could not tell); reported as such
)

// Summary is the outcome of a station run, written as JSON at its end.
type Summary struct {
	Started time.Time   `json:"started"`
	Seconds float64     `json:"seconds"`
	Totals  Totals      `json:"totals"`
	ECUs    []ECUResult `json:"ecus"`
}

// Totals counts ECUs and keys by outcome.
type Totals struct {
	ECUs       int            `json:"ecus"`
	ECUsOK     int            `json:"ecus_ok"`
	ECUsFailed int            `json:"ecus_failed"`
	Keys       map[string]int `json:"keys"` // by outcome
	Syncs      map[string]int `json:"syncs,omitempty"`
}

// ECUResult is one ECU's outcome.
type ECUResult struct {
	Name    string  `json:"name"`
	UID     string  `json:"uid,omitempty"`
	EcuID   string  `json:"ecu_id,omitempty"`
	OK      bool    `json:"ok"`
	Error   string  `json:"error,omitempty"` // why no key was tried
	Seconds float64 `json:"seconds"`
	// LateAnswers counts answers that came after their request's P2 (and were used or
	// discarded); DiscardedAnswers those that answered no pending request.
	LateAnswers      int         `json:"late_answers,omitempty"`
	DiscardedAnswers int         `json:"discarded_answers,omitempty"`
	Keys             []KeyResult `json:"keys,omitempty"`
}

// KeyResult is one key's outcome on one ECU.
type KeyResult struct {
	Type     string      `json:"type"`
	KeyID    string      `json:"key_id"`
	Outcome  string      `json:"outcome"`
	Message  string      `json:"message,omitempty"`
	Attempts int         `json:"attempts"`
	M1       string      `json:"m1,omitempty"` // of the last attempt: names the update (UID, slot, authorizing slot)
	Timings  Timings     `json:"ms"`
	Sync     *SyncResult `json:"sync,omitempty"`
}

// Timings are the milliseconds a key spent with the KMS (POST, with the wait for a free
// request), with the ECU (LoadKey, without the wait for the bus) and reporting (PUT), summed
// over its attempts.
type Timings struct {
	KMS    float64 `json:"kms"`
	ECU    float64 `json:"ecu"`
	Report float64 `json:"report"`
}

// SyncResult is the outcome of one key's sync.
type SyncResult struct {
	Outcome string  `json:"outcome"`
	Message string  `json:"message,omitempty"`
	Seconds float64 `json:"seconds"`
}

// count fills in the totals.
func (s *Summary) count() {
	s.Totals = Totals{ECUs: len(s.ECUs), Keys: map[string]int{}}
	for _, e := range s.ECUs {
		if e.OK {
			s.Totals.ECUsOK++
		} else {
			s.Totals.ECUsFailed++
		}
		for _, k := range e.Keys {
			s.Totals.Keys[k.Outcome]++
			if k.Sync != nil {
				if s.Totals.Syncs == nil {
					s.Totals.Syncs = map[string]int{}
				}
				s.Totals.Syncs[k.Sync.Outcome]++
			}
		}
	}
}

// OK reports whether every ECU got every key (and, with sync, agreed on each).
func (s *Summary) OK() bool { return s.Totals.ECUsFailed == 0 }
