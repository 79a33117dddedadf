package kms

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// fields is a request body: its string fields (a number is taken as its digits).
type fields map[string]string

// decode reads a request body: a JSON object of at most maxBody bytes. A flat object of plain
// ASCII strings and integers (what every client sends) is read by scanFields; anything else by
// encoding/json, with the same result.
func decode(r *http.Request) (fields, *Error) {
	buf := bodyBuffers.Get().(*[]byte)
	body, err := readBody(r.Body, (*buf)[:0])
	defer releaseBody(buf, body) // the fields are copies
	if err != nil {
		return nil, fail("NOT_JSON")
	}
	if f, ok := scanFields(body); ok {
		return f, nil
	}
	return decodeFields(body)
}

// bodyBuffers keeps the buffers request bodies are read into (up to maxBody bytes each).
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// releaseBody returns buf to bodyBuffers, now holding body's array, with body's bytes cleared
// first: a body may carry a secret (SupplierSecretKey), which a pooled buffer must not keep.
func releaseBody(buf *[]byte, body []byte) {
	clear(body)
	*buf = body[:0]
	bodyBuffers.Put(buf)
}

// readBody appends at most maxBody bytes of body to buf, as io.ReadAll of an io.LimitReader would.
func readBody(body io.Reader, buf []byte) ([]byte, error) {
	for len(buf) < maxBody {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):min(cap(buf), maxBody)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// decodeFields reads a body with encoding/json: the first JSON value, which must be an object;
// its string fields and the digits of its number fields.
func decodeFields(body []byte) (fields, *Error) {
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&raw); err != nil || raw == nil {
		return nil, fail("NOT_JSON")
	}
	f := fields{}
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			f[k] = s
			continue
		}
		var n json.Number
		if err := json.Unmarshal(v, &n); err == nil {
			f[k] = n.String()
		}
	}
	return f, nil
}

// scanFields reads a body that is one flat JSON object whose keys and values are strings of
// printable ASCII without escapes, or integers, with nothing but whitespace around it; for any
// other body it reports false (decodeFields then reads it).
func scanFields(b []byte) (fields, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	f := make(fields, 8)
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return f, skipSpace(b, i+1) == len(b)
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return nil, false
		}
		if i = skipSpace(b, j); i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipSpace(b, i+1)
		var value string
		if value, j, ok = plainString(b, i); !ok {
			if value, j, ok = integer(b, i); !ok {
				return nil, false
			}
		}
		f[key] = value
		switch i = skipSpace(b, j); {
		case i < len(b) && b[i] == ',':
			i = skipSpace(b, i+1)
		case i < len(b) && b[i] == '}':
			return f, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

// skipSpace returns the index of the first byte from i on that is not JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// commonStrings are the field names and values of most requests: a body's copy of one is not
// allocated.
var commonStrings = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{"ProvisioningType", "EcuID", "KeyID", "SupplierSecretKey", "Counter", "Challenge", "Phase",
		"ResultStatus", "ResultMessage", "Success", "OperationFailed", "EcuMasterKey", "SupplierSymmKey", "SecOCKey",
		"1", "4", "5", "6", "7", "8", "9", "A", "B", "C", "D", "", "Prod", "Dev"} {
		m[s] = s
	}
	return m
}()

// interned returns b as a string: one of commonStrings when it is one, else a copy.
func interned(b []byte) string {
	if s, ok := commonStrings[string(b)]; ok { // the conversion is not allocated
		return s
	}
	return string(b)
}

// plainString reads a JSON string at i made of printable ASCII without escapes, and returns it
// and the index after it.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return interned(b[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return "", i, false
		}
	}
	return "", i, false
}

// integer reads a JSON integer at i (-?(0|[1-9][0-9]*), not followed by a fraction or an
// exponent) and returns its text and the index after it.
func integer(b []byte, i int) (string, int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	start := j
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	digits := j - start
	if digits == 0 || (digits > 1 && b[start] == '0') || (j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E')) {
		return "", i, false
	}
	return string(b[i:j]), j, true
}
