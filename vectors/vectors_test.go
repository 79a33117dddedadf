package vectors

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestEveryFileLoads(t *testing.T) {
	names := Files()
	if len(names) < 3 {
		t.Fatalf("embedded files: %v", names)
	}
	for _, name := range names {
		f, err := Load(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Records) == 0 {
			t.Errorf("%s: no records", name)
		}
	}
	if _, err := Load("missing.json"); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ name, data, want string }{
		{"not JSON", `[`, "unexpected end"},
		{"no schema", `{"vectors":[]}`, "no schema"},
		{"no id", `{"schema":"s","vectors":[{"type":"t","source":"s"}]}`, `"id"`},
		{"empty type", `{"schema":"s","vectors":[{"id":"a","type":"","source":"s"}]}`, `"type"`},
		{"type not a string", `{"schema":"s","vectors":[{"id":"a","type":1,"source":"s"}]}`, `"type"`},
		{"no source", `{"schema":"s","vectors":[{"id":"a","type":"t"}]}`, `"source"`},
		{"duplicate id", `{"schema":"s","vectors":[{"id":"a","type":"t","source":"s"},{"id":"a","type":"t","source":"s"}]}`, "duplicate id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.json", []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %s", err, tc.want)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	f, err := Parse("x.json", []byte(`{"schema":"s","vectors":[{"id":"a","type":"t","source":"s","counter":7}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		ID      string
		Counter int
	}
	if err := f.Records[0].Decode(&v); err != nil || v.ID != "a" || v.Counter != 7 {
		t.Fatalf("decoded %+v, %v", v, err)
	}
	var wrong struct{ Counter string }
	if err := f.Records[0].Decode(&wrong); err == nil {
		t.Fatal("decoding a number into a string succeeded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"schema":"s","vectors":[{"id":"a","type":"t","source":"s"}]}`))
	f.Add([]byte(`{"schema":"s","defaults":{"uid":"00"},"vectors":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz.json", data)
		if err != nil {
			return
		}
		for _, r := range file.Records {
			if r.ID == "" || r.Type == "" || r.Source == "" {
				t.Fatalf("accepted a record without id, type or source: %+v", r)
			}
		}
	})
}

func TestLoadMemoryUpdate(t *testing.T) {
	// The OEM document's MasterECUKey example, as printed there (M1 and M5).
	u, err := LoadMemoryUpdate("oem-doc-a-master-ecu-key")
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(u.M1[:]) != "000300010000000000000000000002"+"11" ||
		hex.EncodeToString(u.M5[:]) != "adf3b9cb4e14a5cb60899f1a4a59feb2" || u.UID[14] != 0x02 {
		t.Errorf("%x %x %x", u.UID, u.M1, u.M5)
	}
	if _, err := LoadMemoryUpdate("no-such-record"); err == nil || !strings.Contains(err.Error(), "no record") {
		t.Errorf("missing record: %v", err)
	}
}
