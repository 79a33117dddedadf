package profile

import (
	"bytes"
	"encoding/hex"
	"errors"
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

func TestBuiltinProfiles(t *testing.T) {
	var names []string
	for _, p := range Builtin() {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, " "); got != "shekit-default did-canfd doip-default extended-seedkey" {
		t.Fatalf("Builtin() = %s", got)
	}
	for _, name := range names {
		p, err := Find(name)
		if err != nil || p.Name != name {
			t.Fatalf("Find(%s) = %v, %v", name, p, err)
		}
	}
	if _, err := Find("nope"); err == nil || !strings.Contains(err.Error(), "have shekit-default, did-canfd, doip-default, extended-seedkey") {
		t.Fatalf("Find(nope) = %v", err)
	}
}

// Every step of every built-in operation survives encode and decode, both ways.
func TestBuiltinRoundTrip(t *testing.T) {
	for _, p := range Builtin() {
		for _, name := range OpNames {
			op := p.Operations[name]
			if op == nil {
				t.Errorf("%s has no %s", p.Name, name)
				continue
			}
			for _, st := range op.Steps {
				roundTrip(t, st, filled(st.Request), filled(st.Response))
			}
		}
	}
}

var (
	m1, m2, m3 = seq(0x10, 16), seq(0x20, 32), seq(0x40, 16)
	m4, m5     = seq(0x80, 32), seq(0xA0, 16)
)

const (
	m123Hex = "101112131415161718191A1B1C1D1E1F" +
		"202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F" +
		"404142434445464748494A4B4C4D4E4F"
	m45Hex = "808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9F" +
		"A0A1A2A3A4A5A6A7A8A9AAABACADAEAF"
)

// The DID profile's LoadKey: the CRCs are CRC-16/CCITT-FALSE of the record, computed apart.
func TestDIDCANFDLoadKeyBytes(t *testing.T) {
	p, _ := Find("did-canfd")
	ids := p.Addressing.IDs()
	if ids.Request != 0x18DA4AF1 || ids.Response != 0x18DAF14A || !ids.Extended || !p.Link.FD || p.Link.TxDL != 64 || !p.Link.BRS {
		t.Fatalf("did-canfd addressing %+v link %+v", ids, p.Link)
	}
	steps := p.Operations[LoadKey].Steps
	req, err := steps[0].EncodeRequest(Values{"M1": m1, "M2": m2, "M3": m3})
	if want := unhex(t, "2E 0E 10"+m123Hex+"2E B1"); err != nil || !bytes.Equal(req, want) {
		t.Fatalf("write % X, %v\nwant % X", req, err, want)
	}
	if req, err = steps[1].EncodeRequest(nil); err != nil || !bytes.Equal(req, unhex(t, "22 0E 11")) {
		t.Fatalf("read % X, %v", req, err)
	}
	resp := unhex(t, "62 0E 11 00"+m45Hex+"F1 62")
	v, err := steps[1].DecodeResponse(resp)
	if err != nil || !bytes.Equal(v["M4"], m4) || !bytes.Equal(v["M5"], m5) {
		t.Fatalf("DecodeResponse = %v, %v", v, err)
	}
	resp[10] ^= 0x01
	if _, err := steps[1].DecodeResponse(resp); !errors.Is(err, ErrContent) {
		t.Fatalf("a changed M4 byte: %v, want ErrContent (CRC)", err)
	}
}

// The extended-addressing profile's LoadKey is a download.
func TestExtendedSeedkeyLoadKeyBytes(t *testing.T) {
	p, _ := Find("extended-seedkey")
	ids := p.Addressing.IDs()
	if ids.Request != 0x6F1 || ids.Response != 0x640 || !bytes.Equal(ids.RequestPrefix, []byte{0x40}) ||
		!bytes.Equal(ids.ResponsePrefix, []byte{0xF1}) || p.Link.Pad || p.Link.FD {
		t.Fatalf("extended-seedkey addressing %+v link %+v", ids, p.Link)
	}
	steps := p.Operations[LoadKey].Steps
	want := []struct{ req, resp string }{
		{"34 00 24 00 FF 00 00 00 40", "74 20 00 42"},
		{"36 01" + m123Hex, "76 01"},
		{"37", "77 00" + m45Hex},
	}
	in := Values{"M1": m1, "M2": m2, "M3": m3}
	out := Values{"ERC": {0}, "M4": m4, "M5": m5}
	for i, st := range steps {
		req, err := st.EncodeRequest(in)
		if err != nil || !bytes.Equal(req, unhex(t, want[i].req)) {
			t.Fatalf("step %d request % X, %v, want %s", i, req, err, want[i].req)
		}
		resp, err := st.EncodeResponse(out)
		if err != nil || !bytes.Equal(resp, unhex(t, want[i].resp)) {
			t.Fatalf("step %d answer % X, %v, want %s", i, resp, err, want[i].resp)
		}
	}
	if resp, err := steps[2].EncodeResponse(Values{"ERC": {0x06}}); err != nil || !bytes.Equal(resp, unhex(t, "77 06")) {
		t.Fatalf("ERC_KEY_WRITE_PROTECTED: % X, %v, want 77 06", resp, err)
	}
}

func TestStepFor(t *testing.T) {
	p := Default()
	op, st, ok := p.StepFor(unhex(t, "31 01 FD 12 00"))
	if !ok || op.Name != VerifyMAC || st.ID != 0xFD12 {
		t.Fatalf("StepFor(31 01 FD 12) = %v, %v, %v", op, st, ok)
	}
	if _, _, ok := p.StepFor(unhex(t, "31 01 FD 14")); ok {
		t.Fatal("StepFor found an unknown routine")
	}
}
