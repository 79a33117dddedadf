package clm_test

import (
	"testing"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/vectors"
)

// TestCodeTableMatchesTheVectors: the server's errorcode → HTTP status table is the document's,
// as vectors/clm-errorcodes.json transcribes it: the same codes, each with the same status.
func TestCodeTableMatchesTheVectors(t *testing.T) {
	f, err := vectors.Load("clm-errorcodes.json")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]int{}
	for _, r := range f.Records {
		var v struct {
			Errorcode int
			HTTP      int `json:"http"`
		}
		if err := r.Decode(&v); err != nil {
			t.Fatal(err)
		}
		want[v.Errorcode] = v.HTTP
	}
	got := clm.Codes()
	if len(want) < 40 {
		t.Fatalf("the vector file holds %d codes", len(want))
	}
	for code, status := range want {
		if s, ok := got[code]; !ok || s != status {
			t.Errorf("errorcode %d: the server answers status %d (listed %v), the document %d", code, s, ok, status)
		}
	}
	for code := range got {
		if _, ok := want[code]; !ok {
			t.Errorf("errorcode %d is not in the document's table", code)
		}
	}
}
