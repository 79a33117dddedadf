package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads a profile file. Relative paths of its external seed/key command are resolved
// against the file's directory.
func Load(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	p, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	p.Dir = filepath.Dir(path)
	return p, nil
}

// Parse reads and validates a profile; file names it in errors. A mistake is an *Error naming the
// file, the line and the field.
func Parse(file string, data []byte) (*Profile, error) {
	p := &parser{file: file}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, &Error{File: file, Line: 1, Msg: "empty file"}
	} else if err != nil {
		return nil, &Error{File: file, Line: yamlErrorLine(err), Msg: fmt.Sprintf("not YAML: %v", err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, p.errf(&extra, "", "a second YAML document: want one profile per file")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, p.errf(&doc, "", "empty file")
	}
	prof, err := p.profile(doc.Content[0])
	if err != nil {
		return nil, err
	}
	prof.Source = file
	return prof, nil
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func yamlErrorLine(err error) int {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	var n int
	fmt.Sscan(m[1], &n)
	return n
}

var profileName = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (p *parser) profile(n *yaml.Node) (*Profile, error) {
	o, err := p.object(n, "", "version", "name", "description", "transport", "doip", "addressing", "link", "security", "errors", "operations")
	if err != nil {
		return nil, err
	}
	if err := o.require("version", "name", "operations"); err != nil {
		return nil, err
	}
	if _, err := o.uint("version", 0, Version, Version, fmt.Sprintf("(this version reads version %d)", Version)); err != nil {
		return nil, err
	}
	prof := &Profile{}
	if prof.Name, err = o.str("name", ""); err != nil {
		return nil, err
	}
	if !profileName.MatchString(prof.Name) {
		return nil, p.errf(o.keys["name"], "name", "%q: want lower-case letters, digits and dashes", prof.Name)
	}
	if prof.Description, err = o.str("description", ""); err != nil {
		return nil, err
	}
	if err := p.transport(o, prof); err != nil {
		return nil, err
	}
	if prof.Link, err = p.link(o.keys["link"], prof.HasAddressing); err != nil {
		return nil, err
	}
	if prof.Security, err = p.security(o.keys["security"]); err != nil {
		return nil, err
	}
	if prof.Errors, err = p.errors(o.keys["errors"]); err != nil {
		return nil, err
	}
	if prof.Operations, err = p.operations(o.keys["operations"], prof); err != nil {
		return nil, err
	}
	return prof, nil
}

// empty stands for an absent section: every field takes its default.
var empty = &yaml.Node{Kind: yaml.MappingNode}

func orEmpty(n *yaml.Node) *yaml.Node {
	if n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return empty
	}
	return n
}

// The keys each addressing mode uses.
var addressingKeys = map[AddressingMode][]string{
	Normal:      {"id_bits", "request_id", "response_id", "functional_id"},
	NormalFixed: {"id_bits", "tester_address", "ecu_address", "functional_address"},
	Extended:    {"id_bits", "request_id", "response_id", "functional_id", "tester_address", "ecu_address", "functional_address"},
	// Mixed: per id_bits, below.
}

func (p *parser) addressing(n *yaml.Node) (Addressing, error) {
	var a Addressing
	all := []string{"mode", "id_bits", "request_id", "response_id", "functional_id", "tester_address", "ecu_address", "functional_address", "address_extension"}
	o, err := p.object(n, "addressing", all...)
	if err != nil {
		return a, err
	}
	if err := o.require("mode"); err != nil {
		return a, err
	}
	mode, err := o.enum("mode", "", string(Normal), string(NormalFixed), string(Extended), string(Mixed))
	if err != nil {
		return a, err
	}
	a.Mode = AddressingMode(mode)
	bits, err := o.uint("id_bits", map[bool]uint64{true: 29, false: 11}[a.Mode == NormalFixed], 11, 29, "(11 or 29)")
	if err != nil {
		return a, err
	}
	if bits != 11 && bits != 29 || a.Mode == NormalFixed && bits != 29 {
		want := "11 or 29"
		if a.Mode == NormalFixed {
			want = "29 for normal-fixed addressing"
		}
		return a, p.errf(o.keys["id_bits"], "addressing.id_bits", "%d: want %s", bits, want)
	}
	a.IDBits = int(bits)
	used := addressingKeys[a.Mode]
	if a.Mode == Mixed {
		used = []string{"id_bits", "request_id", "response_id", "functional_id", "address_extension"}
		if bits == 29 {
			used = []string{"id_bits", "tester_address", "ecu_address", "functional_address", "address_extension"}
		}
	}
	for _, k := range all[1:] {
		if !containsKey(used, k) {
			if err := o.forbid(fmt.Sprintf("by %d-bit %s addressing", bits, a.Mode), k); err != nil {
				return a, err
			}
		}
	}
	return a, p.addressingValues(o, &a, used)
}

func containsKey(keys []string, k string) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

// addressingValues reads the IDs and address bytes a mode uses.
func (p *parser) addressingValues(o *object, a *Addressing, used []string) error {
	var required []string
	for _, k := range used {
		if k != "id_bits" && k != "functional_id" && k != "functional_address" {
			required = append(required, k)
		}
	}
	if err := o.require(required...); err != nil {
		return err
	}
	maxID, rng := uint64(0x7FF), "0..0x7FF"
	if a.IDBits == 29 {
		maxID, rng = 0x1FFFFFFF, "0..0x1FFFFFFF"
	}
	ids := []*uint32{&a.PhysicalRequest, &a.PhysicalResponse, &a.FunctionalRequest}
	for i, k := range []string{"request_id", "response_id", "functional_id"} {
		v, err := o.uint(k, 0, 0, maxID, rng)
		if err != nil {
			return err
		}
		*ids[i] = uint32(v)
	}
	addrs := []*byte{&a.TesterAddress, &a.ECUAddress, &a.FunctionalAddress, &a.AddressExtension}
	for i, k := range []string{"tester_address", "ecu_address", "functional_address", "address_extension"} {
		v, err := o.uint(k, 0, 0, 0xFF, "0..0xFF")
		if err != nil {
			return err
		}
		*addrs[i] = byte(v)
	}
	a.HasFunctional = o.has("functional_id") || o.has("functional_address")
	if a.Mode == Extended && o.has("functional_id") != o.has("functional_address") {
		return p.errf(o.node, "addressing.functional_address", "extended addressing needs functional_id and functional_address together")
	}
	if containsKey(used, "request_id") && a.PhysicalRequest == a.PhysicalResponse {
		return p.errf(o.keys["response_id"], "addressing.response_id", "%#x is also the request ID", a.PhysicalResponse)
	}
	if containsKey(used, "ecu_address") && a.Mode != Extended && a.TesterAddress == a.ECUAddress {
		return p.errf(o.keys["ecu_address"], "addressing.ecu_address", "%#02x is also the tester's address", a.ECUAddress)
	}
	return nil
}

// The data lengths of CAN FD frames above 8 bytes (ISO 11898-1).
var fdLengths = []uint64{8, 12, 16, 20, 24, 32, 48, 64}

// The link fields of the CAN side, which a profile over DoIP without addressing has no use for.
var canLinkKeys = []string{"can", "tx_dl", "brs", "padding", "min_frame_length", "block_size", "st_min", "n_as", "n_bs", "n_cr"}

// link reads the link section; onCAN says whether the ECU has a CAN side (addressing).
func (p *parser) link(n *yaml.Node, onCAN bool) (Link, error) {
	var l Link
	o, err := p.object(orEmpty(n), "link", append(canLinkKeys, "p2", "p2_star", "s3")...)
	if err != nil {
		return l, err
	}
	if !onCAN {
		if err := o.forbid("over DoIP without addressing (only p2, p2_star and s3 apply)", canLinkKeys...); err != nil {
			return l, err
		}
	}
	can, err := o.enum("can", "classic", "classic", "fd")
	if err != nil {
		return l, err
	}
	l.FD = can == "fd"
	if err := p.frameFormat(o, &l); err != nil {
		return l, err
	}
	bs, err := o.uint("block_size", 0, 0, 255, "0..255")
	if err != nil {
		return l, err
	}
	l.BlockSize = uint8(bs)
	if l.STmin, err = o.duration("st_min", 0, 0, 127*time.Millisecond); err != nil {
		return l, err
	}
	if l.STmin > 0 && l.STmin < time.Millisecond && l.STmin%(100*time.Microsecond) != 0 ||
		l.STmin >= time.Millisecond && l.STmin%time.Millisecond != 0 {
		return l, p.errf(o.keys["st_min"], "link.st_min", "%v: want whole milliseconds up to 127ms, or 100µs..900µs in steps of 100µs", l.STmin)
	}
	timeouts := []*time.Duration{&l.NAs, &l.NBs, &l.NCr}
	for i, k := range []string{"n_as", "n_bs", "n_cr"} {
		if *timeouts[i], err = o.duration(k, time.Second, time.Millisecond, time.Minute); err != nil {
			return l, err
		}
	}
	if l.P2, err = o.duration("p2", 50*time.Millisecond, time.Millisecond, 65535*time.Millisecond); err != nil {
		return l, err
	}
	if l.P2Star, err = o.duration("p2_star", 5000*time.Millisecond, 10*time.Millisecond, 655350*time.Millisecond); err != nil {
		return l, err
	}
	if l.S3, err = o.duration("s3", 5*time.Second, 100*time.Millisecond, time.Hour); err != nil {
		return l, err
	}
	if l.P2%time.Millisecond != 0 || l.P2Star%(10*time.Millisecond) != 0 {
		return l, p.errf(o.node, "link.p2", "P2 counts whole milliseconds and P2* tens of milliseconds (as DiagnosticSessionControl announces them)")
	}
	return l, nil
}

// frameFormat reads tx_dl, brs, padding and min_frame_length.
func (p *parser) frameFormat(o *object, l *Link) error {
	def, lo := uint64(8), uint64(8)
	if l.FD {
		def = 64
	}
	hi, rng := lo, "8..8 (classic CAN; 12..64 need can: fd)"
	if l.FD {
		hi, rng = 64, "8..64"
	}
	dl, err := o.uint("tx_dl", def, lo, hi, rng)
	if err != nil {
		return err
	}
	if !containsUint(fdLengths, dl) {
		return p.errf(o.keys["tx_dl"], "link.tx_dl", "%d is not a CAN FD data length (8, 12, 16, 20, 24, 32, 48, 64)", dl)
	}
	l.TxDL = int(dl)
	if l.BRS, err = o.boolean("brs", false); err != nil {
		return err
	}
	if l.BRS && !l.FD {
		return p.errf(o.keys["brs"], "link.brs", "the bit-rate switch needs can: fd")
	}
	l.Pad, l.PadByte = true, 0xCC
	if pn, ok := o.keys["padding"]; ok {
		if pn.Kind == yaml.ScalarNode && pn.Tag == "!!str" && pn.Value == "none" {
			l.Pad = false
		} else {
			b, err := p.uintNode(pn, "link.padding", 0, 0xFF, "0..0xFF (or none)")
			if err != nil {
				return err
			}
			l.PadByte = byte(b)
		}
	}
	if !l.Pad {
		return o.forbid("without padding", "min_frame_length")
	}
	mfl, err := o.uint("min_frame_length", 8, 1, uint64(l.TxDL), fmt.Sprintf("1..%d (tx_dl)", l.TxDL))
	l.MinFrameLength = int(mfl)
	return err
}

func containsUint(s []uint64, v uint64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func (p *parser) security(n *yaml.Node) (Security, error) {
	s := Security{Algorithm: AlgorithmNone}
	if n == nil {
		return s, nil
	}
	o, err := p.object(n, "security", "algorithm", "level", "seed_length", "key_length", "key",
		"command", "seed_input", "timeout", "max_attempts", "delay")
	if err != nil {
		return s, err
	}
	if err := o.require("algorithm"); err != nil {
		return s, err
	}
	alg, err := o.enum("algorithm", "", string(AlgorithmNone), string(AlgorithmAESCMAC), string(AlgorithmExternal))
	if err != nil {
		return s, err
	}
	s.Algorithm = Algorithm(alg)
	switch s.Algorithm {
	case AlgorithmNone:
		return s, o.forbid("by algorithm none", "level", "seed_length", "key_length", "key", "command", "seed_input", "timeout", "max_attempts", "delay")
	case AlgorithmAESCMAC:
		if err := o.forbid("by aes-cmac", "key_length", "command", "seed_input", "timeout"); err != nil {
			return s, err
		}
		if err := o.require("key"); err != nil {
			return s, err
		}
		if s.Key, err = p.hexBytes(o.keys["key"], "security.key"); err != nil {
			return s, err
		}
		if len(s.Key) != 16 {
			return s, p.errf(o.keys["key"], "security.key", "%d bytes: an AES-128 key is 16", len(s.Key))
		}
		s.KeyLength = 16
	case AlgorithmExternal:
		if err := p.external(o, &s); err != nil {
			return s, err
		}
	}
	return s, p.securityCommon(o, &s)
}

func (p *parser) external(o *object, s *Security) error {
	if err := o.forbid("by an external command (it keeps its secrets)", "key"); err != nil {
		return err
	}
	if err := o.require("command"); err != nil {
		return err
	}
	cmd, nodes, err := p.stringList(o.keys["command"], "security.command")
	if err != nil {
		return err
	}
	if cmd[0] == "" {
		return p.errf(nodes[0], "security.command[0]", "empty program name")
	}
	s.Command = cmd
	in, err := o.enum("seed_input", string(SeedArgument), string(SeedArgument), string(SeedStdin))
	if err != nil {
		return err
	}
	s.Input = SeedInput(in)
	if s.Timeout, err = o.duration("timeout", 5*time.Second, time.Millisecond, time.Minute); err != nil {
		return err
	}
	kl, err := o.uint("key_length", 16, 1, 64, "1..64")
	s.KeyLength = int(kl)
	return err
}

func (p *parser) securityCommon(o *object, s *Security) error {
	level, err := o.uint("level", 1, 1, 0x7D, "0x01..0x7D")
	if err != nil {
		return err
	}
	if level%2 == 0 {
		return p.errf(o.keys["level"], "security.level", "%#02x: requestSeed levels are odd (sendKey is level+1)", level)
	}
	s.Level = byte(level)
	sl, err := o.uint("seed_length", 16, 1, 32, "1..32")
	if err != nil {
		return err
	}
	s.SeedLength = int(sl)
	ma, err := o.uint("max_attempts", 3, 1, 255, "1..255")
	if err != nil {
		return err
	}
	s.MaxAttempts = int(ma)
	s.Delay, err = o.duration("delay", 10*time.Second, 0, time.Hour)
	return err
}
