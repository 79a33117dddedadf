// Package vectors embeds the project's test vectors and decodes them.
//
// Each file is data, not code, so that another implementation can read the same vectors:
//
//   - she-reference.json: SHE vectors (AES, CMAC, MP compression, KDF, the memory update protocol,
//     GET_ID, debug authorization, RAM key export, PRNG), each naming its source and status. It
//     includes the SHE specification's memory update example and the three provisioning examples of
//     the OEM key-management document, with their transcription typos corrected.
//   - she-engine-rules.json: the SHE engine's rules (CMD_LOAD_KEY's checks in order, key usage,
//     secure boot, PRNG and debug sequencing), each with the error code the specification gives.
//
// Every record carries an "id", a "type" and a "source".
package vectors

import (
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

//go:embed *.json
var files embed.FS

// Record is one vector: its identity and its fields, still raw, to be decoded by whoever runs it.
type Record struct {
	ID     string
	Type   string
	Source string
	Fields map[string]json.RawMessage
}

// File is the content of one vector file.
type File struct {
	Name      string
	Schema    string
	Constants map[string]string
	Defaults  map[string]json.RawMessage // values records fall back on, as the file's description says
	Sections  map[string]json.RawMessage // every top-level field, raw
	Records   []Record
}

// Files lists the names of the embedded vector files.
func Files() []string {
	entries, _ := files.ReadDir(".")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Load reads and decodes the embedded vector file name.
func Load(name string) (*File, error) {
	data, err := files.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("vectors: %w", err)
	}
	return Parse(name, data)
}

// Parse decodes a vector file: an object with "schema", optional "constants" and "vectors", an
// array of records with at least "id", "type" and "source".
func Parse(name string, data []byte) (*File, error) {
	var raw struct {
		Schema    string                       `json:"schema"`
		Constants map[string]string            `json:"constants"`
		Defaults  map[string]json.RawMessage   `json:"defaults"`
		Vectors   []map[string]json.RawMessage `json:"vectors"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("vectors: %s: %w", name, err)
	}
	if raw.Schema == "" {
		return nil, fmt.Errorf("vectors: %s: no schema", name)
	}
	f := &File{Name: name, Schema: raw.Schema, Constants: raw.Constants, Defaults: raw.Defaults}
	if err := json.Unmarshal(data, &f.Sections); err != nil {
		return nil, fmt.Errorf("vectors: %s: %w", name, err)
	}
	seen := make(map[string]bool, len(raw.Vectors))
	for i, v := range raw.Vectors {
		var r Record
		for key, dst := range map[string]*string{"id": &r.ID, "type": &r.Type, "source": &r.Source} {
			if err := json.Unmarshal(v[key], dst); err != nil || *dst == "" {
				return nil, fmt.Errorf("vectors: %s: record %d: missing string field %q", name, i, key)
			}
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("vectors: %s: duplicate id %q", name, r.ID)
		}
		seen[r.ID] = true
		r.Fields = v
		f.Records = append(f.Records, r)
	}
	return f, nil
}

// Decode unmarshals the whole record into v, a struct with json tags for the fields it needs.
func (r Record) Decode(v any) error {
	data, err := json.Marshal(r.Fields)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("vectors: %s: %w", r.ID, err)
	}
	return nil
}

// MemoryUpdate is one SHE memory update of she-reference.json: the messages M1–M5 for the SHE
// with UID and the key they carry.
type MemoryUpdate struct {
	UID    [15]byte
	M1     [16]byte
	M2     [32]byte
	M3     [16]byte
	M4     [32]byte
	M5     [16]byte
	NewKey [16]byte
}

// LoadMemoryUpdate reads the record id of she-reference.json as a memory update.
func LoadMemoryUpdate(id string) (MemoryUpdate, error) {
	var u MemoryUpdate
	f, err := Load("she-reference.json")
	if err != nil {
		return u, err
	}
	for _, r := range f.Records {
		if r.ID != id {
			continue
		}
		var v struct {
			UID                string `json:"uid"`
			M1, M2, M3, M4, M5 string
			NewKey             string `json:"new_key"`
		}
		if err := r.Decode(&v); err != nil {
			return u, err
		}
		for _, f := range []struct {
			name, hex string
			dst       []byte
		}{{"uid", v.UID, u.UID[:]}, {"M1", v.M1, u.M1[:]}, {"M2", v.M2, u.M2[:]}, {"M3", v.M3, u.M3[:]},
			{"M4", v.M4, u.M4[:]}, {"M5", v.M5, u.M5[:]}, {"new_key", v.NewKey, u.NewKey[:]}} {
			b, err := hex.DecodeString(f.hex)
			if err != nil || len(b) != len(f.dst) {
				return u, fmt.Errorf("vectors: %s: %s is not %d bytes of hex", id, f.name, len(f.dst))
			}
			copy(f.dst, b)
		}
		return u, nil
	}
	return u, fmt.Errorf("vectors: no record %s in she-reference.json", id)
}
