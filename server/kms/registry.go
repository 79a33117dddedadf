package kms

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/shekit/shekit/simulator/she"
)

// Phase selects the root-key domain keys are derived in.
type Phase string

// The phases.
const (
	Prod Phase = "Prod"
	Dev  Phase = "Dev"
)

// Supplier is an ECU supplier registered with the KMS.
type Supplier struct {
	ID        uint16 // the UID's SupplierID
	Name      string
	Phase     Phase    // used when a request names none
	Phases    []Phase  // the phases its requests may name (default: Phase alone)
	SecretKey [16]byte // the SupplierSecretKey the OEM shared with it
	Token     string   // bearer token, when bearer authentication is on
}

// AllowsPhase reports whether the supplier may have keys of phase p.
func (s *Supplier) AllowsPhase(p Phase) bool {
	for _, q := range s.Phases {
		if q == p {
			return true
		}
	}
	return len(s.Phases) == 0 && p == s.Phase
}

// EcuType is a kind of ECU of one supplier.
type EcuType struct {
	Type          uint16
	AllowedKeyIDs [she.NumSlots]bool
	// Clusters are the SecOC clusters (ClusterIDs) the type's ECUs belong to: SecOC keys are
	// issued only for them. AnyCluster allows every cluster (the demo registry).
	Clusters         map[[8]byte]bool
	AnyCluster       bool
	InitialMasterKey [16]byte                       // MASTER_ECU_KEY before the first injection
	Flags            map[ProvisioningType]she.Flags // key flags per provisioning type
}

// Registry is the KMS's table of suppliers and ECU types (the document's "suppliers & ECUs").
type Registry struct {
	Suppliers map[uint16]*Supplier
	EcuTypes  map[[2]uint16]*EcuType // by (SupplierID, EcuType)
}

// DefaultFlags are the key flags per provisioning type, as the OEM document's examples carry them.
var DefaultFlags = map[ProvisioningType]she.Flags{
	EcuMasterKey:    she.BootProtection | she.DebuggerProtection | she.Wildcard,                // 01101
	SupplierSymmKey: she.BootProtection | she.DebuggerProtection | she.KeyUsage | she.Wildcard, // 01111
	SecOCKey:        she.BootProtection | she.DebuggerProtection | she.KeyUsage | she.Wildcard, // 01111
}

// DemoRegistry is the registry used when none is configured. It makes the OEM document's example
// requests work: supplier 0x001D with EcuType 0x0001 and supplier 0x0001 with EcuType 0x0003, both
// in phase Dev (and only Dev), allowing KeyIDs 1, D and 4..C in any SecOC cluster, with an all-zero
// initial master key. Their SupplierSecretKeys are demo values printed in the README.
func DemoRegistry() *Registry {
	r := &Registry{Suppliers: map[uint16]*Supplier{}, EcuTypes: map[[2]uint16]*EcuType{}}
	for _, d := range []struct {
		supplier, ecuType uint16
		name              string
		secret            byte
	}{{0x001D, 0x0001, "Demo supplier 001D", 0x1d}, {0x0001, 0x0003, "Demo supplier 0001", 0x01}} {
		s := &Supplier{ID: d.supplier, Name: d.name, Phase: Dev, Phases: []Phase{Dev}}
		for i := range s.SecretKey {
			s.SecretKey[i] = d.secret
		}
		r.Suppliers[d.supplier] = s
		t := &EcuType{Type: d.ecuType, Flags: DefaultFlags, AnyCluster: true}
		for id := she.MasterECUKey; id <= she.Key10; id++ {
			t.AllowedKeyIDs[id] = id == she.MasterECUKey || id.IsUserKey()
		}
		r.EcuTypes[[2]uint16{d.supplier, d.ecuType}] = t
	}
	return r
}

// registryFile is the file format of a registry (JSON or YAML).
type registryFile struct {
	Suppliers []supplierFile `json:"suppliers" yaml:"suppliers"`
}

type supplierFile struct {
	ID        string        `json:"id" yaml:"id"`
	Name      string        `json:"name" yaml:"name"`
	Phase     string        `json:"phase" yaml:"phase"`
	Phases    []string      `json:"phases,omitempty" yaml:"phases"`
	SecretKey string        `json:"secretKey" yaml:"secretKey"`
	Token     string        `json:"token,omitempty" yaml:"token"`
	EcuTypes  []ecuTypeFile `json:"ecuTypes" yaml:"ecuTypes"`
}

type ecuTypeFile struct {
	Type             string            `json:"type" yaml:"type"`
	KeyIDs           []string          `json:"keyIds" yaml:"keyIds"`
	Clusters         []string          `json:"clusters,omitempty" yaml:"clusters"`
	InitialMasterKey string            `json:"initialMasterKey,omitempty" yaml:"initialMasterKey"`
	Flags            map[string]string `json:"flags,omitempty" yaml:"flags"`
}

