package profile

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ERCNames are the SHE error codes by their names in SHE v1.1.
var ERCNames = []string{
	"ERC_NO_ERROR", "ERC_SEQUENCE_ERROR", "ERC_KEY_NOT_AVAILABLE", "ERC_KEY_INVALID", "ERC_KEY_EMPTY",
	"ERC_NO_SECURE_BOOT", "ERC_KEY_WRITE_PROTECTED", "ERC_KEY_UPDATE_ERROR", "ERC_RNG_SEED",
	"ERC_NO_DEBUGGING", "ERC_BUSY", "ERC_MEMORY_FAILURE", "ERC_GENERAL_ERROR",
}

// String returns the ERC's SHE name, e.g. ERC_KEY_INVALID.
func (e ERC) String() string {
	if int(e) < len(ERCNames) {
		return ERCNames[e]
	}
	return fmt.Sprintf("ERC(%#02x)", byte(e))
}

func (p *parser) errors(n *yaml.Node) (Errors, error) {
	e := Errors{NRC: map[ERC]byte{}}
	o, err := p.object(orEmpty(n), "errors", "nrc", "other_nrc", "on_error")
	if err != nil {
		return e, err
	}
	onError, err := o.enum("on_error", "truncate", "truncate", "zero-fill")
	if err != nil {
		return e, err
	}
	e.ZeroFill = onError == "zero-fill"
	other, err := o.uint("other_nrc", 0, 0x10, 0xFF, "0x10..0xFF")
	if err != nil {
		return e, err
	}
	if other == 0x78 {
		return e, p.errf(o.keys["other_nrc"], "errors.other_nrc", "0x78 is responsePending, not an answer")
	}
	e.OtherNRC = byte(other)
	if nn, ok := o.keys["nrc"]; ok {
		return e, p.nrcMap(nn, &e)
	}
	return e, nil
}

// nrcMap reads errors.nrc: ERC name -> NRC, one ERC per NRC.
func (p *parser) nrcMap(n *yaml.Node, e *Errors) error {
	o, err := p.object(n, "errors.nrc", ERCNames[1:]...)
	if err != nil {
		return err
	}
	by := map[byte]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		name := n.Content[i].Value
		field := "errors.nrc." + name
		v, err := p.uintNode(n.Content[i+1], field, 0x10, 0xFF, "0x10..0xFF")
		if err != nil {
			return err
		}
		if v == 0x78 {
			return p.errf(n.Content[i+1], field, "0x78 is responsePending, not an answer")
		}
		if v == uint64(e.OtherNRC) {
			return p.errf(n.Content[i+1], field, "%#02x is also errors.other_nrc", v)
		}
		if prev, dup := by[byte(v)]; dup {
			return p.errf(n.Content[i+1], field, "%#02x already carries %s", v, prev)
		}
		by[byte(v)] = name
		e.NRC[ERC(slices.Index(ERCNames, name))] = byte(v)
	}
	_ = o
	return nil
}

// What each operation's requests may carry (in) and answers may bring back (out), and what they
// must carry.
var opFields = map[OpName]struct{ in, out, needIn, needOut []string }{
	ReadUID:     {nil, []string{"UID", "SREG", "ERC"}, nil, []string{"UID"}},
	LoadKey:     {[]string{"M1", "M2", "M3"}, []string{"ERC", "M4", "M5"}, []string{"M1", "M2", "M3"}, []string{"M4", "M5"}},
	GetID:       {[]string{"Challenge"}, []string{"ERC", "UID", "SREG", "MAC"}, []string{"Challenge"}, []string{"UID", "SREG", "MAC"}},
	VerifyMAC:   {[]string{"KeyID", "Message", "MAC"}, []string{"ERC", "Status"}, []string{"KeyID", "Message", "MAC"}, []string{"Status"}},
	GenerateMAC: {[]string{"KeyID", "Message"}, []string{"ERC", "MAC"}, []string{"KeyID", "Message"}, []string{"MAC"}},
	KeyCheck:    {[]string{"KeyID", "Message", "Challenge", "MAC"}, []string{"ERC", "Status", "MAC"}, []string{"KeyID"}, nil},
}

func opNames() []string {
	var s []string
	for _, n := range OpNames {
		s = append(s, string(n))
	}
	return s
}

