package ecu

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// ErrNotInProfile is returned by an operation the client's diagnostic profile does not define.
var ErrNotInProfile = errors.New("ecu: the diagnostic profile does not define this operation")

// Client is the tester side of a simulated (or real) ECU's SHE diagnostic interface, as a
// diagnostic profile describes it (default: profile.Default(), the kit's own).
//
// After Prepare the client keeps each operation in the session its profile names: it switches
// session (and unlocks SecurityAccess again) when an operation needs another one than the client
// last entered; an operation of the default session is sent in whichever session is active.
// An operation refused with NRC 0x7F, 0x7E or 0x33 (the ECU's session ended after S3, or it
// locked again) is sent once more after entering its session anew. Without Prepare, or once the
// caller changes session, resets the ECU or unlocks it itself (StartSession, Reset, Unlock),
// operations are sent as they are, in whatever state the ECU is.
type Client struct {
	*uds.Client
	t    isotp.Transport
	prof *profile.Profile

	managed     bool // Prepare was called and the caller has not taken sessions over since
	session     byte // the session the client last entered
	unlocked    bool // SecurityAccess is unlocked in that session
	security    bool // Prepare was given a key: operations that need SecurityAccess unlock it
	securityKey [16]byte
	seedKey     profile.KeyFunc // the external seed/key command, once started
	closeSeed   func() error
}

// NewClient returns a client, on transport t, of an ECU that speaks the default diagnostic
// profile.
func NewClient(t isotp.Transport, opts ...uds.ClientOption) *Client {
	return NewProfileClient(t, defaultDiagProfile(), opts...)
}

// NewProfileClient returns a client, on transport t, of an ECU that speaks diagnostic profile p.
// It starts with the profile's P2 and P2*; opts come after (a WithTiming there wins).
func NewProfileClient(t isotp.Transport, p *profile.Profile, opts ...uds.ClientOption) *Client {
	opts = append([]uds.ClientOption{uds.WithTiming(p.Link.P2, p.Link.P2Star, 50*time.Millisecond)}, opts...)
	return &Client{Client: uds.NewClient(t, opts...), t: t, prof: p}
}

// DiagProfile returns the client's diagnostic profile.
func (c *Client) DiagProfile() *profile.Profile { return c.prof }

// Dial returns a client of the ECU that listens on request and answers on response, on the bus
// of dial (user-space ISO-TP; IDs above 0x7FF are 29-bit), speaking the default profile.
func Dial(dial Dialer, request, response uint32, opts ...isotp.Option) (*Client, error) {
	t, err := Transport(dial, request, response, opts...)
	if err != nil {
		return nil, err
	}
	return NewClient(t), nil
}

// DialProfile returns a client, on the bus of dial, of the ECU that diagnostic profile p
// addresses at ids (normally p.Addressing.IDs()), on the profile's link: 29-bit IDs, CAN FD,
// padding and the minimum frame length, BS and STmin, N_As/N_Bs/N_Cr, the address byte of
// extended and mixed addressing, and P2 and P2*. opts come after the profile's ISO-TP options.
func DialProfile(dial Dialer, p *profile.Profile, ids profile.CANIDs, opts ...isotp.Option) (*Client, error) {
	t, err := ProfileTransport(dial, p, ids, opts...)
	if err != nil {
		return nil, err
	}
	return NewProfileClient(t, p), nil
}

// ProfileTransport opens the user-space ISO-TP transport of DialProfile: a tester's, on the bus
// of dial, to the ECU at ids on profile p's link; opts come after the profile's options.
func ProfileTransport(dial Dialer, p *profile.Profile, ids profile.CANIDs, opts ...isotp.Option) (isotp.Transport, error) {
	conn, err := dial(vcan.ExactID(ids.Response, ids.Extended))
	if err != nil {
		return nil, err
	}
	return isotp.New(conn, ids.Request, ids.Response, append(DiagTesterOptions(p, ids), opts...)...), nil
}

// DiagTesterOptions are the ISO-TP options of a tester that reaches an ECU at ids on profile p's link.
func DiagTesterOptions(p *profile.Profile, ids profile.CANIDs) []isotp.Option {
	l := p.Link
	opts := []isotp.Option{isotp.WithFlowControl(l.BlockSize, l.STmin), isotp.WithTimeouts(l.NAs, l.NBs, l.NCr)}
	if ids.Extended {
		opts = append(opts, isotp.WithExtendedIDs())
	}
	if l.FD {
		opts = append(opts, isotp.WithCANFD(l.TxDL, l.BRS))
	}
	if l.Pad {
		opts = append(opts, isotp.WithPadding(l.PadByte), isotp.WithMinFrameLength(l.MinFrameLength))
	} else {
		opts = append(opts, isotp.WithoutPadding())
	}
	if len(ids.RequestPrefix) == 1 && len(ids.ResponsePrefix) == 1 {
		opts = append(opts, isotp.WithAddressExtension(ids.RequestPrefix[0], ids.ResponsePrefix[0]))
	}
	return opts
}

