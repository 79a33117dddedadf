package kms

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestAppendEnvelopeIsEncodingJSONs: an envelope is written byte for byte as encoding/json's
// Encoder writes it: omitted empty Records fields, HTML characters, quotes, backslashes,
// control characters, non-ASCII, invalid UTF-8 and U+2028 escaped alike.
func TestAppendEnvelopeIsEncodingJSONs(t *testing.T) {
	for _, env := range []Envelope{
		{ResultStatus: "Success", Records: &Records{KeyID: "1", M1: "00", M2: "0a", M3: "ff", M4: "1234", M5: "abcd"}},
		{ResultStatus: "Success", Records: &Records{KeyID: "", KeySyncValue: "00ff", Challenge: "11"}},
		{ResultStatus: "Success", Records: &Records{}},
		{ResultStatus: "OperationFailed", ResultReason: "KEYID_PARSE", ResultMessage: `KeyID "<&>\x01\\é\xff` + "\u2028\t" + `" is not hex.`},
		{ResultStatus: "OperationFailed", ResultReason: "INTERNAL", ResultMessage: "Internal error."},
		{},
	} {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(env); err != nil {
			t.Fatal(err)
		}
		if got := appendEnvelope([]byte("x"), &env); string(got) != "x"+want.String() {
			t.Errorf("%+v:\n got %s\nwant %s", env, got[1:], want.Bytes())
		}
	}
}
