package uds

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shekit/shekit/vcan/isotp"
)

// ErrTimeout is returned when the server does not answer within P2 (or P2* after a response
// pending).
var ErrTimeout = errors.New("uds: no response in time")

// Client sends UDS requests over a transport, one at a time.
type Client struct {
	t      isotp.Transport
	p2     time.Duration
	p2Star time.Duration
	margin time.Duration
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithTiming sets the server's P2 and P2* the client starts with (DiagnosticSessionControl
// responses update them) and the margin it adds for transport and scheduling delays (the
// ΔP2 of ISO 14229-2; default 50 ms).
func WithTiming(p2, p2Star, margin time.Duration) ClientOption {
	return func(c *Client) { c.p2, c.p2Star, c.margin = p2, p2Star, margin }
}

// NewClient returns a client on t.
func NewClient(t isotp.Transport, opts ...ClientOption) *Client {
	c := &Client{t: t, p2: DefaultP2, p2Star: DefaultP2Star, margin: 50 * time.Millisecond}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Timing returns the P2 and P2* the client currently uses.
func (c *Client) Timing() (p2, p2Star time.Duration) { return c.p2, c.p2Star }

// Do sends req and returns the positive response. It waits P2 for the first answer and P2* after
// each response pending (NRC 0x78); a negative response is a *NegativeResponseError. With the
// suppress-positive-response bit set in req's sub-function, Do returns nil once req is sent (a
// late negative response to it is skipped by the next Do, which matches answers by service).
func (c *Client) Do(ctx context.Context, req []byte) ([]byte, error) {
	if len(req) == 0 {
		return nil, errors.New("uds: empty request")
	}
	sid := req[0]
	if err := c.t.Send(ctx, req); err != nil {
		return nil, fmt.Errorf("uds: send %#02x: %w", sid, err)
	}
	if SuppressesPositiveResponse(req) {
		return nil, nil
	}
	wait := c.p2
	for {
		rctx, cancel := context.WithTimeout(ctx, wait+c.margin)
		resp, err := c.t.Receive(rctx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			return nil, fmt.Errorf("%w: service %#02x after %v", ErrTimeout, sid, wait+c.margin)
		case err != nil:
			return nil, fmt.Errorf("uds: receive %#02x: %w", sid, err)
		}
		if rsid, nrc, ok := ParseNegative(resp); ok && rsid == sid {
			if nrc == ResponsePending {
				wait = c.p2Star
				continue
			}
			return nil, &NegativeResponseError{SID: sid, NRC: nrc}
		}
		if IsPositive(resp, sid) {
			return resp, nil
		}
		// A response to something else (a late answer to an abandoned request) is skipped.
	}
}

// StartSession switches to session and adopts the P2 and P2* the server reports.
func (c *Client) StartSession(ctx context.Context, session byte) error {
	resp, err := c.Do(ctx, []byte{DiagnosticSessionControl, session})
	if err != nil {
		return err
	}
	if len(resp) != 6 || resp[1] != session {
		return fmt.Errorf("uds: malformed session response % x", resp)
	}
	c.p2 = time.Duration(uint16(resp[2])<<8|uint16(resp[3])) * time.Millisecond
	c.p2Star = time.Duration(uint16(resp[4])<<8|uint16(resp[5])) * 10 * time.Millisecond
	return nil
}

// Reset requests ECUReset of the given type.
func (c *Client) Reset(ctx context.Context, resetType byte) error {
	_, err := c.Do(ctx, []byte{ECUReset, resetType})
	return err
}

// Unlock runs SecurityAccess at an odd level: request the seed, answer key(seed). A zero seed
// means the level is already unlocked.
func (c *Client) Unlock(ctx context.Context, level byte, key func(seed []byte) []byte) error {
	resp, err := c.Do(ctx, []byte{SecurityAccess, level})
	if err != nil {
		return err
	}
	if len(resp) < 3 || resp[1] != level {
		return fmt.Errorf("uds: SecurityAccess %#02x answered % x, not a seed for that level", level, resp)
	}
	seed := resp[2:]
	if allZero(seed) {
		return nil
	}
	_, err = c.Do(ctx, append([]byte{SecurityAccess, level + 1}, key(seed)...))
	return err
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// ReadDID reads one data identifier.
func (c *Client) ReadDID(ctx context.Context, did uint16) ([]byte, error) {
	resp, err := c.Do(ctx, []byte{ReadDataByIdentifier, byte(did >> 8), byte(did)})
	if err != nil {
		return nil, err
	}
	if len(resp) < 3 || uint16(resp[1])<<8|uint16(resp[2]) != did {
		return nil, fmt.Errorf("uds: malformed response to DID %#04x: % x", did, resp)
	}
	return resp[3:], nil
}

// StartRoutine runs RoutineControl startRoutine for rid with data and returns the routine's
// status record.
func (c *Client) StartRoutine(ctx context.Context, rid uint16, data []byte) ([]byte, error) {
	req := append([]byte{RoutineControl, 0x01, byte(rid >> 8), byte(rid)}, data...)
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if len(resp) < 4 || resp[1] != 0x01 || uint16(resp[2])<<8|uint16(resp[3]) != rid {
		return nil, fmt.Errorf("uds: malformed response to routine %#04x: % x", rid, resp)
	}
	return resp[4:], nil
}

// TesterPresent keeps a non-default session alive; suppress asks for no answer.
func (c *Client) TesterPresent(ctx context.Context, suppress bool) error {
	sub := byte(0)
	if suppress {
		sub = SuppressPositiveResponse
	}
	_, err := c.Do(ctx, []byte{TesterPresent, sub})
	return err
}
