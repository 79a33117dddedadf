package profile

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/shekit/shekit/vcan/uds"
)

// fakeECU answers each expected request with its answer, in order, and records what it got.
type fakeECU struct {
	t     *testing.T
	pairs [][2]string // request, answer (hex); an answer "NRC xx" is a NegativeResponseError
	n     int
}

func (f *fakeECU) exchange(_ context.Context, req []byte) ([]byte, error) {
	f.t.Helper()
	if f.n >= len(f.pairs) {
		f.t.Fatalf("unexpected request % X", req)
	}
	p := f.pairs[f.n]
	f.n++
	if want := unhex(f.t, p[0]); !bytes.Equal(req, want) {
		f.t.Fatalf("request % X, want % X", req, want)
	}
	if len(p[1]) == 6 && p[1][:4] == "NRC " {
		return nil, &uds.NegativeResponseError{SID: req[0], NRC: uds.NRC(unhex(f.t, p[1][4:])[0])}
	}
	return unhex(f.t, p[1]), nil
}

func TestRunDIDLoadKey(t *testing.T) {
	p, _ := Find("did-canfd")
	ecu := &fakeECU{t: t, pairs: [][2]string{
		{"2E 0E 10" + m123Hex + "2E B1", "6E 0E 10"},
		{"22 0E 11", "62 0E 11 00" + m45Hex + "F1 62"},
	}}
	out, err := p.Operations[LoadKey].Run(context.Background(), ecu.exchange, Values{"M1": m1, "M2": m2, "M3": m3})
	if err != nil || !bytes.Equal(out["M4"], m4) || !bytes.Equal(out["M5"], m5) || ecu.n != 2 {
		t.Fatalf("Run = %v, %v after %d exchanges", out, err, ecu.n)
	}
}

func TestRunStopsAtASHEError(t *testing.T) {
	p, _ := Find("extended-seedkey")
	ecu := &fakeECU{t: t, pairs: [][2]string{
		{"31 01 02 02" + m123Hex[:32], "71 01 02 02"},
		{"31 03 02 02", "NRC 72"}, // ERC_MEMORY_FAILURE
	}}
	out, err := p.Operations[GetID].Run(context.Background(), ecu.exchange, Values{"Challenge": m1})
	if erc, ok := out.ERC(); err != nil || !ok || erc != 0x0B || len(out) != 1 {
		t.Fatalf("Run = %v, %v, want only ERC_MEMORY_FAILURE", out, err)
	}
	ecu = &fakeECU{t: t, pairs: [][2]string{{"31 01 02 02" + m123Hex[:32], "NRC 33"}}}
	_, err = p.Operations[GetID].Run(context.Background(), ecu.exchange, Values{"Challenge": m1})
	var nre *uds.NegativeResponseError
	if !errors.As(err, &nre) || nre.NRC != uds.SecurityAccessDenied {
		t.Fatalf("Run = %v, want NRC 0x33", err)
	}
	if _, err := p.Operations[GetID].Run(context.Background(), ecu.exchange, nil); !errors.Is(err, ErrMissing) {
		t.Fatalf("Run without a challenge = %v, want ErrMissing", err)
	}
}
