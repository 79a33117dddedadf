package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/shekit/shekit/vectors"
)

// loadKeyVector is a she_load_key record of vectors/she-reference.json.
type loadKeyVector struct {
	UID                string `json:"uid"`
	KeyID              int    `json:"key_id"`
	AuthID             int    `json:"auth_id"`
	AuthKey            string `json:"auth_key"`
	NewKey             string `json:"new_key"`
	Counter            uint32
	Flags5             int `json:"flags_5bit"`
	M1, M2, M3, M4, M5 string
}

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

// TestCalculatorReproducesPublishedExamples runs m1m5, open and verify on every memory update
// vector: the SHE specification's example and the OEM document's three examples.
func TestCalculatorReproducesPublishedExamples(t *testing.T) {
	f, err := vectors.Load("she-reference.json")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, r := range f.Records {
		if r.Type != "she_load_key" {
			continue
		}
		ran++
		t.Run(r.ID, func(t *testing.T) {
			var v loadKeyVector
			if err := r.Decode(&v); err != nil {
				t.Fatal(err)
			}
			flags := fmt.Sprintf("%05b", v.Flags5)
			keyID := fmt.Sprintf("0x%X", v.KeyID) // hex on one flag, decimal on the other
			out, errOut, code := runCLI(t, "she", "m1m5", "--uid", v.UID, "--key-id", keyID,
				"--auth-id", fmt.Sprint(v.AuthID), "--auth-key", v.AuthKey, "--new-key", v.NewKey,
				"--counter", fmt.Sprint(v.Counter), "--flags", flags)
			if code != 0 {
				t.Fatalf("m1m5: exit %d: %s", code, errOut)
			}
			want := fmt.Sprintf(`{"M1":%q,"M2":%q,"M3":%q,"M4":%q,"M5":%q}`+"\n", v.M1, v.M2, v.M3, v.M4, v.M5)
			if out != want {
				t.Fatalf("m1m5 printed\n%s want\n%s", out, want)
			}

			out, errOut, code = runCLI(t, "she", "open", "--auth-key", v.AuthKey, "--m1", v.M1, "--m2", v.M2, "--m3", v.M3)
			if code != 0 {
				t.Fatalf("open: exit %d: %s", code, errOut)
			}
			want = fmt.Sprintf(`{"uid":%q,"keyId":%d,"authId":%d,"counter":%d,"flags":%q,"newKey":%q,"m3Valid":true}`+"\n",
				v.UID, v.KeyID, v.AuthID, v.Counter, flags, v.NewKey)
			if out != want {
				t.Fatalf("open printed\n%s want\n%s", out, want)
			}

			out, errOut, code = runCLI(t, "she", "verify", "--new-key", v.NewKey, "--m4", v.M4, "--m5", v.M5)
			if code != 0 || out != fmt.Sprintf(`{"m5Valid":true,"counter":%d}`+"\n", v.Counter) {
				t.Fatalf("verify: exit %d, printed %s%s", code, out, errOut)
			}
		})
	}
	if ran != 4 {
		t.Fatalf("ran %d memory update vectors, want the SHE example and the document's three", ran)
	}
}

func TestCalculatorReportsInvalidMessages(t *testing.T) {
	// The document's MasterECUKey example opened with a wrong authorizing key, and its M5 checked
	// against another key.
	out, _, code := runCLI(t, "she", "open", "--auth-key", "01000000000000000000000000000000",
		"--m1", "00030001000000000000000000000211",
		"--m2", "83a6957a7c21c35c9bf9083c09c728fa8ebb3965805bfe8f9fd6b88b7fcf8df4",
		"--m3", "1eae814952a1ad6f9efc2e0c20378c3d")
	var o struct{ M3Valid *bool }
	if code != 0 || json.Unmarshal([]byte(out), &o) != nil || o.M3Valid == nil || *o.M3Valid {
		t.Fatalf("open with the wrong key: exit %d, %s", code, out)
	}
	out, _, code = runCLI(t, "she", "verify", "--new-key", "39e6354ee40d0ab487025fb5db08a769",
		"--m4", "000300010000000000000000000002119d65cbf811941c12318183fce05f9880",
		"--m5", "adf3b9cb4e14a5cb60899f1a4a59feb2")
	if code != 0 || !strings.HasPrefix(out, `{"m5Valid":false,`) {
		t.Fatalf("verify with the wrong key: exit %d, %s", code, out)
	}
}

func TestCalculatorBadInput(t *testing.T) {
	good := map[string]string{"--uid": "000300010000000000000000000002", "--key-id": "1", "--auth-id": "1",
		"--auth-key": "00000000000000000000000000000000", "--new-key": "39e6354ee40d0ab487025fb5db08a768",
		"--counter": "1", "--flags": "01101"}
	m1m5 := func(change map[string]string) []string {
		args := []string{"she", "m1m5"}
		for _, k := range []string{"--uid", "--key-id", "--auth-id", "--auth-key", "--new-key", "--counter", "--flags"} {
			v, ok := change[k]
			if !ok {
				v = good[k]
			}
			if v != "-" {
				args = append(args, k, v)
			}
		}
		return args
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"odd hex", m1m5(map[string]string{"--auth-key": "000"}), "--auth-key: not hex"},
		{"short UID", m1m5(map[string]string{"--uid": "0003"}), "--uid: want 15 bytes"},
		{"long key", m1m5(map[string]string{"--new-key": "39e6354ee40d0ab487025fb5db08a76800"}), "--new-key: want 16 bytes"},
		{"KeyID 16", m1m5(map[string]string{"--key-id": "16"}), "--key-id"},
		{"KeyID 0x10", m1m5(map[string]string{"--key-id": "0x10"}), "--key-id"},
		{"AuthID not a number", m1m5(map[string]string{"--auth-id": "one"}), "--auth-id"},
		{"counter beyond 28 bits", m1m5(map[string]string{"--counter": "268435456"}), "--counter"},
		{"flags of four bits", m1m5(map[string]string{"--flags": "0110"}), "--flags"},
		{"missing flag", m1m5(map[string]string{"--new-key": "-"}), "--new-key is required"},
		{"unknown flag", append(m1m5(nil), "--bogus", "1"), "bogus"},
		{"stray argument", append(m1m5(nil), "extra"), "unexpected argument"},
		{"open: short M2", []string{"she", "open", "--auth-key", "00000000000000000000000000000000", "--m1", "00030001000000000000000000000211", "--m2", "83a6", "--m3", "1eae814952a1ad6f9efc2e0c20378c3d"}, "--m2: want 32 bytes"},
		{"verify: bad M5", []string{"she", "verify", "--new-key", "39e6354ee40d0ab487025fb5db08a768", "--m4", "000300010000000000000000000002119d65cbf811941c12318183fce05f9880", "--m5", "xx"}, "--m5: not hex"},
		{"unknown subcommand", []string{"she", "m6"}, "unknown subcommand"},
		{"unknown command", []string{"ecu2"}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runCLI(t, tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if out != "" {
				t.Errorf("printed %q on standard output", out)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Errorf("standard error %q: want one line mentioning %q", errOut, tc.want)
			}
		})
	}
}
