package ecu

import (
	"errors"
	"slices"
	"time"

	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// stepRef is one step of an operation of the diagnostic profile.
type stepRef struct {
	op  *profile.Operation
	idx int
}

// diagIndex is what the ECU looks up to serve its diagnostic profile: the steps by service
// identifier, and for each operation the step whose request brings its last input (where the
// SHE command runs).
type diagIndex struct {
	bySID map[byte][]stepRef
	runAt map[*profile.Operation]int
}

func newDiagIndex(p *profile.Profile) diagIndex {
	ix := diagIndex{bySID: map[byte][]stepRef{}, runAt: map[*profile.Operation]int{}}
	for _, name := range profile.OpNames {
		op := p.Operations[name]
		if op == nil {
			continue
		}
		for i, st := range op.Steps {
			ix.bySID[st.SID()] = append(ix.bySID[st.SID()], stepRef{op, i})
			if slices.ContainsFunc(st.Request, isField) {
				ix.runAt[op] = i
			}
		}
	}
	return ix
}

func isField(it profile.Item) bool { return it.Kind == profile.FieldItem }

func hasField(l profile.Layout, name string) bool {
	return slices.ContainsFunc(l, func(it profile.Item) bool { return isField(it) && it.Field == name })
}

// diagRun is an operation in progress: the next step expected, the values the tester sent and
// what the SHE command brought back.
type diagRun struct {
	op   *profile.Operation
	next int
	in   profile.Values
	out  profile.Values // nil until the command ran
}

// serves reports whether the profile has steps of service sid.
func (e *ECU) serves(sid byte) bool { return len(e.diag.bySID[sid]) > 0 }

// opInSession reports whether op may run in the active session: an operation of the default
// session runs in every session, any other only in its own.
func (e *ECU) opInSession(op *profile.Operation) bool {
	return op.Session == uds.DefaultSession || op.Session == e.session
}

// minRequest is the shortest request of a service before its layout: the header up to the
// identifier that names the step.
func minRequest(sid byte) int {
	switch sid {
	case uds.RoutineControl:
		return 4
	case uds.ReadDataByIdentifier, sidWriteDID, sidRequestDownload:
		return 3
	case sidTransferData:
		return 2
	}
	return 1
}

// UDS services a diagnostic profile may use beyond those of package uds.
const (
	sidWriteDID            = 0x2E
	sidRequestDownload     = 0x34
	sidTransferData        = 0x36
	sidRequestTransferExit = 0x37
)

// diagRequest answers a request to a service of the diagnostic profile, checking in ISO
// 14229-1's order: the service in the active session (0x7F), too short (0x13), sub-function
// (0x12), the identifier or header (0x31), security (0x33), the layout's length (0x13) and content
// (0x31), then the order of the operation's steps (0x24).
func (e *ECU) diagRequest(req []byte, pending func()) []byte {
	sid := req[0]
	refs := e.diag.bySID[sid]
	if !slices.ContainsFunc(refs, func(r stepRef) bool { return e.opInSession(r.op) }) {
		return uds.Negative(sid, uds.ServiceNotSupportedInActiveSession)
	}
	if len(req) < minRequest(sid) {
		return uds.Negative(sid, uds.IncorrectMessageLengthOrInvalidFormat)
	}
	if sid == uds.RoutineControl {
		sub := req[1] &^ uds.SuppressPositiveResponse
		if !slices.ContainsFunc(refs, func(r stepRef) bool { return routineSub(r) == sub }) {
			return uds.Negative(sid, uds.SubFunctionNotSupported)
		}
		req = append([]byte{sid, sub}, req[2:]...)
	}
	ref, ok := e.findStep(req)
	switch {
	case !ok && (sid == sidTransferData || sid == sidRequestTransferExit):
		return uds.Negative(sid, uds.RequestSequenceError)
	case !ok || !e.opInSession(ref.op):
		return uds.Negative(sid, uds.RequestOutOfRange)
	case ref.op.Security && !e.unlocked && !e.cfg.NoSecurity:
		return uds.Negative(sid, uds.SecurityAccessDenied)
	}
	st := ref.op.Steps[ref.idx]
	in, err := st.DecodeRequest(req)
	if errors.Is(err, profile.ErrLength) {
		return uds.Negative(sid, uds.IncorrectMessageLengthOrInvalidFormat)
	}
	if err != nil || len(in["KeyID"]) == 1 && in["KeyID"][0] > 0xF {
		return uds.Negative(sid, uds.RequestOutOfRange)
	}
	return e.diagStep(ref, in, pending)
}

// routineSub is the RoutineControl sub-function of a routine step.
func routineSub(r stepRef) byte {
	if r.op.Steps[r.idx].Service == profile.RoutineResults {
		return 0x03
	}
	return 0x01
}

// findStep returns the step req is for: the next step of the operation in progress when req
// carries its header (transfer-data and request-transfer-exit belong to the download before
// them), else the step whose header req carries.
func (e *ECU) findStep(req []byte) (stepRef, bool) {
	if r := e.run; r != nil && r.next < len(r.op.Steps) && r.op.Steps[r.next].MatchesRequest(req) {
		return stepRef{r.op, r.next}, true
	}
	for _, ref := range e.diag.bySID[req[0]] {
		st := ref.op.Steps[ref.idx]
		if st.Service != profile.TransferData && st.Service != profile.RequestTransferExit && st.MatchesRequest(req) {
			return ref, true
		}
	}
	return stepRef{}, false
}

// diagStep runs step ref with the values its request brought: a first step (re)starts the
// operation, a later one must be the next (or, once the command ran, the one answered last,
// again, when it sends no data); the step that brings the last input runs the SHE command.
func (e *ECU) diagStep(ref stepRef, in profile.Values, pending func()) []byte {
	st := ref.op.Steps[ref.idx]
	r := e.run
	switch {
	case r != nil && r.op == ref.op && r.next == ref.idx:
	case ref.idx == 0:
		r = &diagRun{op: ref.op, in: profile.Values{}}
		e.run = r
	case r != nil && r.op == ref.op && r.out != nil && r.next == ref.idx+1 && !slices.ContainsFunc(st.Request, isField):
		return e.diagAnswer(ref, r.out) // the last answer again (a tester that asks twice)
	default:
		return uds.Negative(st.SID(), uds.RequestSequenceError)
	}
	for k, v := range in {
		r.in[k] = v
	}
	r.next = ref.idx + 1
	if ref.idx == e.diag.runAt[ref.op] {
		r.out = withPending(e, func() profile.Values { return e.runOperation(ref.op, r.in) }, pending)
	}
	if r.out == nil {
		return e.diagAnswer(ref, profile.Values{})
	}
	resp := e.diagAnswer(ref, r.out)
	erc, _ := r.out.ERC()
	switch {
	case !uds.IsPositive(resp, st.SID()), // the operation is over
		r.next == len(r.op.Steps) && !e.rereadable(r),
		r.next < len(r.op.Steps) && erc != 0 && hasField(st.Response, "ERC"):
		e.run = nil
	}
	return resp
}

// rereadable reports whether the last step of a finished operation may be asked again: it sends
// no data of its own.
func (e *ECU) rereadable(r *diagRun) bool {
	return !slices.ContainsFunc(r.op.Steps[len(r.op.Steps)-1].Request, isField)
}

// diagAnswer encodes step ref's answer from out. A SHE error that a later step's ERC field
// carries does not end this step: it answers as if there were none.
func (e *ECU) diagAnswer(ref stepRef, out profile.Values) []byte {
	st := ref.op.Steps[ref.idx]
	if erc, _ := out.ERC(); erc != 0 && !hasField(st.Response, "ERC") && e.laterERC(ref) {
		if _, mapped := e.cfg.DiagProfile.Errors.NRC[erc]; !mapped {
			out = profile.Values{}
		}
	}
	resp, err := st.EncodeResponse(out)
	if err != nil {
		return uds.Negative(st.SID(), uds.ConditionsNotCorrect)
	}
	return resp
}

// laterERC reports whether a step after ref brings an ERC field back.
func (e *ECU) laterERC(ref stepRef) bool {
	return slices.ContainsFunc(ref.op.Steps[ref.idx+1:], func(st *profile.Step) bool { return hasField(st.Response, "ERC") })
}

// withPending runs f, calling pending (NRC 0x78) once PendingAfter has passed and then every
// P2*/2 until f returns.
func withPending[T any](e *ECU, f func() T, pending func()) T {
	done := make(chan T, 1)
	go func() { done <- f() }()
	timer := time.NewTimer(e.cfg.PendingAfter)
	defer timer.Stop()
	select {
	case out := <-done:
		return out
	case <-timer.C:
	}
	pending()
	tick := time.NewTicker(e.cfg.P2Star / 2)
	defer tick.Stop()
	for {
		select {
		case out := <-done:
			return out
		case <-tick.C:
			pending()
		}
	}
}
