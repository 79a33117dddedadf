package kms

import (
	"encoding/json"
	"net/http"
	"sync"
)

// jsonContentType is the Content-Type of every answer, shared by all of them (net/http only
// reads it).
var jsonContentType = []string{"application/json"}

// answerBuffers keeps the buffers answers are written from.
var answerBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// writeEnvelope answers env with status: the JSON encoding/json's Encoder writes for it (a
// newline after it), in one Write.
func writeEnvelope(w http.ResponseWriter, status int, env *Envelope) {
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	buf := answerBuffers.Get().(*[]byte)
	*buf = appendEnvelope((*buf)[:0], env)
	w.Write(*buf)
	if cap(*buf) <= 4<<10 {
		answerBuffers.Put(buf)
	}
}

// appendEnvelope appends env as encoding/json's Encoder writes it, field by field without
// reflection.
func appendEnvelope(b []byte, env *Envelope) []byte {
	b = appendJSONField(append(b, '{'), "ResultStatus", env.ResultStatus)
	b = appendJSONField(append(b, ','), "ResultReason", env.ResultReason)
	b = appendJSONField(append(b, ','), "ResultMessage", env.ResultMessage)
	if r := env.Records; r != nil {
		b = appendJSONField(append(b, `,"Records":{`...), "KeyID", r.KeyID)
		for _, f := range [...]struct{ name, value string }{{"M1", r.M1}, {"M2", r.M2}, {"M3", r.M3}, {"M4", r.M4},
			{"M5", r.M5}, {"KeySyncValue", r.KeySyncValue}, {"Challenge", r.Challenge}} {
			if f.value != "" { // omitempty
				b = appendJSONField(append(b, ','), f.name, f.value)
			}
		}
		b = append(b, '}')
	}
	return append(b, '}', '\n')
}

// appendJSONField appends "name":value; name is plain ASCII.
func appendJSONField(b []byte, name, value string) []byte {
	b = append(append(append(b, '"'), name...), '"', ':')
	return appendJSONString(b, value)
}

// appendJSONString appends s as a JSON string the way encoding/json writes it: a string of
// printable ASCII with nothing to escape as it is, any other by encoding/json itself (HTML
// characters, control characters, invalid UTF-8, U+2028 and U+2029 escaped).
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}
