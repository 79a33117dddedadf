package profile

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The UDS service identifiers of the steps.
const (
	sidReadDID             = 0x22
	sidWriteDID            = 0x2E
	sidRoutineControl      = 0x31
	sidRequestDownload     = 0x34
	sidTransferData        = 0x36
	sidRequestTransferExit = 0x37
)

var services = []string{string(RoutineStart), string(RoutineResults), string(WriteDID), string(ReadDID),
	string(RequestDownload), string(TransferData), string(RequestTransferExit)}

func (p *parser) step(n *yaml.Node, path string, prof *Profile) (*Step, error) {
	o, err := p.object(n, path, "service", "rid", "did", "data_format", "address", "address_bytes", "size_bytes", "request", "response")
	if err != nil {
		return nil, err
	}
	if err := o.require("service"); err != nil {
		return nil, err
	}
	svc, err := o.enum("service", "", services...)
	if err != nil {
		return nil, err
	}
	st := &Step{Service: Service(svc), errs: &prof.Errors}
	why := "by " + svc
	download := []string{"data_format", "address", "address_bytes", "size_bytes"}
	switch st.Service {
	case RoutineStart, RoutineResults:
		err = p.stepID(o, st, "rid", why, append([]string{"did"}, download...))
	case WriteDID, ReadDID:
		err = p.stepID(o, st, "did", why, append([]string{"rid"}, download...))
	case RequestDownload:
		err = p.download(o, st)
	default:
		err = o.forbid(why, append([]string{"rid", "did"}, download...)...)
	}
	if err != nil {
		return nil, err
	}
	if st.Request, err = p.layout(o.keys["request"], path+".request"); err != nil {
		return nil, err
	}
	if st.Response, err = p.layout(o.keys["response"], path+".response"); err != nil {
		return nil, err
	}
	switch {
	case st.Service == ReadDID && len(st.Request) > 0:
		return nil, p.errf(o.keys["request"], path+".request", "a read-did request carries only its DID")
	case st.Service == RequestDownload && (len(st.Request) > 0 || len(st.Response) > 0):
		return nil, p.errf(n, path, "request-download's request and answer are ISO 14229's; the record goes in transfer-data")
	}
	return st, nil
}

func (p *parser) stepID(o *object, st *Step, key, why string, forbidden []string) error {
	if err := o.forbid(why, forbidden...); err != nil {
		return err
	}
	if err := o.require(key); err != nil {
		return err
	}
	v, err := o.uint(key, 0, 0, 0xFFFF, "0..0xFFFF")
	st.ID = uint16(v)
	return err
}

func (p *parser) download(o *object, st *Step) error {
	if err := o.forbid("by request-download", "rid", "did"); err != nil {
		return err
	}
	if err := o.require("address"); err != nil {
		return err
	}
	df, err := o.uint("data_format", 0, 0, 0xFF, "0..0xFF")
	if err != nil {
		return err
	}
	st.DataFormat = byte(df)
	ab, err := o.uint("address_bytes", 4, 1, 4, "1..4")
	if err != nil {
		return err
	}
	sb, err := o.uint("size_bytes", 4, 1, 4, "1..4")
	if err != nil {
		return err
	}
	st.AddressBytes, st.SizeBytes = int(ab), int(sb)
	addr, err := o.uint("address", 0, 0, 1<<(8*ab)-1, fmt.Sprintf("0..%#x (address_bytes %d)", uint64(1)<<(8*ab)-1, ab))
	st.Address = uint32(addr)
	return err
}

