package kms

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
)

// fields is a request body: its string fields (a number is taken as its digits).
type fields map[string]string

// decode reads a request body: a JSON object of at most maxBody bytes. A flat object of plain
// ASCII strings and integers (what every client sends) is read by scanFields; anything else by
// encoding/json, with the same result.
func decode(r *http.Request) (fields, *Error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return nil, fail("NOT_JSON")
	}
	if f, ok := scanFields(body); ok {
		return f, nil
	}
	return decodeFields(body)
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

// plainString reads a JSON string at i made of printable ASCII without escapes, and returns it
// and the index after it.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
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
