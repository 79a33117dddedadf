package conformance_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/shekit/shekit/openapi/kmswire"
	"github.com/shekit/shekit/vectors"
)

// TestVectorsForTarget: the message replays' requests are made for the configured supplier and
// EcuType, fresh on each call, keeping each vector's defect; messages follow the substitutions.
func TestVectorsForTarget(t *testing.T) {
	savedConf, savedKeys := conf, confKeys
	t.Cleanup(func() { conf, confKeys = savedConf, savedKeys })
	// A supplier whose secret is the one the vectors use as a wrong one.
	conf.SupplierKey = "01010101010101010101010101010101"
	confKeys.uidPrefix = [4]byte{0x00, 0x42, 0x00, 0xAB}

	f, err := vectors.Load("kms-errors.json")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]kmsErrorVector{}
	for _, r := range f.Records {
		var v kmsErrorVector
		if err := r.Decode(&v); err != nil {
			t.Fatal(err)
		}
		byID[r.ID] = v
	}
	field := func(body json.RawMessage, name string) string {
		var m map[string]string
		json.Unmarshal(body, &m)
		return m[name]
	}
	uidOf := func(body json.RawMessage) string {
		id, ok := kmswire.ParseEcuID(field(body, "EcuID"))
		if !ok {
			t.Fatalf("EcuID of %s", body)
		}
		return strings.ToUpper(id.UID.String())
	}

	for id, prefix := range map[string]string{"result-twice": "004200AB", "doc-supplierid-not-registerd": "0042003D",
		"ecutype-not-registerd": "000900AB", "doc-required-keyid": "004200AB"} {
		if got := uidOf(byID[id].forTarget().Body); !strings.HasPrefix(got, prefix) {
			t.Errorf("%s: UID %s, want it to start with %s", id, got, prefix)
		}
	}
	twice := byID["result-twice"]
	a, b := twice.forTarget(), twice.forTarget()
	if uidOf(a.Body) == uidOf(b.Body) {
		t.Errorf("two runs of result-twice use one UID %s", uidOf(a.Body))
	}
	for _, before := range a.Before {
		if field(before.Body, "EcuID") != field(a.Body, "EcuID") {
			t.Errorf("result-twice: before %s names another ECU than %s", before.Body, a.Body)
		}
	}
	wrong := byID["secret-wrong-key"].forTarget()
	if s := field(wrong.Body, "SupplierSecretKey"); s == conf.SupplierKey || len(s) != 32 ||
		wrong.Expect.ResultMessage != "The SupplierSecretKey:"+s+" is not registerd." {
		t.Errorf("secret-wrong-key: secret %s, message %q", s, wrong.Expect.ResultMessage)
	}
	if s := field(byID["counter-parse"].forTarget().Body, "SupplierSecretKey"); s != conf.SupplierKey {
		t.Errorf("counter-parse: SupplierSecretKey %s, want the configured one", s)
	}
	for id, want := range map[string]string{"secret-prefix-16": "0101010101010101", "secret-prefix-31": "0101010101010101010101010101010",
		"secret-one-nibble": "01010100010101010101010101010101"} {
		v := byID[id].forTarget()
		if s := field(v.Body, "SupplierSecretKey"); s != want || v.Expect.ResultMessage != "The SupplierSecretKey:"+want+" is not registerd." {
			t.Errorf("%s: secret %s, message %q; want %s", id, s, v.Expect.ResultMessage, want)
		}
	}
	short := byID["ecuid-as-printed-53"]
	if got := short.forTarget(); string(got.Body) != string(short.Body) || got.Expect != short.Expect {
		t.Errorf("a malformed EcuID changed: %s", got.Body)
	}
}