func fieldNames() string {
	names := make([]string, 0, len(fieldSizes))
	for n := range fieldSizes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// layout reads a list of items: a field name, {const: HEX or byte}, {length: [FIELDS], size: N,
// unit: bytes|bits} or {crc16: [FIELDS]}.
func (p *parser) layout(n *yaml.Node, path string) (Layout, error) {
	if n == nil {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, p.errf(n, path, "want a list of fields, got %s", kindName(n))
	}
	var l Layout
	for i, c := range n.Content {
		it, err := p.item(c, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		l = append(l, it)
	}
	seen := map[string]bool{}
	for i := range l {
		if l[i].Kind == LengthItem {
			l[i].count = l.count(l[i])
		}
	}
	for i, it := range l {
		field := fmt.Sprintf("%s[%d]", path, i)
		if it.Kind == FieldItem {
			if seen[it.Field] {
				return nil, p.errf(it.node, field, "%s is already in this layout", it.Field)
			}
			seen[it.Field] = true
		}
		if it.Kind == LengthItem && it.Size < 4 && it.count >= 1<<(8*it.Size) {
			return nil, p.errf(it.node, field, "length over %s is %d: more than %d byte(s) hold", strings.Join(it.Over, ", "), it.count, it.Size)
		}
		for _, f := range it.Over {
			if !slices.ContainsFunc(l, func(x Item) bool { return x.Kind == FieldItem && x.Field == f }) {
				return nil, p.errf(it.node, field, "%s over %s: not a field of this layout", it.kindName(), f)
			}
		}
	}
	if l.Size() > 4000 {
		return nil, p.errf(n, path, "%d bytes: more than an ISO-TP message holds with its header", l.Size())
	}
	return l, nil
}

// count is the value of length item it: the size of the fields it covers, in bytes or bits.
func (l Layout) count(it Item) uint64 {
	n := uint64(0)
	for _, f := range it.Over {
		n += uint64(l.FieldSize(f))
	}
	if it.Bits {
		n *= 8
	}
	return n
}

func (it Item) kindName() string {
	if it.Kind == LengthItem {
		return "length"
	}
	return "crc16"
}

func (p *parser) item(n *yaml.Node, path string) (Item, error) {
	it := Item{node: n}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		if fieldSizes[n.Value] == 0 {
			return it, p.errf(n, path, "unknown field %q (want one of %s)", n.Value, fieldNames())
		}
		it.Kind, it.Field = FieldItem, n.Value
		return it, nil
	}
	if n.Kind != yaml.MappingNode {
		return it, p.errf(n, path, "want a field name or a mapping with field, const, length or crc16, got %s", kindName(n))
	}
	o, err := p.object(n, path, "field", "const", "length", "crc16", "size", "unit")
	if err != nil {
		return it, err
	}
	switch {
	case o.has("field") && !o.has("const") && !o.has("length") && !o.has("crc16") && !o.has("unit"):
		return p.sizedField(o, it, path)
	case o.has("const") && len(o.keys) == 1:
		it.Kind = ConstItem
		c := o.keys["const"]
		if c.Tag == "!!int" {
			b, err := p.uintNode(c, path+".const", 0, 0xFF, "0..0xFF (longer constants in hex: \"01 02\")")
			it.Const = []byte{byte(b)}
			return it, err
		}
		it.Const, err = p.hexBytes(c, path+".const")
		return it, err
	case o.has("crc16") && len(o.keys) == 1:
		it.Kind = CRCItem
		it.Over, err = p.overFields(o.keys["crc16"], path+".crc16")
		return it, err
	case o.has("length") && !o.has("const") && !o.has("crc16"):
		it.Kind = LengthItem
		if it.Over, err = p.overFields(o.keys["length"], path+".length"); err != nil {
			return it, err
		}
		size, err := o.uint("size", 1, 1, 4, "1..4")
		if err != nil {
			return it, err
		}
		it.Size = int(size)
		unit, err := o.enum("unit", "bytes", "bytes", "bits")
		it.Bits = unit == "bits"
		return it, err
	}
	return it, p.errf(n, path, "want exactly one of field (with size), const, length (with size and unit) or crc16")
}

// sizedField reads {field: Message, size: N}: a message of another size than 16 bytes.
func (p *parser) sizedField(o *object, it Item, path string) (Item, error) {
	name, err := o.str("field", "")
	if err != nil {
		return it, err
	}
	if name != "Message" {
		return it, p.errf(o.keys["field"], path+".field", "%q: only Message has a declared size (write other fields by name)", name)
	}
	if err := o.require("size"); err != nil {
		return it, err
	}
	size, err := o.uint("size", 0, 1, 1024, "1..1024")
	it.Kind, it.Field, it.Size = FieldItem, name, int(size)
	return it, err
}

func (p *parser) overFields(n *yaml.Node, path string) ([]string, error) {
	names, nodes, err := p.stringList(n, path)
	if err != nil {
		return nil, err
	}
	for i, f := range names {
		if fieldSizes[f] == 0 {
			return nil, p.errf(nodes[i], fmt.Sprintf("%s[%d]", path, i), "unknown field %q (want one of %s)", f, fieldNames())
		}
	}
	return names, nil
}
