package kmswire

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/shekit/shekit/simulator/she"
)

// SyncSREG is the status register a master key's KeySyncValue is computed for (POST
// supplierKeySyncValue, EcuMasterKey): an ECU that booted securely and finished its boot,
// SECURE_BOOT | BOOT_INIT | BOOT_FINISHED | BOOT_OK, 0x1E.
const SyncSREG = she.StatusSecureBoot | she.StatusBootInit | she.StatusBootFinished | she.StatusBootOK

// GetIDAnswer is an ECU's CMD_GET_ID answer to a sync's Challenge, as a station reports it with a
// master key's sync (PUT supplierKeySyncValue, ResultStatus Success) in the ResultMessage:
//
//	GET_ID Challenge=<32 hex> SREG=<2 hex> MAC=<32 hex>
//
// so that the KMS can check the MAC over the SREG the ECU actually returned, which a station
// cannot without the key. Any other ResultMessage is free text.
type GetIDAnswer struct {
	Challenge [16]byte
	SREG      she.Status
	MAC       [16]byte
}

const getIDPrefix = "GET_ID "

// String is the answer as a ResultMessage.
func (a GetIDAnswer) String() string {
	return fmt.Sprintf("%sChallenge=%x SREG=%02x MAC=%x", getIDPrefix, a.Challenge, byte(a.SREG), a.MAC)
}

// ParseGetIDAnswer reads a ResultMessage written by GetIDAnswer.String (hex in either case); ok is
// false for anything else.
func ParseGetIDAnswer(msg string) (a GetIDAnswer, ok bool) {
	rest, found := strings.CutPrefix(msg, getIDPrefix)
	if !found {
		return a, false
	}
	fields := strings.Fields(rest)
	if len(fields) != 3 {
		return a, false
	}
	var sreg [1]byte
	for i, f := range []struct {
		name string
		dst  []byte
	}{{"Challenge", a.Challenge[:]}, {"SREG", sreg[:]}, {"MAC", a.MAC[:]}} {
		v, found := strings.CutPrefix(fields[i], f.name+"=")
		b, err := hex.DecodeString(v)
		if !found || err != nil || len(b) != len(f.dst) {
			return GetIDAnswer{}, false
		}
		copy(f.dst, b)
	}
	a.SREG = she.Status(sreg[0])
	return a, true
}