func (p *parser) operations(n *yaml.Node, prof *Profile) (map[OpName]*Operation, error) {
	o, err := p.object(n, "operations", opNames()...)
	if err != nil {
		return nil, err
	}
	if err := o.require(string(ReadUID), string(LoadKey)); err != nil {
		return nil, err
	}
	ops := map[OpName]*Operation{}
	for _, name := range OpNames {
		if on, ok := o.keys[string(name)]; ok {
			op, err := p.operation(o.key[string(name)], on, name, prof)
			if err != nil {
				return nil, err
			}
			ops[name] = op
		}
	}
	return ops, p.sharedHeaders(o, ops)
}

var sessionNames = map[string]byte{"default": 0x01, "programming": 0x02, "extended": 0x03}

func (p *parser) operation(key, n *yaml.Node, name OpName, prof *Profile) (*Operation, error) {
	path := "operations." + string(name)
	o, err := p.object(n, path, "session", "security", "steps")
	if err != nil {
		return nil, err
	}
	if err := o.require("steps"); err != nil {
		return nil, err
	}
	op := &Operation{Name: name, Session: 0x01}
	if sn, ok := o.keys["session"]; ok {
		if s, named := sessionNames[sn.Value]; named && sn.Tag == "!!str" {
			op.Session = s
		} else if sn.Tag == "!!str" {
			return nil, p.errf(sn, path+".session", "%q: want default, programming, extended or a number 0x01..0x7F", sn.Value)
		} else {
			v, err := p.uintNode(sn, path+".session", 1, 0x7F, "0x01..0x7F")
			if err != nil {
				return nil, err
			}
			op.Session = byte(v)
		}
	}
	if op.Security, err = o.boolean("security", prof.Security.Algorithm != AlgorithmNone); err != nil {
		return nil, err
	}
	if op.Security && prof.Security.Algorithm == AlgorithmNone {
		return nil, p.errf(o.keys["security"], path+".security", "needs SecurityAccess, but security.algorithm is none")
	}
	if op.Security && op.Session == 0x01 {
		return nil, p.errf(o.node, path+".session", "SecurityAccess needs a non-default session")
	}
	sn := o.keys["steps"]
	if sn.Kind != yaml.SequenceNode || len(sn.Content) == 0 {
		return nil, p.errf(sn, path+".steps", "want a non-empty list, got %s", kindName(sn))
	}
	for i, stn := range sn.Content {
		st, err := p.step(stn, fmt.Sprintf("%s.steps[%d]", path, i), prof)
		if err != nil {
			return nil, err
		}
		op.Steps = append(op.Steps, st)
	}
	if err := p.sequence(sn, path, op.Steps); err != nil {
		return nil, err
	}
	return op, p.fieldUse(key, path, op, prof)
}

// sequence checks the download steps' order and sets the download's memory size.
func (p *parser) sequence(n *yaml.Node, path string, steps []*Step) error {
	for i, st := range steps {
		field := fmt.Sprintf("%s.steps[%d]", path, i)
		var prev Service
		if i > 0 {
			prev = steps[i-1].Service
		}
		switch {
		case st.Service == TransferData && prev != RequestDownload:
			return p.errf(n.Content[i], field, "transfer-data must follow request-download")
		case st.Service == RequestTransferExit && prev != TransferData:
			return p.errf(n.Content[i], field, "request-transfer-exit must follow transfer-data")
		case st.Service == RequestDownload && (i+1 == len(steps) || steps[i+1].Service != TransferData):
			return p.errf(n.Content[i], field, "request-download must be followed by transfer-data")
		}
		if st.Service == TransferData && len(st.Request) == 0 {
			return p.errf(n.Content[i], field+".request", "transfer-data carries the record: want a request layout")
		}
		if st.Service == RequestDownload {
			st.MemorySize = steps[i+1].Request.Size()
			if st.SizeBytes < 4 && st.MemorySize >= 1<<(8*st.SizeBytes) {
				return p.errf(n.Content[i], field+".size_bytes", "%d cannot count the %d bytes of the transfer", st.SizeBytes, st.MemorySize)
			}
		}
	}
	return nil
}