// LoadRegistry reads a registry from a .json, .yaml or .yml file.
func LoadRegistry(path string) (*Registry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r, err := ParseRegistry(data, strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), "."))
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", path, err)
	}
	return r, nil
}

// ParseRegistry reads a registry in format "json", "yaml" or "yml":
//
//	suppliers:
//	  - id: 001D                   # SupplierID, 4 hex digits
//	    name: Demo supplier
//	    phase: Dev                 # Prod or Dev: the phase of requests that name none
//	    phases: [Dev, Prod]        # optional: the phases requests may name (default: phase alone)
//	    secretKey: 1d1d…1d         # SupplierSecretKey, 32 hex digits
//	    token: …                   # bearer token (optional)
//	    ecuTypes:
//	      - type: 0001             # EcuType, 4 hex digits
//	        keyIds: [1, D, 4, 5]   # KeyIDs the type may be provisioned with
//	        clusters: [0102030405060708]  # SecOC clusters (ClusterIDs, 16 hex digits) its ECUs
//	                               # belong to; "*" for any; none: no SecOC keys
//	        initialMasterKey: 00…  # optional, default all-zero
//	        flags: {SecOCKey: 01111}  # optional, per provisioning type
func ParseRegistry(data []byte, format string) (*Registry, error) {
	var f registryFile
	var err error
	switch format {
	case "json":
		err = json.Unmarshal(data, &f)
	case "yaml", "yml":
		err = yaml.Unmarshal(data, &f)
	default:
		return nil, fmt.Errorf("registry format %q: want json or yaml", format)
	}
	if err != nil {
		return nil, err
	}
	return f.registry()
}

func parseHex16(s string) (uint16, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 16)
	return uint16(v), err
}

func parseKey(s string) ([16]byte, error) {
	var k [16]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 16 {
		return k, fmt.Errorf("key %q: want 32 hex digits", s)
	}
	return [16]byte(b), nil
}

// MarshalJSON writes the registry in the file format ParseRegistry reads. Secret keys and tokens
// are included: keep the result sealed or in a protected file.
func (r *Registry) MarshalJSON() ([]byte, error) { return json.Marshal(r.file(false)) }

// Redacted returns the registry in the file format with secret keys and tokens replaced by
// "(set)", for showing.
func (r *Registry) Redacted() any { return r.file(true) }

