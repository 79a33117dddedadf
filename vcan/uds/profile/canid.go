package profile

// CANIDs is what a tester puts on the bus to reach an ECU and what it listens for.
type CANIDs struct {
	Request, Response uint32 // physical request and response IDs
	Functional        uint32 // functional request ID, when HasFunctional
	HasFunctional     bool
	Extended          bool // 29-bit IDs
	// The bytes that lead every frame's data (extended and mixed addressing; nil otherwise):
	// RequestPrefix in the tester's physical requests, ResponsePrefix in the ECU's answers,
	// FunctionalPrefix in functional requests.
	RequestPrefix, ResponsePrefix, FunctionalPrefix []byte
}

// 29-bit ISO 15765-2 fixed formats: priority 6, then the PF byte.
const (
	normalFixedPhysical   = 0x18DA0000
	normalFixedFunctional = 0x18DB0000
	mixedPhysical         = 0x18CE0000
	mixedFunctional       = 0x18CD0000
)

func fixedID(base uint32, target, source byte) uint32 {
	return base | uint32(target)<<8 | uint32(source)
}

// IDs computes the CAN IDs and address bytes of the addressing.
func (a Addressing) IDs() CANIDs {
	ids := CANIDs{Extended: a.IDBits == 29, HasFunctional: a.HasFunctional}
	switch {
	case a.Mode == NormalFixed:
		ids.Request = fixedID(normalFixedPhysical, a.ECUAddress, a.TesterAddress)
		ids.Response = fixedID(normalFixedPhysical, a.TesterAddress, a.ECUAddress)
		ids.Functional = fixedID(normalFixedFunctional, a.FunctionalAddress, a.TesterAddress)
	case a.Mode == Mixed && a.IDBits == 29:
		ids.Request = fixedID(mixedPhysical, a.ECUAddress, a.TesterAddress)
		ids.Response = fixedID(mixedPhysical, a.TesterAddress, a.ECUAddress)
		ids.Functional = fixedID(mixedFunctional, a.FunctionalAddress, a.TesterAddress)
	default:
		ids.Request, ids.Response, ids.Functional = a.PhysicalRequest, a.PhysicalResponse, a.FunctionalRequest
	}
	switch a.Mode {
	case Extended:
		ids.RequestPrefix = []byte{a.ECUAddress}
		ids.ResponsePrefix = []byte{a.TesterAddress}
		ids.FunctionalPrefix = []byte{a.FunctionalAddress}
	case Mixed:
		ae := []byte{a.AddressExtension}
		ids.RequestPrefix, ids.ResponsePrefix, ids.FunctionalPrefix = ae, ae, ae
	}
	if !ids.HasFunctional {
		ids.Functional, ids.FunctionalPrefix = 0, nil
	}
	return ids
}
