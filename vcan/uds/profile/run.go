package profile

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/shekit/shekit/vcan/uds"
)

// Exchange sends one request and returns its answer, as (*uds.Client).Do does: a negative
// answer may come back as a *uds.NegativeResponseError.
type Exchange func(ctx context.Context, req []byte) ([]byte, error)

// Run is the tester's side of an operation: it sends the steps in order, each request built
// from in and the values earlier answers brought back, and returns what the answers brought back.
// It stops at the first answer whose ERC is not zero (that answer's values hold only the ERC,
// which the caller checks with Values.ERC). Session and SecurityAccess are the caller's.
func (op *Operation) Run(ctx context.Context, exchange Exchange, in Values) (Values, error) {
	have := maps.Clone(in)
	if have == nil {
		have = Values{}
	}
	out := Values{}
	for i, st := range op.Steps {
		req, err := st.EncodeRequest(have)
		if err != nil {
			return nil, fmt.Errorf("%s step %d: %w", op.Name, i, err)
		}
		resp, err := exchange(ctx, req)
		var nre *uds.NegativeResponseError
		if errors.As(err, &nre) {
			resp, err = uds.Negative(nre.SID, nre.NRC), nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s step %d: %w", op.Name, i, err)
		}
		got, err := st.DecodeResponse(resp)
		if err != nil {
			return nil, fmt.Errorf("%s step %d: %w", op.Name, i, err)
		}
		maps.Copy(out, got)
		maps.Copy(have, got)
		if erc, ok := got.ERC(); ok && erc != 0 {
			return Values{"ERC": {byte(erc)}}, nil
		}
	}
	return out, nil
}
