package kms

import (
	"bytes"
	"io"
	"maps"
	"testing"
	"testing/iotest"
)

// decodeCorpus are bodies the scanner reads itself and bodies it must leave to encoding/json.
var decodeCorpus = []string{
	`{"ProvisioningType":"EcuMasterKey","KeyID":"1","EcuID":"0102030405060708010203040003000100000000000000000000000002"}`,
	` { "KeyID" : 1 , "Counter": 0, "n": -12 } `,
	`{}`, ` {} `, `{"a":""}`, `{"a":"x","a":"y"}`, `{"a":"x","a":null}`, `{"a":null,"a":"x"}`,
	`{"a":"\u0041"}`, `{"a":"\n"}`, `{"a\"b":"c"}`, `{"a":"é"}`, "{\"a\":\"\xff\"}", `{"a":"\t"}`,
	`{"a":1.5}`, `{"a":1e3}`, `{"a":01}`, `{"a":-0}`, `{"a":-}`, `{"a":+1}`, `{"a":12x}`,
	`{"a":true}`, `{"a":[1,2]}`, `{"a":{"b":"c"}}`, `{"a":"b"} trailing`, `{"a":"b"}{"c":"d"}`,
	`{"a":"b",}`, `{"a" "b"}`, `{"a":"b"`, `{a:"b"}`, `[]`, `null`, `"x"`, ``, `  `, `{`,
	`{"a":"b"}` + "\n", `{"KeyID":"1",  "EcuID" :"01"}`,
}

// TestScanFieldsAgreesWithEncodingJSON: decode (the scanner, or encoding/json for what the
// scanner leaves) gives what encoding/json alone gives, and the scanner takes the plain bodies.
func TestScanFieldsAgreesWithEncodingJSON(t *testing.T) {
	scanned := 0
	for _, body := range decodeCorpus {
		want, wantErr := decodeFields([]byte(body))
		got, ok := scanFields([]byte(body))
		if !ok {
			got, _ = decodeFields([]byte(body))
		} else {
			scanned++
		}
		if ok && wantErr != nil {
			t.Errorf("%q: scanner read %v, encoding/json refuses it (%v)", body, got, wantErr.Reason)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%q: %v, encoding/json reads %v", body, got, want)
		}
	}
	if scanned < 9 {
		t.Errorf("the scanner read %d bodies of the corpus, want the 9 plain ones", scanned)
	}
	f, ok := scanFields([]byte(` { "KeyID" : 1 , "Counter": 0, "n": -12, "s":"x y" } `))
	if want := (fields{"KeyID": "1", "Counter": "0", "n": "-12", "s": "x y"}); !ok || !maps.Equal(f, want) {
		t.Errorf("scanned %v %v, want %v", f, ok, want)
	}
}

// FuzzScanFields: on any body, the scanner either leaves it to encoding/json or reads what
// encoding/json reads.
func FuzzScanFields(f *testing.F) {
	for _, body := range decodeCorpus {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, ok := scanFields(body)
		if !ok {
			return
		}
		want, err := decodeFields(body)
		if err != nil || !maps.Equal(got, want) {
			t.Fatalf("%q: scanned %v, encoding/json reads %v (%v)", body, got, want, err)
		}
	})
}

// TestReadBodyIsReadAllOfLimitReader: a body is read as io.ReadAll of an io.LimitReader of
// maxBody bytes reads it, whatever its size and however its reads are cut, into a buffer of any
// size.
func TestReadBodyIsReadAllOfLimitReader(t *testing.T) {
	for _, size := range []int{0, 1, 511, 512, 513, 4096, maxBody - 1, maxBody, maxBody + 1, 3 * maxBody} {
		body := bytes.Repeat([]byte("0123456789abcdef"), size/16+1)[:size]
		want, _ := io.ReadAll(io.LimitReader(bytes.NewReader(body), maxBody))
		for _, cut := range []func(io.Reader) io.Reader{func(r io.Reader) io.Reader { return r }, iotest.HalfReader, iotest.OneByteReader} {
			for _, buf := range [][]byte{nil, make([]byte, 0, 7), []byte("junk")[:0]} {
				got, err := readBody(cut(bytes.NewReader(body)), buf)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("size %d: %d bytes (%v), want %d", size, len(got), err, len(want))
				}
			}
		}
	}
	if _, err := readBody(iotest.ErrReader(io.ErrUnexpectedEOF), nil); err == nil {
		t.Fatal("a failed read is no error")
	}
}

// TestReleaseBodyClearsIt: a body buffer goes back to the pool with the body's bytes cleared (it
// may have carried a SupplierSecretKey) and its array kept.
func TestReleaseBodyClearsIt(t *testing.T) {
	b := make([]byte, 0, 64)
	body, _ := readBody(bytes.NewReader([]byte(`{"SupplierSecretKey":"000102030405060708090a0b0c0d0e0f"}`)), b)
	buf := &b
	releaseBody(buf, body)
	if !bytes.Equal(body, make([]byte, len(body))) {
		t.Fatalf("a released body still holds %q", body)
	}
	if len(*buf) != 0 || cap(*buf) != cap(body) {
		t.Fatalf("the released buffer: len %d cap %d, want 0 and %d", len(*buf), cap(*buf), cap(body))
	}
}