// Close closes the client's transport and removes the copy of a built-in seed/key script.
func (c *Client) Close() error {
	err := c.t.Close()
	if c.closeSeed != nil {
		err = errors.Join(err, c.closeSeed())
		c.seedKey, c.closeSeed = nil, nil
	}
	return err
}

// Prepare enters the session of the profile's LoadKey and, when LoadKey needs it, unlocks
// SecurityAccess at the profile's level: with an aes-cmac profile key = AES-CMAC(securityKey,
// seed), with an external one the profile's command computes the key (securityKey only says
// to unlock). nil skips SecurityAccess. From then on the client keeps each operation in its
// session (see Client).
func (c *Client) Prepare(ctx context.Context, securityKey *[16]byte) error {
	c.managed, c.session, c.unlocked, c.security = true, 0, false, securityKey != nil
	if securityKey != nil {
		c.securityKey = *securityKey
	}
	return c.enter(ctx, c.prof.Operations[profile.LoadKey], true)
}

// enter puts the ECU in op's session and unlocks it when op needs SecurityAccess. always enters
// the session even when it is the default one or the one the client last entered.
func (c *Client) enter(ctx context.Context, op *profile.Operation, always bool) error {
	if always || (op.Session != uds.DefaultSession && op.Session != c.session) {
		c.session, c.unlocked = 0, false
		if err := c.Client.StartSession(ctx, op.Session); err != nil {
			return err
		}
		c.session = op.Session
	}
	if !op.Security || !c.security || c.unlocked || c.prof.Security.Algorithm == profile.AlgorithmNone {
		return nil
	}
	if err := c.unlock(ctx); err != nil {
		return err
	}
	c.unlocked = true
	return nil
}

// unlock runs SecurityAccess at the profile's level: request the seed, send key(seed). A zero
// seed means the level is already unlocked.
func (c *Client) unlock(ctx context.Context) error {
	level := c.prof.Security.Level
	resp, err := c.Do(ctx, []byte{uds.SecurityAccess, level})
	if err != nil {
		return err
	}
	if len(resp) < 3 || resp[1] != level {
		return fmt.Errorf("ecu: SecurityAccess %#02x answered % x, not a seed for that level", level, resp)
	}
	seed := resp[2:]
	if allZero(seed) {
		return nil
	}
	key, err := c.keyFor(ctx, seed)
	if err != nil {
		return fmt.Errorf("ecu: SecurityAccess %#02x: %w", level, err)
	}
	_, err = c.Do(ctx, append([]byte{uds.SecurityAccess, level + 1}, key...))
	return err
}

// keyFor computes the SecurityAccess key for seed by the profile's algorithm.
func (c *Client) keyFor(ctx context.Context, seed []byte) ([]byte, error) {
	if c.prof.Security.Algorithm != profile.AlgorithmExternal {
		k := she.CMAC(c.securityKey, seed)
		return k[:], nil
	}
	if c.seedKey == nil {
		f, closeFn, err := c.prof.SeedKey()
		if err != nil {
			return nil, err
		}
		c.seedKey, c.closeSeed = f, closeFn
	}
	return c.seedKey(ctx, seed)
}

func allZero(b []byte) bool {
	for _, v := range b {
		if v != 0 {
			return false
		}
	}
	return true
}

// StartSession switches to session and adopts the P2 and P2* the server reports; the caller
// then drives sessions and SecurityAccess until the next Prepare.
func (c *Client) StartSession(ctx context.Context, session byte) error {
	c.managed = false
	return c.Client.StartSession(ctx, session)
}

// Reset requests ECUReset of the given type; the caller then drives sessions and SecurityAccess
// until the next Prepare.
func (c *Client) Reset(ctx context.Context, resetType byte) error {
	c.managed = false
	return c.Client.Reset(ctx, resetType)
}

// Unlock runs SecurityAccess at an odd level with key(seed); the caller then drives sessions and
// SecurityAccess until the next Prepare.
func (c *Client) Unlock(ctx context.Context, level byte, key func(seed []byte) []byte) error {
	c.managed = false
	return c.Client.Unlock(ctx, level, key)
}

