package profile

import (
	"io/fs"
	"testing"
)

// FuzzParse: any input is a profile or an *Error, never a panic; a profile it accepts encodes and
// decodes every step's request and answer.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Add([]byte(doipBase))
	entries, _ := fs.ReadDir(builtinFS, "builtin")
	for _, e := range entries {
		data, _ := builtinFS.ReadFile("builtin/" + e.Name())
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("f.yaml", data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse error %T %v, want *Error", err, err)
			}
			return
		}
		for _, op := range p.Operations {
			for _, st := range op.Steps {
				roundTrip(t, st, filled(st.Request), filled(st.Response))
			}
		}
	})
}

// filled gives every field of a layout a value.
func filled(l Layout) Values {
	v := Values{}
	for _, it := range l {
		if it.Kind == FieldItem {
			v[it.Field] = seq(byte(len(it.Field)), l.FieldSize(it.Field))
		}
	}
	if _, ok := v["ERC"]; ok {
		v["ERC"] = []byte{0}
	}
	return v
}

// roundTrip encodes a request and an answer and decodes them back, checking every value.
func roundTrip(t *testing.T, st *Step, in, out Values) {
	t.Helper()
	req, err := st.EncodeRequest(in)
	if err != nil {
		t.Fatalf("EncodeRequest: %v", err)
	}
	got, err := st.DecodeRequest(req)
	if err != nil || !sameValues(got, in) {
		t.Fatalf("DecodeRequest(% X) = %v, %v, want %v", req, got, err, in)
	}
	resp, err := st.EncodeResponse(out)
	if err != nil {
		t.Fatalf("EncodeResponse: %v", err)
	}
	back, err := st.DecodeResponse(resp)
	if err != nil || !sameValues(back, out) {
		t.Fatalf("DecodeResponse(% X) = %v, %v, want %v", resp, back, err, out)
	}
}

func sameValues(a, b Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if string(b[k]) != string(v) {
			return false
		}
	}
	return true
}

// FuzzDecode: any bytes given to any built-in step's decoders are values or an error, never a
// panic; values decoded from a request encode back to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x31, 0x01, 0xFD, 0x10}, uint8(1))
	f.Add([]byte{0x62, 0x0E, 0x11, 0x07}, uint8(7))
	f.Add([]byte{0x7F, 0x31, 0x72}, uint8(1))
	var steps []*Step
	for _, p := range Builtin() {
		for _, name := range OpNames {
			steps = append(steps, p.Operations[name].Steps...)
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte, i uint8) {
		st := steps[int(i)%len(steps)]
		st.DecodeResponse(msg)
		v, err := st.DecodeRequest(msg)
		if err != nil {
			return
		}
		again, err := st.EncodeRequest(v)
		if err != nil || string(again) != string(msg) {
			t.Fatalf("request % X decoded to %v, encoded back to % X, %v", msg, v, again, err)
		}
	})
}
