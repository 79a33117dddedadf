package kmswire

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestEcuID: the document's EcuID (corrected to 54 characters) reads as ClusterID | Model | UID,
// in either case, and is written back in lowercase; other lengths and non-hex are refused.
func TestEcuID(t *testing.T) {
	const doc = "0102030405060708010203040001001D0102030405060708090A0B"
	id, ok := ParseEcuID(doc)
	if !ok {
		t.Fatal("the document's EcuID was refused")
	}
	if id.ClusterID != [8]byte{1, 2, 3, 4, 5, 6, 7, 8} || id.Model != [4]byte{1, 2, 3, 4} ||
		id.UID.String() != "0001001d0102030405060708090a0b" {
		t.Errorf("parsed %+v", id)
	}
	if id.String() != strings.ToLower(doc) {
		t.Errorf("String() = %s", id.String())
	}
	for _, bad := range []string{doc[:53], doc + "0", "zz" + doc[2:]} {
		if _, ok := ParseEcuID(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestRecords: the document's SupplierSymmKey answer (no KeyID in Records) decodes, with M1–M5
// of their sizes; a short M-value is refused with its name.
func TestRecords(t *testing.T) {
	answer := `{"ResultStatus":"Success","ResultReason":"","ResultMessage":"","RequestID":"x","Records":{
		"M1":"0001001d0102030405060708090a0b01","M2":"c723139a9975ad356707be66689de4cb4be6b9564b06bdc220c3b5328677d02b",
		"M3":"0ccae90a3fc9b4ea06a578f58710d488","M4":"0001001d0102030405060708090a0b01b472e8d8727d70d57295e74849a27917",
		"M5":"0ee0763aec1f41ce57bdd33bf9fe6e36"}}`
	var env Envelope
	if err := json.Unmarshal([]byte(answer), &env); err != nil || env.Records == nil {
		t.Fatalf("decode: %v", err)
	}
	m, err := env.Records.Messages()
	if err != nil || m.M1[15] != 0x01 || m.M5[0] != 0x0e {
		t.Errorf("messages %x, %v", m.M1, err)
	}
	env.Records.M3 = "0cca"
	if _, err := env.Records.Messages(); err == nil || !strings.Contains(err.Error(), "M3") {
		t.Errorf("short M3: %v", err)
	}
}

func TestGetIDAnswerRoundTrip(t *testing.T) {
	a := GetIDAnswer{Challenge: [16]byte{0xf6, 0xda}, SREG: 0x3E, MAC: [16]byte{15: 0xAB}}
	const want = "GET_ID Challenge=f6da0000000000000000000000000000 SREG=3e MAC=000000000000000000000000000000ab"
	if got := a.String(); got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if got, ok := ParseGetIDAnswer(strings.ToUpper(want[:7]) + strings.ToUpper(want[7:])); ok {
		t.Fatalf("upper-case field names parsed: %+v", got)
	}
	if got, ok := ParseGetIDAnswer("GET_ID Challenge=F6DA0000000000000000000000000000 SREG=3E MAC=000000000000000000000000000000AB"); !ok || got != a {
		t.Fatalf("ParseGetIDAnswer of upper-case hex: %+v, %v", got, ok)
	}
	for _, bad := range []string{"", "GetID: MAC mismatch", want[:len(want)-2], want + " x",
		"GET_ID Challenge=f6da0000000000000000000000000000 SREG=3e3e MAC=000000000000000000000000000000ab",
		"GET_ID SREG=3e Challenge=f6da0000000000000000000000000000 MAC=000000000000000000000000000000ab"} {
		if got, ok := ParseGetIDAnswer(bad); ok {
			t.Errorf("ParseGetIDAnswer(%q) = %+v", bad, got)
		}
	}
}
