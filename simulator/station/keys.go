package station

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	kms "github.com/shekit/shekit/openapi/kmswire"
	"github.com/shekit/shekit/simulator/she"
)

// Key is one key the station provisions: its ProvisioningType in the KMS API and its slot.
type Key struct {
	Type  kms.ProvisioningType
	KeyID she.KeyID
}

// APIKeyID is the KeyID as the KMS API writes it: one uppercase hex digit.
func (k Key) APIKeyID() string { return strings.ToUpper(strconv.FormatUint(uint64(k.KeyID), 16)) }

func (k Key) String() string { return fmt.Sprintf("%s/%s", k.Type, k.APIKeyID()) }

// rank orders the types as they must be provisioned: the master key first (it authorizes the
// others), then the supplier key, then the SecOC keys.
func (k Key) rank() int {
	switch k.Type {
	case kms.EcuMasterKey:
		return 0
	case kms.SupplierSymmKey:
		return 1
	}
	return 2
}

// ParseKeys reads a --types list: comma-separated master, supplier and secoc:ID or secoc:FROM-TO
// (hex KeyIDs 4..C, e.g. secoc:4-C for all nine). The keys come back in provisioning order: the
// master key, the supplier key, then the SecOC keys by KeyID; each at most once.
func ParseKeys(s string) ([]Key, error) {
	var keys []Key
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "master":
			keys = append(keys, Key{kms.EcuMasterKey, she.MasterECUKey})
		case part == "supplier":
			keys = append(keys, Key{kms.SupplierSymmKey, she.Key10})
		case strings.HasPrefix(part, "secoc:"):
			from, to, ok := strings.Cut(strings.TrimPrefix(part, "secoc:"), "-")
			if !ok {
				to = from
			}
			lo, err1 := strconv.ParseUint(from, 16, 4)
			hi, err2 := strconv.ParseUint(to, 16, 4)
			if err1 != nil || err2 != nil || lo < uint64(she.Key1) || hi > 0xC || lo > hi {
				return nil, fmt.Errorf("station: %q: SecOC KeyIDs are hex 4..C, as secoc:5 or secoc:4-C", part)
			}
			for id := lo; id <= hi; id++ {
				keys = append(keys, Key{kms.SecOCKey, she.KeyID(id)})
			}
		default:
			return nil, fmt.Errorf("station: %q is not master, supplier or secoc:FROM-TO", part)
		}
	}
	slices.SortStableFunc(keys, func(a, b Key) int {
		if a.rank() != b.rank() {
			return a.rank() - b.rank()
		}
		return int(a.KeyID) - int(b.KeyID)
	})
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			return nil, fmt.Errorf("station: %s listed twice", keys[i])
		}
	}
	return keys, nil
}
