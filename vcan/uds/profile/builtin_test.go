package profile

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// seq returns n bytes start, start+1, ….
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

func TestBuiltinListsDefaultFirst(t *testing.T) {
	ps := Builtin()
	if len(ps) < 1 || ps[0].Name != "shekit-default" {
		t.Fatalf("Builtin()[0] = %v, want shekit-default first", ps)
	}
	for _, p := range ps {
		if p.Source != "builtin:"+p.Name {
			t.Errorf("%s: Source %q", p.Name, p.Source)
		}
	}
}

// The default profile's LoadKey, byte for byte as README's table has it.
func TestDefaultLoadKeyBytes(t *testing.T) {
	op := Default().Operations[LoadKey]
	if len(op.Steps) != 1 || op.Session != 0x03 || !op.Security {
		t.Fatalf("LoadKey = %+v", op)
	}
	st := op.Steps[0]
	in := Values{"M1": seq(0x10, 16), "M2": seq(0x20, 32), "M3": seq(0x40, 16)}
	req, err := st.EncodeRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, "31 01 FD 10"+
		"101112131415161718191A1B1C1D1E1F"+
		"202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F"+
		"404142434445464748494A4B4C4D4E4F")
	if !bytes.Equal(req, want) {
		t.Fatalf("request\n% X\nwant\n% X", req, want)
	}
	got, err := st.DecodeRequest(req)
	if err != nil || !bytes.Equal(got["M2"], in["M2"]) || len(got) != 3 {
		t.Fatalf("DecodeRequest = %v, %v", got, err)
	}
	out := Values{"ERC": {0}, "M4": seq(0x80, 32), "M5": seq(0xA0, 16)}
	resp, err := st.EncodeResponse(out)
	if err != nil {
		t.Fatal(err)
	}
	wantResp := unhex(t, "71 01 FD 10 00"+
		"808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9F"+
		"A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")
	if !bytes.Equal(resp, wantResp) {
		t.Fatalf("answer\n% X\nwant\n% X", resp, wantResp)
	}
	back, err := st.DecodeResponse(resp)
	if err != nil || !bytes.Equal(back["M4"], out["M4"]) || !bytes.Equal(back["M5"], out["M5"]) || back["ERC"][0] != 0 {
		t.Fatalf("DecodeResponse = %v, %v", back, err)
	}
}
