package conformance_test

import (
	_ "embed"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/shekit/shekit/conformance/report"
)

// referenceYAML is the in-process reference's own declaration: what a section without a URL takes.
//
//go:embed reference.yaml
var referenceYAML []byte

// templateYAML is the declaration --init writes: commented, with the values of the reference
// server started with `go run ./server` (demo registry, no authentication, port 8080).
//
//go:embed declaration.yaml
var templateYAML []byte

// declarationVersion is the only version of the declaration file this kit reads.
const declarationVersion = 1

// decodeDeclaration reads a declaration (YAML) into c: every key must be a field of Config's
// decl tags (or a section holding some), version must be 1; an error names the file and line. A
// list is taken for a comma-separated field. given (if not nil) gets the path of every field the
// declaration sets.
func decodeDeclaration(name string, data []byte, c *Config, given map[string]bool) error {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return fmt.Errorf("declaration %s: %w", name, err)
	}
	if len(root.Content) == 0 {
		return fmt.Errorf("declaration %s: empty; want at least version: %d", name, declarationVersion)
	}
	fields := map[string]reflect.Value{}
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		if path := v.Type().Field(i).Tag.Get("decl"); path != "" {
			fields[path] = v.Field(i)
		}
	}
	version := 0
	var walk func(n *yaml.Node, prefix string) error
	walk = func(n *yaml.Node, prefix string) error {
		if n.Kind != yaml.MappingNode {
			return fmt.Errorf("declaration %s, line %d: %s: want a mapping of fields", name, n.Line, strings.TrimSuffix(prefix, "."))
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			path := prefix + k.Value
			f, isField := fields[path]
			switch {
			case path == "version":
				if err := val.Decode(&version); err != nil || version != declarationVersion {
					return fmt.Errorf("declaration %s, line %d: version: %q, want %d", name, val.Line, val.Value, declarationVersion)
				}
			case isField:
				if err := decodeField(val, f); err != nil {
					return fmt.Errorf("declaration %s, line %d: %s: %v", name, val.Line, path, err)
				}
				if given != nil {
					given[path] = true
				}
			case isSection(fields, path) && val.Kind != yaml.ScalarNode:
				if err := walk(val, path+"."); err != nil {
					return err
				}
			case isSection(fields, path) && val.Tag == "!!null":
				// an empty section
			default:
				return fmt.Errorf("declaration %s, line %d: unknown field %q (fields: %s)", name, k.Line, path, strings.Join(fieldsUnder(fields, prefix), ", "))
			}
		}
		return nil
	}
	if err := walk(root.Content[0], ""); err != nil {
		return err
	}
	if version == 0 {
		return fmt.Errorf("declaration %s: version is missing; want version: %d", name, declarationVersion)
	}
	return nil
}

// decodeField decodes a value into a field: a list into a comma-separated string field.
func decodeField(n *yaml.Node, f reflect.Value) error {
	if n.Kind == yaml.SequenceNode && f.Kind() == reflect.String {
		var items []string
		if err := n.Decode(&items); err != nil {
			return err
		}
		f.SetString(strings.Join(items, ","))
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a value, not a %s", map[yaml.Kind]string{yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}[n.Kind])
	}
	if n.Tag == "!!null" {
		return nil
	}
	return n.Decode(f.Addr().Interface())
}

// isSection reports whether path is a section of the declaration: a prefix of some field's path.
func isSection(fields map[string]reflect.Value, path string) bool {
	for p := range fields {
		if strings.HasPrefix(p, path+".") {
			return true
		}
	}
	return false
}

// fieldsUnder lists the keys a mapping at prefix may have, sorted.
func fieldsUnder(fields map[string]reflect.Value, prefix string) []string {
	var out []string
	if prefix == "" {
		out = append(out, "version")
	}
	for p := range fields {
		if rest, ok := strings.CutPrefix(p, prefix); ok {
			rest, _, _ = strings.Cut(rest, ".")
			if !slices.Contains(out, rest) {
				out = append(out, rest)
			}
		}
	}
	slices.Sort(out)
	return out
}

// referenceFill gives each section without an endpoint of its own (kms and clm without url, ecu
// without can) the in-process reference's declaration for the fields neither the declaration nor
// the environment gives (given: their paths); station.fleet too.
func (c *Config) referenceFill(given map[string]bool) error {
	var r Config
	if err := decodeDeclaration("reference.yaml", referenceYAML, &r, nil); err != nil {
		return err
	}
	sameSupplier := (c.SupplierID == "" || strings.EqualFold(c.SupplierID, r.SupplierID)) && (c.EcuType == "" || c.EcuType == r.EcuType)
	fill := map[string]bool{"kms.": c.KMSURL == "", "clm.": c.CLMURL == "", "ecu.": c.DoIP == "" && (c.CAN == "" || c.CAN == "mem"), "station.": true}
	v, rv := reflect.ValueOf(c).Elem(), reflect.ValueOf(r)
	for i := range v.NumField() {
		path := v.Type().Field(i).Tag.Get("decl")
		section, _, _ := strings.Cut(path, ".")
		if !fill[section+"."] || given[path] || !v.Field(i).IsZero() {
			continue
		}
		if path == "kms.cluster_ids" && !sameSupplier {
			continue // the reference's clusters are those of its own supplier's EcuType
		}
		v.Field(i).Set(rv.Field(i))
	}
	return nil
}

