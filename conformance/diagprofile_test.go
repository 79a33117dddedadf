package conformance_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// diagProfile reads CONF_DIAG_PROFILE (ecu.diag_profile): a built-in profile's name or a profile
// file; empty is the default profile.
func (c *Config) diagProfile() (*profile.Profile, error) {
	name := c.DiagProfile
	if name == "" {
		name = profile.DefaultName
	}
	p, err := profile.Find(name)
	if err != nil {
		return nil, fmt.Errorf("CONF_DIAG_PROFILE (ecu.diag_profile): %w", err)
	}
	return p, nil
}

// diag is the ECUs' diagnostic profile.
func diag() *profile.Profile { return confKeys.diagProfile }

// defaultDiag reports whether the ECUs speak the kit's own diagnostic profile.
func defaultDiag() bool { return ecu.IsDefaultDiagProfile(diag()) }

// diagOp returns the profile's operation name, or ends the test as not-applicable saying why the
// test needs it.
func diagOp(name profile.OpName, why string) *profile.Operation {
	op := diag().Operations[name]
	if op == nil {
		notApplicable("the diagnostic profile %s (ecu.diag_profile) has no %s operation, which %s", diag().Name, name, why)
	}
	return op
}

// needSecurityAccess ends the test as not-applicable when the profile has no SecurityAccess.
func needSecurityAccess() {
	if diag().Security.Algorithm == profile.AlgorithmNone {
		notApplicable("the diagnostic profile %s (ecu.diag_profile) has no SecurityAccess (security.algorithm: none)", diag().Name)
	}
}

// probeOp is the operation the SecurityAccess and session tests probe the ECU with: GetID, which
// changes nothing. It must need SecurityAccess in a non-default session.
func probeOp() *profile.Operation {
	needSecurityAccess()
	op := diagOp(profile.GetID, "the SecurityAccess and session tests probe the ECU with (it changes nothing)")
	if !op.Security || op.Session == uds.DefaultSession {
		notApplicable("the diagnostic profile %s (ecu.diag_profile) runs GetID without SecurityAccess in a non-default session (operations.GetID.session, .security)", diag().Name)
	}
	return op
}

// otherSession is the non-default session of programming and extended that s is not.
func otherSession(s byte) byte {
	if s == uds.ProgrammingSession {
		return uds.ExtendedSession
	}
	return uds.ProgrammingSession
}

// refusalInSession is how an ECU refuses the first request of op in session s, where op does not
// run: NRC 0x7F (serviceNotSupportedInActiveSession) when no operation of s (or of the default
// session, which runs in every session) uses that service; else NRC 0x31 (requestOutOfRange:
// the service runs, that identifier not in the active session).
func refusalInSession(op *profile.Operation, s byte) uds.NRC {
	sid := op.Steps[0].SID()
	for _, o := range diag().Operations {
		if o.Session != s && o.Session != uds.DefaultSession {
			continue
		}
		if slices.ContainsFunc(o.Steps, func(st *profile.Step) bool { return st.SID() == sid }) {
			return uds.RequestOutOfRange
		}
	}
	return uds.ServiceNotSupportedInActiveSession
}

// securityKeyFor is the SecurityAccess key for seed by the profile's algorithm: AES-CMAC(security
// key, seed), or what the profile's external command prints.
func securityKeyFor(seed []byte) []byte {
	if diag().Security.Algorithm != profile.AlgorithmExternal {
		k := independentCMAC(confKeys.securityKey[:], seed)
		return k[:]
	}
	key, closeFn, err := diag().SeedKey()
	if err != nil {
		harnessFail("the diagnostic profile's seed/key command: %v", err)
	}
	defer closeFn()
	k, err := key(context.Background(), seed)
	if err != nil {
		harnessFail("the diagnostic profile's seed/key command: %v", err)
	}
	return k
}

// zeroValues gives every field of layout l zero bytes of its size.
func zeroValues(l profile.Layout) profile.Values {
	v := profile.Values{}
	for _, it := range l {
		if it.Kind == profile.FieldItem {
			v[it.Field] = make([]byte, l.FieldSize(it.Field))
		}
	}
	return v
}

// diagLoadKeyRequest is the first request of the profile's LoadKey with zero fields, cut or padded
// with zeros to n bytes (n 0: as it is).
func diagLoadKeyRequest(n int) []byte {
	st := diag().Operations[profile.LoadKey].Steps[0]
	req, err := st.EncodeRequest(zeroValues(st.Request))
	if err != nil {
		harnessFail("the diagnostic profile's LoadKey request: %v", err)
	}
	if n == 0 {
		return req
	}
	return append(req, make([]byte, max(n-len(req), 0))...)[:n]
}

// sreg reads the ECU's status register: DID 0xFD01 under the default profile, else GetID's SREG.
func (u *ecuUnderTest) sreg(ctx context.Context) (she.Status, error) {
	if defaultDiag() {
		return u.Status(ctx)
	}
	diagOp(profile.GetID, "brings back SREG")
	id, err := u.GetID(ctx, randomKey())
	if err == nil && id.ERC != she.NoError {
		err = fmt.Errorf("GetID: %v", id.ERC)
	}
	return id.SREG, err
}

// identifiedStep is the first step, in the order of profile.OpNames, that names a routine or a
// data identifier the tester writes (default profile: LoadKey's routine 0xFD10).
func identifiedStep() (*profile.Operation, *profile.Step) {
	for _, name := range profile.OpNames {
		op := diag().Operations[name]
		if op == nil {
			continue
		}
		for _, st := range op.Steps {
			if st.Service == profile.RoutineStart || st.Service == profile.WriteDID {
				return op, st
			}
		}
	}
	return nil, nil
}

// unusedIDRequest is a request header of service svc (routine-start, write-did or read-did) for
// an identifier no step of the profile uses: near when it is free, else near with its low nibble
// set (default profile: 0xFD10 gives 0xFD1F) or the next one free after that.
func unusedIDRequest(svc profile.Service, near uint16) []byte {
	used := map[uint16]bool{}
	for _, op := range diag().Operations {
		for _, st := range op.Steps {
			if st.SID() == sidOf(svc) {
				used[st.ID] = true
			}
		}
	}
	id := near
	if used[id] {
		id |= 0x000F
	}
	for used[id] {
		id++
	}
	hi, lo := byte(id>>8), byte(id)
	switch svc {
	case profile.RoutineStart:
		return []byte{uds.RoutineControl, 0x01, hi, lo}
	case profile.WriteDID:
		return []byte{uds.WriteDataByIdentifier, hi, lo}
	}
	return []byte{uds.ReadDataByIdentifier, hi, lo}
}

// sidOf is the service identifier of a step's service.
func sidOf(svc profile.Service) byte { return (&profile.Step{Service: svc}).SID() }
