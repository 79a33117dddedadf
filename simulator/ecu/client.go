package ecu

import (
	"context"
	"fmt"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
)

// Client is the tester side of a simulated (or real) ECU's SHE diagnostic interface.
type Client struct {
	*uds.Client
	t isotp.Transport
}

// NewClient returns a client on transport t.
func NewClient(t isotp.Transport, opts ...uds.ClientOption) *Client {
	return &Client{Client: uds.NewClient(t, opts...), t: t}
}

// Dial returns a client of the ECU that listens on request and answers on response, on the bus
// of dial (user-space ISO-TP; IDs above 0x7FF are 29-bit).
func Dial(dial Dialer, request, response uint32, opts ...isotp.Option) (*Client, error) {
	t, err := Transport(dial, request, response, opts...)
	if err != nil {
		return nil, err
	}
	return NewClient(t), nil
}

// Close closes the client's transport.
func (c *Client) Close() error { return c.t.Close() }

// Prepare enters the extended session and unlocks SecurityAccess level 01 with securityKey
// (key = AES-CMAC(securityKey, seed)); nil skips SecurityAccess.
func (c *Client) Prepare(ctx context.Context, securityKey *[16]byte) error {
	if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
		return err
	}
	if securityKey == nil {
		return nil
	}
	return c.Unlock(ctx, 0x01, func(seed []byte) []byte {
		k := she.CMAC(*securityKey, seed)
		return k[:]
	})
}

// UID reads the SHE UID (DID 0xFD00).
func (c *Client) UID(ctx context.Context) (she.UID, error) {
	b, err := c.ReadDID(ctx, DIDUID)
	if err != nil {
		return she.UID{}, err
	}
	if len(b) != 15 {
		return she.UID{}, fmt.Errorf("ecu: UID of %d bytes", len(b))
	}
	return she.UID(b), nil
}

// Status reads the SHE status register (DID 0xFD01).
func (c *Client) Status(ctx context.Context) (she.Status, error) {
	b, err := c.ReadDID(ctx, DIDSREG)
	if err != nil {
		return 0, err
	}
	if len(b) != 1 {
		return 0, fmt.Errorf("ecu: SREG of %d bytes", len(b))
	}
	return she.Status(b[0]), nil
}

// LoadKeyResult is the outcome of the LoadKey routine.
type LoadKeyResult struct {
	ERC she.ERC
	M4  [32]byte // when ERC is ERC_NO_ERROR
	M5  [16]byte
}

// routine runs rid and checks that the record is ERC alone or ERC followed by okLen bytes.
func (c *Client) routine(ctx context.Context, rid uint16, in []byte, okLen int) (she.ERC, []byte, error) {
	rec, err := c.StartRoutine(ctx, rid, in)
	if err != nil {
		return 0, nil, err
	}
	return parseRecord(rid, rec, okLen)
}

// parseRecord checks that a routine's status record is ERC alone or ERC followed by okLen bytes.
func parseRecord(rid uint16, rec []byte, okLen int) (she.ERC, []byte, error) {
	if len(rec) == 0 {
		return 0, nil, fmt.Errorf("ecu: routine %#04x answered no ERC", rid)
	}
	erc := she.ERC(rec[0])
	switch {
	case erc == she.NoError && len(rec) != 1+okLen:
		return 0, nil, fmt.Errorf("ecu: routine %#04x: %d bytes after ERC_NO_ERROR, want %d", rid, len(rec)-1, okLen)
	case erc != she.NoError && len(rec) != 1:
		return 0, nil, fmt.Errorf("ecu: routine %#04x: %d bytes after %v, want none", rid, len(rec)-1, erc)
	}
	return erc, rec[1:], nil
}

// LoadKey sends M1 | M2 | M3 to the SHE (routine 0xFD10).
func (c *Client) LoadKey(ctx context.Context, m1 [16]byte, m2 [32]byte, m3 [16]byte) (LoadKeyResult, error) {
	in := append(append(append(make([]byte, 0, 64), m1[:]...), m2[:]...), m3[:]...)
	return loadKeyResult(c.routine(ctx, RIDLoadKey, in, 48))
}

func loadKeyResult(erc she.ERC, out []byte, err error) (LoadKeyResult, error) {
	if err != nil || erc != she.NoError {
		return LoadKeyResult{ERC: erc}, err
	}
	return LoadKeyResult{ERC: erc, M4: [32]byte(out[:32]), M5: [16]byte(out[32:])}, nil
}

// GetIDResult is the outcome of the GetID routine.
type GetIDResult struct {
	ERC  she.ERC
	UID  she.UID
	SREG she.Status
	MAC  [16]byte
}

// GetID runs CMD_GET_ID with challenge (routine 0xFD11).
func (c *Client) GetID(ctx context.Context, challenge [16]byte) (GetIDResult, error) {
	return getIDResult(c.routine(ctx, RIDGetID, challenge[:], 32))
}

func getIDResult(erc she.ERC, out []byte, err error) (GetIDResult, error) {
	if err != nil || erc != she.NoError {
		return GetIDResult{ERC: erc}, err
	}
	return GetIDResult{ERC: erc, UID: she.UID(out[:15]), SREG: she.Status(out[15]), MAC: [16]byte(out[16:])}, nil
}

// VerifyMAC runs CMD_VERIFY_MAC over a 16-byte message with the key in slot id (routine 0xFD12).
func (c *Client) VerifyMAC(ctx context.Context, id she.KeyID, msg, mac [16]byte) (erc she.ERC, verified bool, err error) {
	in := append(append([]byte{byte(id)}, msg[:]...), mac[:]...)
	return verifyResult(c.routine(ctx, RIDVerifyMAC, in, 1))
}

func verifyResult(erc she.ERC, out []byte, err error) (she.ERC, bool, error) {
	if err != nil || erc != she.NoError {
		return erc, false, err
	}
	if out[0] > 1 {
		return 0, false, fmt.Errorf("ecu: VerifyMAC result %#02x", out[0])
	}
	return erc, out[0] == 0, nil
}

// GenerateMAC runs CMD_GENERATE_MAC over a 16-byte message with the key in slot id (routine
// 0xFD13).
func (c *Client) GenerateMAC(ctx context.Context, id she.KeyID, msg [16]byte) (she.ERC, [16]byte, error) {
	erc, out, err := c.routine(ctx, RIDGenerateMAC, append([]byte{byte(id)}, msg[:]...), 16)
	if err != nil || erc != she.NoError {
		return erc, [16]byte{}, err
	}
	return erc, [16]byte(out), nil
}