// file converts the registry to its file format, suppliers and types in ID order.
func (r *Registry) file(redact bool) registryFile {
	var f registryFile
	ids := make([]int, 0, len(r.Suppliers))
	for id := range r.Suppliers {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	for _, id := range ids {
		s := r.Suppliers[uint16(id)]
		fs := supplierFile{ID: fmt.Sprintf("%04X", s.ID), Name: s.Name, Phase: string(s.Phase),
			SecretKey: hex.EncodeToString(s.SecretKey[:]), Token: s.Token}
		for _, p := range s.Phases {
			fs.Phases = append(fs.Phases, string(p))
		}
		if redact {
			fs.SecretKey = "(set)"
			if fs.Token != "" {
				fs.Token = "(set)"
			}
		}
		var types []int
		for k := range r.EcuTypes {
			if k[0] == s.ID {
				types = append(types, int(k[1]))
			}
		}
		sort.Ints(types)
		for _, typ := range types {
			t := r.EcuTypes[[2]uint16{s.ID, uint16(typ)}]
			ft := ecuTypeFile{Type: fmt.Sprintf("%04X", t.Type), Flags: map[string]string{}, Clusters: t.clusterList()}
			for id := range t.AllowedKeyIDs {
				if t.AllowedKeyIDs[id] {
					ft.KeyIDs = append(ft.KeyIDs, strings.ToUpper(strconv.FormatInt(int64(id), 16)))
				}
			}
			if t.InitialMasterKey != ([16]byte{}) {
				ft.InitialMasterKey = hex.EncodeToString(t.InitialMasterKey[:])
				if redact {
					ft.InitialMasterKey = "(set)"
				}
			}
			for pt, flags := range t.Flags {
				ft.Flags[string(pt)] = flags.String()
			}
			fs.EcuTypes = append(fs.EcuTypes, ft)
		}
		f.Suppliers = append(f.Suppliers, fs)
	}
	return f
}

func (f *registryFile) registry() (*Registry, error) {
	r := &Registry{Suppliers: map[uint16]*Supplier{}, EcuTypes: map[[2]uint16]*EcuType{}}
	for _, fs := range f.Suppliers {
		id, err := parseHex16(fs.ID)
		if err != nil {
			return nil, fmt.Errorf("supplier id %q: want 4 hex digits", fs.ID)
		}
		if _, dup := r.Suppliers[id]; dup {
			return nil, fmt.Errorf("supplier %04X given twice", id)
		}
		s := &Supplier{ID: id, Name: fs.Name, Phase: Phase(fs.Phase), Token: fs.Token}
		if s.Phase != Prod && s.Phase != Dev {
			return nil, fmt.Errorf("supplier %04X: phase %q: want Prod or Dev", id, fs.Phase)
		}
		for _, p := range fs.Phases {
			if Phase(p) != Prod && Phase(p) != Dev {
				return nil, fmt.Errorf("supplier %04X: phases: %q: want Prod or Dev", id, p)
			}
			s.Phases = append(s.Phases, Phase(p))
		}
		if !s.AllowsPhase(s.Phase) {
			return nil, fmt.Errorf("supplier %04X: phase %s is not among its phases", id, s.Phase)
		}
		if s.SecretKey, err = parseKey(fs.SecretKey); err != nil {
			return nil, fmt.Errorf("supplier %04X: secretKey: %w", id, err)
		}
		r.Suppliers[id] = s
		for _, ft := range fs.EcuTypes {
			typ, err := parseHex16(ft.Type)
			if err != nil {
				return nil, fmt.Errorf("supplier %04X: ecu type %q: want 4 hex digits", id, ft.Type)
			}
			t := &EcuType{Type: typ, Flags: map[ProvisioningType]she.Flags{}}
			for k, v := range DefaultFlags {
				t.Flags[k] = v
			}
			for _, k := range ft.KeyIDs {
				n, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(k), "0x"), 16, 8)
				if err != nil || n < 1 || n > 0xD {
					return nil, fmt.Errorf("ecu type %04X: keyId %q: want 1..D", typ, k)
				}
				t.AllowedKeyIDs[n] = true
			}
			if err := t.setClusters(ft.Clusters); err != nil {
				return nil, fmt.Errorf("ecu type %04X: %w", typ, err)
			}
			if ft.InitialMasterKey != "" {
				if t.InitialMasterKey, err = parseKey(ft.InitialMasterKey); err != nil {
					return nil, fmt.Errorf("ecu type %04X: initialMasterKey: %w", typ, err)
				}
			}
			for name, bits := range ft.Flags {
				pt, ok := provisioningTypes[name]
				if !ok {
					return nil, fmt.Errorf("ecu type %04X: flags for unknown provisioning type %q", typ, name)
				}
				if t.Flags[pt], err = she.ParseFlags(bits); err != nil {
					return nil, fmt.Errorf("ecu type %04X: %w", typ, err)
				}
			}
			key := [2]uint16{id, typ}
			if _, dup := r.EcuTypes[key]; dup {
				return nil, fmt.Errorf("ecu type %04X of supplier %04X given twice", typ, id)
			}
			r.EcuTypes[key] = t
		}
	}
	return r, r.validate()
}

// validate checks what holds across suppliers: no two suppliers share a bearer token (which one
// a request counts as would then vary). The error names the suppliers, never the token.
func (r *Registry) validate() error {
	owner := map[string]uint16{}
	ids := make([]int, 0, len(r.Suppliers))
	for id := range r.Suppliers {
		ids = append(ids, int(id))
	}
	sort.Ints(ids)
	for _, id := range ids {
		s := r.Suppliers[uint16(id)]
		if s.Token == "" {
			continue
		}
		if other, dup := owner[s.Token]; dup {
			return fmt.Errorf("suppliers %04X and %04X have the same token: give each its own", other, s.ID)
		}
		owner[s.Token] = s.ID
	}
	return nil
}

// AllowsCluster reports whether the type's ECUs belong to the SecOC cluster.
func (t *EcuType) AllowsCluster(cluster [8]byte) bool { return t.AnyCluster || t.Clusters[cluster] }

// setClusters reads the clusters of the file format: ClusterIDs of 16 hex digits, or "*".
func (t *EcuType) setClusters(list []string) error {
	t.Clusters = map[[8]byte]bool{}
	for _, c := range list {
		if c == "*" {
			t.AnyCluster = true
			continue
		}
		b, err := hex.DecodeString(c)
		if err != nil || len(b) != 8 {
			return fmt.Errorf("cluster %q: want 16 hex digits or *", c)
		}
		t.Clusters[[8]byte(b)] = true
	}
	return nil
}

// clusterList writes the clusters in the file format, sorted.
func (t *EcuType) clusterList() []string {
	var out []string
	if t.AnyCluster {
		out = append(out, "*")
	}
	for c := range t.Clusters {
		out = append(out, strings.ToUpper(hex.EncodeToString(c[:])))
	}
	sort.Strings(out)
	return out
}