// targets reads Targets: the targets a certification run certifies (none: not one).
func (c *Config) targets() ([]string, error) {
	var out []string
	for _, t := range strings.Split(c.Targets, ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" {
			continue
		}
		if !slices.Contains(report.Targets, t) {
			return nil, fmt.Errorf("targets (CONF_TARGETS, --target): unknown target %q (targets: %s)", t, strings.Join(report.Targets, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// requiredFields are the declaration fields a target's certification cannot do without; the
// station drives the configured KMS and ECUs, so it needs theirs.
var requiredFields = map[string][]string{
	"kms":     {"kms.url", "kms.supplier_id", "kms.ecu_type", "kms.supplier_secret_key", "kms.initial_master_key"},
	"clm":     {"clm.url", "clm.license"},
	"ecu":     {"ecu.can", "ecu.security_key"},
	"station": {"kms.url", "kms.supplier_id", "kms.ecu_type", "kms.supplier_secret_key", "kms.initial_master_key", "ecu.can", "ecu.ids", "ecu.security_key"},
}

// required checks, for a certification of targets, that the declaration gives every field they
// need, names the first missing one, and checks the authentication's fields; then it fills the
// other targets' fields with defaults (their tests do not run).
func (c *Config) required(targets []string) error {
	v := reflect.ValueOf(c).Elem()
	env := map[string]string{}
	value := map[string]reflect.Value{}
	for i := range v.NumField() {
		tag := v.Type().Field(i).Tag
		env[tag.Get("decl")], value[tag.Get("decl")] = tag.Get("env"), v.Field(i)
	}
	for _, t := range targets {
		for _, f := range requiredFields[t] {
			if c.DoIP != "" && (f == "ecu.can" || f == "ecu.ids") {
				continue // over DoIP: ecu.doip, and the ECUs' addresses declared or probed
			}
			if f == "ecu.can" && value[f].IsZero() {
				return fmt.Errorf("declaration: ecu.can (CONF_CAN) or ecu.doip (CONF_DOIP) is required to certify target %s", t)
			}
			if value[f].IsZero() {
				return fmt.Errorf("declaration: %s (%s) is required to certify target %s", f, env[f], t)
			}
		}
		if (t == "ecu" || t == "station") && c.CAN == "mem" && c.DoIP == "" {
			return fmt.Errorf("declaration: ecu.can (CONF_CAN) is mem, the kit's simulated ECUs: name the CAN interface of the ECUs, or their DoIP entity (ecu.doip, CONF_DOIP), to certify target %s", t)
		}
		if t == "kms" || t == "station" {
			if err := c.checkAuth(); err != nil {
				return err
			}
		}
	}
	c.defaults()
	c.Suites = strings.Join(suiteNames, ",")
	return nil
}

// checkTransport checks that the ECUs are reached one way: CAN (ecu.can, ecu.ids, ecu.kernel_isotp)
// or DoIP (ecu.doip, ecu.addresses, ecu.tester_address, ecu.doip_ca_file).
func (c *Config) checkTransport() error {
	if c.DoIP == "" {
		for _, f := range []struct{ name, value string }{{"ecu.addresses (CONF_ECU_ADDRESSES)", c.ECUAddresses},
			{"ecu.tester_address (CONF_TESTER_ADDRESS)", c.TesterAddress}, {"ecu.doip_ca_file (CONF_DOIP_CA_FILE)", c.DoIPCAFile}} {
			if f.value != "" {
				return fmt.Errorf("declaration: %s is for DoIP: declare ecu.doip (CONF_DOIP) too", f.name)
			}
		}
		return nil
	}
	if c.CAN != "" || c.ECUIDs != "" || c.KernelISOTP {
		return fmt.Errorf("declaration: ecu.doip (CONF_DOIP) and ecu.can, ecu.ids or ecu.kernel_isotp (CONF_CAN, CONF_ECU_IDS, CONF_KERNEL_ISOTP): declare DoIP or CAN, not both")
	}
	if _, _, err := net.SplitHostPort(c.DoIP); err != nil {
		return fmt.Errorf("declaration: ecu.doip (CONF_DOIP): %q is not HOST:PORT (e.g. 192.0.2.10:13400)", c.DoIP)
	}
	return nil
}

// checkAuth checks kms.auth and the fields it needs.
func (c *Config) checkAuth() error {
	switch c.KMSAuth {
	case "", "none":
	case "bearer":
		if c.KMSToken == "" {
			return fmt.Errorf("declaration: kms.token (CONF_KMS_TOKEN) is required with kms.auth: bearer")
		}
	case "mtls":
		if c.ClientCert == "" || c.ClientKey == "" {
			return fmt.Errorf("declaration: kms.client_cert and kms.client_key (CONF_KMS_CLIENT_CERT, CONF_KMS_CLIENT_KEY) are required with kms.auth: mtls")
		}
	default:
		return fmt.Errorf("declaration: kms.auth (CONF_KMS_AUTH): %q, want none, bearer or mtls", c.KMSAuth)
	}
	return nil
}