// run runs the profile's operation name with in, in its session after Prepare. A negative answer
// is returned as the *uds.NegativeResponseError it is, even when the profile's errors.nrc or
// errors.other_nrc says which SHE error code it carries, so that a caller tells a refusal of the
// service (which it may try again) from an ERC in an answer.
func (c *Client) run(ctx context.Context, name profile.OpName, in profile.Values) (profile.Values, error) {
	op := c.prof.Operations[name]
	if op == nil {
		return nil, fmt.Errorf("%w: %s (profile %s)", ErrNotInProfile, name, c.prof.Name)
	}
	if c.managed {
		if err := c.enter(ctx, op, false); err != nil {
			return nil, err
		}
	}
	out, err := c.runOnce(ctx, op, in)
	if c.managed && op.Session != uds.DefaultSession && leftSession(err) {
		// The ECU left the session (S3 passed: the station was busy with the KMS) or locked
		// again: enter it anew, once.
		if err := c.enter(ctx, op, true); err != nil {
			return nil, err
		}
		out, err = c.runOnce(ctx, op, in)
	}
	return out, err
}

// leftSession reports whether err is the refusal of an ECU that is not in the session, or not
// unlocked, the client put it in: NRC 0x7F, 0x7E or 0x33.
func leftSession(err error) bool {
	var nr *uds.NegativeResponseError
	return errors.As(err, &nr) && (nr.NRC == uds.ServiceNotSupportedInActiveSession ||
		nr.NRC == uds.SubFunctionNotSupportedInActiveSession || nr.NRC == uds.SecurityAccessDenied)
}

// runOnce runs op with in as it is.
func (c *Client) runOnce(ctx context.Context, op *profile.Operation, in profile.Values) (profile.Values, error) {
	var negative error // the last answer, when it was negative
	exchange := func(ctx context.Context, req []byte) ([]byte, error) {
		resp, err := c.Do(ctx, req)
		negative = nil
		if isNegative(err) {
			negative = err
		}
		return resp, err
	}
	out, err := op.Run(ctx, exchange, in)
	switch {
	case negative != nil:
		return nil, negative // also when the profile maps its NRC to an ERC: an NRC stays an NRC
	case err != nil:
		return nil, fmt.Errorf("ecu: %w", err)
	}
	return out, nil
}

// isNegative reports whether err is a negative response.
func isNegative(err error) bool {
	var nr *uds.NegativeResponseError
	return errors.As(err, &nr)
}

// Enter puts the ECU, after Prepare, in the session of the profile's operation name and unlocks
// SecurityAccess when it needs it, as the operation itself would; without Prepare it does nothing.
func (c *Client) Enter(ctx context.Context, name profile.OpName) error {
	op := c.prof.Operations[name]
	if op == nil {
		return fmt.Errorf("%w: %s (profile %s)", ErrNotInProfile, name, c.prof.Name)
	}
	if !c.managed {
		return nil
	}
	return c.enter(ctx, op, false)
}

// RunOperation runs the profile's operation name with the values in, in its session after
// Prepare, and returns what its answers brought back (the values may be any the layouts take: a
// test of an ECU sends some a SHE would refuse). A negative answer is its
// *uds.NegativeResponseError.
func (c *Client) RunOperation(ctx context.Context, name profile.OpName, in profile.Values) (profile.Values, error) {
	return c.run(ctx, name, in)
}

// runERC runs an operation and returns its ERC (ERC_NO_ERROR when its answers have none).
func (c *Client) runERC(ctx context.Context, name profile.OpName, in profile.Values) (she.ERC, profile.Values, error) {
	out, err := c.run(ctx, name, in)
	if err != nil {
		return 0, nil, err
	}
	erc, _ := out.ERC()
	return she.ERC(erc), out, nil
}

// UID reads the SHE UID (the profile's ReadUID; default: DID 0xFD00).
func (c *Client) UID(ctx context.Context) (she.UID, error) {
	out, err := c.run(ctx, profile.ReadUID, nil)
	if err != nil {
		return she.UID{}, err
	}
	if erc, ok := out.ERC(); ok && erc != 0 {
		return she.UID{}, fmt.Errorf("ecu: ReadUID: %v", she.ERC(erc))
	}
	return she.UID(out["UID"]), nil
}

// Status reads the SHE status register (DID 0xFD01 of the default profile).
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

// LoadKeyResult is the outcome of the LoadKey operation.
type LoadKeyResult struct {
	ERC she.ERC
	M4  [32]byte // when ERC is ERC_NO_ERROR
	M5  [16]byte
}

