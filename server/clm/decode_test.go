package clm

import (
	"encoding/json"
	"strings"
	"testing"
)

// decodeBySteps is what decode read before its fast path for plain strings: every value through
// encoding/json (a string without U+0000, else a number's digits).
func decodeBySteps(v json.RawMessage) (string, bool) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s, !strings.ContainsRune(s, 0)
	}
	var n json.Number
	if json.Unmarshal(v, &n) == nil {
		return n.String(), true
	}
	return "", false
}

// TestDecodeReadsValuesAsEncodingJSON: every kind of value a body's parameter or ext_data item
// may hold reads as encoding/json reads it (escapes, U+0000, invalid UTF-8, numbers, null, other
// JSON), padded with whitespace or not.
func TestDecodeReadsValuesAsEncodingJSON(t *testing.T) {
	values := []string{`"plain"`, `""`, `"日本語"`, `"a\"b"`, `"a\\b"`, `"\u0041"`, `"\u0000"`, `"a\u0000b"`,
		"\"\xff\xfe\"", "\"ok\xc3\"", `"/tmp/key"`, `"<&>"`, `128`, `-1.5e3`, `0`, `null`, `true`, `[1]`, `{"a":"b"}`}
	for _, v := range values {
		for _, body := range []string{`{"p":` + v + `,"ext_data":{"e":` + v + `}}`, "{ \"p\" :\n " + v + " , \"ext_data\" : { \"e\" : " + v + " } }"} {
			r, e := decode(strings.NewReader(body))
			want, ok := decodeBySteps(json.RawMessage(v))
			if v == "null" {
				want, ok = "", true
			}
			if !ok {
				if e == nil || e.Code != codeParameter {
					t.Errorf("%s: %+v %v, want errorcode %d", body, r, e, codeParameter)
				}
				continue
			}
			if e != nil || r.f["p"] != want || r.ext["e"] != want {
				t.Errorf("%s: p %q ext %q (%v), want %q", body, r.f["p"], r.ext["e"], e, want)
			}
		}
	}
}
