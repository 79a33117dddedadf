package profile

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Error is a mistake in a profile file: the file, the line and the field it is at.
type Error struct {
	File  string
	Line  int
	Field string // dotted path, e.g. link.tx_dl or operations.LoadKey.steps[0].request[2]
	Msg   string
}

// Error returns "FILE:LINE: FIELD: MESSAGE".
func (e *Error) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Field, e.Msg)
}

// parser turns YAML nodes into values, each mistake an *Error naming the node's line.
type parser struct{ file string }

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: p.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// object is a YAML mapping whose keys were checked against the allowed ones.
type object struct {
	p    *parser
	node *yaml.Node
	path string
	keys map[string]*yaml.Node // key -> value
	key  map[string]*yaml.Node // key -> key node (its line)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.Tag {
	case "!!int":
		return "integer " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	case "!!null":
		return "nothing"
	case "!!float":
		return "number " + n.Value
	}
	return strconv.Quote(n.Value)
}

// object checks that n is a mapping of the allowed keys, each once.
func (p *parser) object(n *yaml.Node, path string, allowed ...string) (*object, error) {
	if n.Kind != yaml.MappingNode {
		return nil, p.errf(n, path, "want a mapping, got %s", kindName(n))
	}
	o := &object{p: p, node: n, path: path, keys: map[string]*yaml.Node{}, key: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, p.errf(k, path, "want a field name, got %s", kindName(k))
		}
		if !slices.Contains(allowed, k.Value) {
			return nil, p.errf(k, join(path, k.Value), "unknown field (want one of %s)", strings.Join(allowed, ", "))
		}
		if _, dup := o.keys[k.Value]; dup {
			return nil, p.errf(k, join(path, k.Value), "given twice")
		}
		o.keys[k.Value], o.key[k.Value] = v, k
	}
	return o, nil
}

// forbid refuses keys that the rest of the object makes meaningless.
func (o *object) forbid(why string, keys ...string) error {
	for _, k := range keys {
		if n, ok := o.key[k]; ok {
			return o.p.errf(n, join(o.path, k), "not used %s", why)
		}
	}
	return nil
}

func (o *object) require(keys ...string) error {
	for _, k := range keys {
		if _, ok := o.keys[k]; !ok {
			return o.p.errf(o.node, join(o.path, k), "missing")
		}
	}
	return nil
}

func (o *object) has(k string) bool { _, ok := o.keys[k]; return ok }

// str reads a string field; def when absent.
func (o *object) str(k, def string) (string, error) {
	n, ok := o.keys[k]
	if !ok {
		return def, nil
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return "", o.p.errf(n, join(o.path, k), "want a string, got %s", kindName(n))
	}
	return n.Value, nil
}

// enum reads a string field that must be one of values; def when absent.
func (o *object) enum(k, def string, values ...string) (string, error) {
	s, err := o.str(k, def)
	if err != nil {
		return "", err
	}
	if !slices.Contains(values, s) {
		return "", o.p.errf(o.keys[k], join(o.path, k), "%q is not one of %s", s, strings.Join(values, ", "))
	}
	return s, nil
}

// uint reads an integer field in [lo, hi]; def when absent. rng is the range as the error says it.
func (o *object) uint(k string, def, lo, hi uint64, rng string) (uint64, error) {
	n, ok := o.keys[k]
	if !ok {
		return def, nil
	}
	return o.p.uintNode(n, join(o.path, k), lo, hi, rng)
}

func (p *parser) uintNode(n *yaml.Node, field string, lo, hi uint64, rng string) (uint64, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, p.errf(n, field, "want an integer, got %s", kindName(n))
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
	if err != nil || v < 0 || uint64(v) < lo || uint64(v) > hi {
		return 0, p.errf(n, field, "%s is out of range %s", n.Value, rng)
	}
	return uint64(v), nil
}

// boolean reads a boolean field; def when absent.
func (o *object) boolean(k string, def bool) (bool, error) {
	n, ok := o.keys[k]
	if !ok {
		return def, nil
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		return false, o.p.errf(n, join(o.path, k), "want true or false, got %s", kindName(n))
	}
	return n.Value == "true" || n.Value == "True" || n.Value == "TRUE", nil
}

// duration reads a duration such as 50ms in [lo, hi]; def when absent.
func (o *object) duration(k string, def, lo, hi time.Duration) (time.Duration, error) {
	n, ok := o.keys[k]
	if !ok {
		return def, nil
	}
	field := join(o.path, k)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return 0, o.p.errf(n, field, "want a duration such as 50ms, got %s", kindName(n))
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, o.p.errf(n, field, "want a duration such as 50ms, got %q", n.Value)
	}
	if d < lo || d > hi {
		return 0, o.p.errf(n, field, "%s is out of range %v..%v", n.Value, lo, hi)
	}
	return d, nil
}

// hexBytes reads bytes written in hex, spaces allowed ("01 02" or "0102").
func (p *parser) hexBytes(n *yaml.Node, field string) ([]byte, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return nil, p.errf(n, field, "want bytes in hex such as \"01 AB\", got %s", kindName(n))
	}
	b, err := hex.DecodeString(strings.ReplaceAll(n.Value, " ", ""))
	if err != nil || len(b) == 0 {
		return nil, p.errf(n, field, "want bytes in hex such as \"01 AB\", got %q", n.Value)
	}
	return b, nil
}

// strings reads a non-empty list of strings.
func (p *parser) stringList(n *yaml.Node, field string) ([]string, []*yaml.Node, error) {
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, nil, p.errf(n, field, "want a non-empty list, got %s", kindName(n))
	}
	var out []string
	for i, c := range n.Content {
		if c.Kind != yaml.ScalarNode || c.Tag != "!!str" {
			return nil, nil, p.errf(c, fmt.Sprintf("%s[%d]", field, i), "want a string, got %s", kindName(c))
		}
		out = append(out, c.Value)
	}
	return out, n.Content, nil
}