// LoadKey sends M1, M2 and M3 to the SHE (the profile's LoadKey; default: routine 0xFD10).
func (c *Client) LoadKey(ctx context.Context, m1 [16]byte, m2 [32]byte, m3 [16]byte) (LoadKeyResult, error) {
	erc, out, err := c.runERC(ctx, profile.LoadKey, profile.Values{"M1": m1[:], "M2": m2[:], "M3": m3[:]})
	if err != nil || erc != she.NoError {
		return LoadKeyResult{ERC: erc}, err
	}
	return LoadKeyResult{ERC: erc, M4: [32]byte(out["M4"]), M5: [16]byte(out["M5"])}, nil
}

// GetIDResult is the outcome of the GetID operation.
type GetIDResult struct {
	ERC  she.ERC
	UID  she.UID
	SREG she.Status
	MAC  [16]byte
}

// GetID runs CMD_GET_ID with challenge (the profile's GetID; default: routine 0xFD11).
func (c *Client) GetID(ctx context.Context, challenge [16]byte) (GetIDResult, error) {
	erc, out, err := c.runERC(ctx, profile.GetID, profile.Values{"Challenge": challenge[:]})
	if err != nil || erc != she.NoError {
		return GetIDResult{ERC: erc}, err
	}
	return GetIDResult{ERC: erc, UID: she.UID(out["UID"]), SREG: she.Status(out["SREG"][0]), MAC: [16]byte(out["MAC"])}, nil
}

// VerifyMAC runs CMD_VERIFY_MAC over a 16-byte message with the key in slot id (the profile's
// VerifyMAC; default: routine 0xFD12).
func (c *Client) VerifyMAC(ctx context.Context, id she.KeyID, msg, mac [16]byte) (erc she.ERC, verified bool, err error) {
	erc, out, err := c.runERC(ctx, profile.VerifyMAC, profile.Values{"KeyID": {byte(id)}, "Message": msg[:], "MAC": mac[:]})
	if err != nil || erc != she.NoError {
		return erc, false, err
	}
	return statusResult(profile.VerifyMAC, erc, out)
}

// statusResult reads a Status field: 00 verified, 01 mismatch.
func statusResult(name profile.OpName, erc she.ERC, out profile.Values) (she.ERC, bool, error) {
	st := out["Status"]
	if st[0] > 1 {
		return 0, false, fmt.Errorf("ecu: %s result %#02x", name, st[0])
	}
	return erc, st[0] == 0, nil
}

// GenerateMAC runs CMD_GENERATE_MAC over a 16-byte message with the key in slot id (the
// profile's GenerateMAC; default: routine 0xFD13).
func (c *Client) GenerateMAC(ctx context.Context, id she.KeyID, msg [16]byte) (she.ERC, [16]byte, error) {
	erc, out, err := c.runERC(ctx, profile.GenerateMAC, profile.Values{"KeyID": {byte(id)}, "Message": msg[:]})
	if err != nil || erc != she.NoError {
		return erc, [16]byte{}, err
	}
	return erc, [16]byte(out["MAC"]), nil
}

// KeyCheck proves, with the profile's KeyCheck, whether slot id holds key without changing it:
// the client sends a random message or challenge (and its MAC under key, when the ECU verifies
// one), or compares the MAC the ECU computes with its own. matches is false on a mismatch.
func (c *Client) KeyCheck(ctx context.Context, id she.KeyID, key [16]byte) (erc she.ERC, matches bool, err error) {
	op := c.prof.Operations[profile.KeyCheck]
	if op == nil {
		return 0, false, fmt.Errorf("%w: %s (profile %s)", ErrNotInProfile, profile.KeyCheck, c.prof.Name)
	}
	in := profile.Values{"KeyID": {byte(id)}}
	var data []byte
	for _, st := range op.Steps {
		for _, f := range []string{"Message", "Challenge"} {
			if n := st.Request.FieldSize(f); n > 0 && data == nil {
				data = make([]byte, n)
				rand.Read(data)
				in[f] = data
			}
		}
	}
	want := she.CMAC(key, data)
	in["MAC"] = want[:]
	erc, out, err := c.runERC(ctx, profile.KeyCheck, in)
	if err != nil || erc != she.NoError {
		return erc, false, err
	}
	if mac, ok := out["MAC"]; ok {
		return erc, [16]byte(mac) == want, nil
	}
	return statusResult(profile.KeyCheck, erc, out)
}