// fieldUse checks that the operation's requests carry only what a tester has and its answers
// only what the operation brings back, each field once, and everything the operation needs.
func (p *parser) fieldUse(at *yaml.Node, path string, op *Operation, prof *Profile) error {
	allowed := opFields[op.Name]
	sentAt, backAt := map[string]string{}, map[string]string{}
	hasERC := false
	for i, st := range op.Steps {
		for _, dir := range []string{"request", "response"} {
			l, ok, seen := st.Request, allowed.in, sentAt
			if dir == "response" {
				l, ok, seen = st.Response, allowed.out, backAt
			}
			for j, it := range l {
				if it.Kind != FieldItem {
					continue
				}
				field := fmt.Sprintf("%s.steps[%d].%s[%d]", path, i, dir, j)
				if !slices.Contains(ok, it.Field) {
					return p.errf(it.node, field, "%s cannot be in %s's %s (it carries %s)", it.Field, op.Name, dir, orNothing(ok))
				}
				if it.Field == "ERC" {
					hasERC = true
					continue
				}
				if at, dup := seen[it.Field]; dup {
					return p.errf(it.node, field, "%s is already in %s", it.Field, at)
				}
				seen[it.Field] = field
			}
		}
	}
	for _, f := range allowed.needIn {
		if _, ok := sentAt[f]; !ok {
			return p.errf(at, path, "no request carries %s", f)
		}
	}
	for _, f := range allowed.needOut {
		if _, ok := backAt[f]; !ok {
			return p.errf(at, path, "no answer brings back %s", f)
		}
	}
	if op.Name == KeyCheck {
		if err := p.keyCheck(at, path, sentAt, backAt); err != nil {
			return err
		}
	}
	if op.Name != ReadUID && !hasERC && prof.Errors.OtherNRC == 0 {
		return p.errf(at, path, "no way back for a SHE error: no answer has an ERC field and errors.other_nrc is not set")
	}
	return nil
}

func orNothing(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}

// keyCheck: the ECU either verifies a MAC the tester computed with the expected key (Status back)
// or computes one that the tester compares (MAC back).
func (p *parser) keyCheck(at *yaml.Node, path string, sent, back map[string]string) error {
	_, status := back["Status"]
	_, mac := back["MAC"]
	_, sentMAC := sent["MAC"]
	_, msg := sent["Message"]
	_, chal := sent["Challenge"]
	switch {
	case status == mac:
		return p.errf(at, path, "a key check brings back either Status (the ECU verified a MAC) or MAC (the ECU computed one)")
	case status && !sentMAC:
		return p.errf(at, path, "a key check that brings back Status sends the MAC to verify")
	case mac && sentMAC:
		return p.errf(at, path, "a key check that brings back a MAC does not send one")
	case !msg && !chal:
		return p.errf(at, path, "a key check sends a Message or a Challenge")
	}
	return nil
}

// sharedHeaders: steps of different operations that send the same request header must be the
// same step (a server tells operations apart by the header only). TransferData and
// RequestTransferExit are told apart by the RequestDownload that came before them.
func (p *parser) sharedHeaders(o *object, ops map[OpName]*Operation) error {
	type at struct {
		op   OpName
		i    int
		step *Step
	}
	seen := map[string]at{}
	for _, name := range OpNames {
		op := ops[name]
		if op == nil {
			continue
		}
		for i, st := range op.Steps {
			if st.Service == TransferData || st.Service == RequestTransferExit {
				continue // they belong to the request-download before them
			}
			key := string(st.requestHeader())
			prev, dup := seen[key]
			if !dup {
				seen[key] = at{name, i, st}
				continue
			}
			if prev.op != name && !sameSteps(ops[prev.op], prev.i, op, i) {
				return p.errf(o.key[string(name)], fmt.Sprintf("operations.%s.steps[%d]", name, i),
					"sends the request header of %s.steps[%d] (% X) but differs from it", prev.op, prev.i, st.requestHeader())
			}
		}
	}
	return nil
}

// sameSteps reports whether step i of a and step j of b are the same to a server: session and
// security, and the layouts of the step (for a download, of its transfer and exit too).
func sameSteps(a *Operation, i int, b *Operation, j int) bool {
	x, y := chain(a.Steps, i), chain(b.Steps, j)
	return a.Session == b.Session && a.Security == b.Security &&
		slices.EqualFunc(x, y, func(s, t *Step) bool {
			return s.Service == t.Service && sameLayout(s.Request, t.Request) && sameLayout(s.Response, t.Response)
		})
}

// chain is step i, with the transfer and exit after it when it is a request-download.
func chain(steps []*Step, i int) []*Step {
	end := i + 1
	if steps[i].Service == RequestDownload {
		for end < len(steps) && (steps[end].Service == TransferData || steps[end].Service == RequestTransferExit) {
			end++
		}
	}
	return steps[i:end]
}

func sameLayout(a, b Layout) bool {
	return slices.EqualFunc(a, b, func(x, y Item) bool {
		return x.Kind == y.Kind && x.Field == y.Field && string(x.Const) == string(y.Const) &&
			slices.Equal(x.Over, y.Over) && x.Size == y.Size && x.Bits == y.Bits
	})
}
