package conformance_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.einride.tech/can"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds"
)

// TestECUTeethVariantsBehave: each legal variant and each fault the ecu suite does not catch yet
// shows its behaviour on a simulated ECU behind it, so that a variant that does nothing cannot
// pass as either; and a fault's probe does not see the misbehaviour on the simulator alone.
func TestECUTeethVariantsBehave(t *testing.T) {
	for _, row := range ecuTeeth {
		if row.shows == nil {
			continue
		}
		t.Run(string(row.kind)+"/"+row.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := row.shows(ctx, probeECU(t, row.variant)); err != nil {
				t.Errorf("the variant does not behave so: %v", err)
			}
			if row.kind != uncaught {
				return
			}
			if err := row.shows(ctx, probeECU(t, nil)); err == nil {
				t.Errorf("the simulator alone shows the misbehaviour too")
			}
		})
	}
}

// ecuProbe is a client of a simulated ECU (behind a variant or not) and a node that sees every
// frame on the tester's bus.
type ecuProbe struct {
	*ecu.Client
	sniff *vcan.Node
}

// probeECU starts a simulated ECU on a fresh bus, behind v's proxy unless v is nil, and returns a
// client for it.
func probeECU(t *testing.T, v *ecuVariant) ecuProbe {
	t.Helper()
	h := vcan.NewHub()
	sniff := h.Connect()
	key := ecu.DefaultSecurityKey
	cfg := ecu.Config{UID: freshUID(), Profile: she.ProfileAUTOSAR, SecurityKey: &key, Lockout: time.Second, S3: probeS3}
	var et isotp.Transport
	var err error
	if v == nil {
		et, err = ecu.Transport(ecu.HubDialer(h), ecu.DefaultResponseID, ecu.DefaultRequestID)
	} else {
		var stop func()
		et, stop, err = proxiedECUTransport(h, cfg, *v)
		if err == nil {
			t.Cleanup(stop)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	e, err := ecu.New(cfg, et)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go e.Serve(ctx)
	ct, err := ecu.Transport(ecu.HubDialer(h), ecu.DefaultRequestID, ecu.DefaultResponseID)
	if err != nil {
		t.Fatal(err)
	}
	c := ecu.NewClient(ct, uds.WithTiming(uds.DefaultP2, uds.DefaultP2Star, simMargin))
	t.Cleanup(func() { cancel(); c.Close(); et.Close(); sniff.Close(); h.Close() })
	return ecuProbe{Client: c, sniff: sniff}
}

// ecuFrames are the frames the ECU side sent since the last call.
func (pr ecuProbe) ecuFrames() []can.Frame {
	var out []can.Frame
	for _, tf := range pr.sniff.ReceiveFor(50 * time.Millisecond) {
		if tf.Frame.ID == ecu.DefaultResponseID {
			out = append(out, tf.Frame)
		}
	}
	return out
}

// singleFrames are the ECU's single frames since the last call.
func (pr ecuProbe) singleFrames() []can.Frame {
	var out []can.Frame
	for _, f := range pr.ecuFrames() {
		if f.Length > 0 && f.Data[0]>>4 == 0 {
			out = append(out, f)
		}
	}
	return out
}

// probeNRC is nil when err is the negative answer nrc.
func probeNRC(err error, nrc uds.NRC) error {
	var nr *uds.NegativeResponseError
	if errors.As(err, &nr) && nr.NRC == nrc {
		return nil
	}
	return fmt.Errorf("want NRC %v, got %v", nrc, err)
}

// showsWrongKeysCounted: wrong keys with right ones between them end in NRC 0x36 on the third.
func showsWrongKeysCounted(ctx context.Context, c ecuProbe) error {
	wrong := func() error {
		resp, err := c.Do(ctx, []byte{uds.SecurityAccess, 0x01})
		if err != nil {
			return err
		}
		return probeSendKey(ctx, c.Client, make([]byte, 16), len(resp))
	}
	key := ecu.DefaultSecurityKey
	for i := 1; i <= 3; i++ {
		if err := c.StartSession(ctx, uds.DefaultSession); err != nil {
			return err
		}
		if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
			return err
		}
		err := wrong()
		if i == 3 {
			return probeNRC(err, uds.ExceededNumberOfAttempts)
		}
		if err := probeNRC(err, uds.InvalidKey); err != nil {
			return err
		}
		if err := c.Prepare(ctx, &key); err != nil {
			return err
		}
	}
	return nil
}

// probeSendKey sends key after a seed answer of seedAnswerLen bytes.
func probeSendKey(ctx context.Context, c *ecu.Client, key []byte, seedAnswerLen int) error {
	if seedAnswerLen < 3 {
		return fmt.Errorf("seed answer of %d bytes", seedAnswerLen)
	}
	_, err := c.Do(ctx, append([]byte{uds.SecurityAccess, 0x02}, key...))
	return err
}

// showsLengthFirst: a LoadKey of 63 bytes while locked in the extended session is NRC 0x13.
func showsLengthFirst(ctx context.Context, c ecuProbe) error {
	if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
		return err
	}
	_, err := c.StartRoutine(ctx, ecu.RIDLoadKey, make([]byte, 63))
	return probeNRC(err, uds.IncorrectMessageLengthOrInvalidFormat)
}

// showsSuppressIgnored: TesterPresent with the suppress bit is answered: the client discards
// that answer while it waits for the next request's.
func showsSuppressIgnored(ctx context.Context, c ecuProbe) error {
	if _, err := c.Do(ctx, []byte{uds.TesterPresent, uds.SuppressPositiveResponse}); err != nil {
		return err
	}
	if _, err := c.UID(ctx); err != nil {
		return err
	}
	if n := c.Stats().Discarded; n == 0 {
		return errors.New("no answer to TesterPresent with the suppress bit")
	}
	return nil
}

// probeS3 is the S3 of the probes' ECUs: short, so that a probe can outwait it.
const probeS3 = time.Second

// showsAttemptsForgiven: two wrong keys, ECUReset, a third wrong key is NRC 0x35, not 0x36.
func showsAttemptsForgiven(ctx context.Context, c ecuProbe) error {
	wrong := func() error {
		if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
			return err
		}
		resp, err := c.Do(ctx, []byte{uds.SecurityAccess, 0x01})
		if err != nil {
			return err
		}
		return probeSendKey(ctx, c.Client, make([]byte, 16), len(resp))
	}
	for range 2 {
		if err := probeNRC(wrong(), uds.InvalidKey); err != nil {
			return err
		}
	}
	if err := c.Reset(ctx, 0x01); err != nil {
		return err
	}
	return probeNRC(wrong(), uds.InvalidKey)
}

// showsS3Ignored: unlocked in the extended session, silent for twice S3, a routine still
// runs (a conforming ECU is back in the default session: NRC 0x7F).
func showsS3Ignored(ctx context.Context, c ecuProbe) error {
	// Session and SecurityAccess by hand, not Prepare: after Prepare the client would enter the
	// session anew on the refusal this probe looks for.
	key := ecu.DefaultSecurityKey
	if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
		return err
	}
	if err := c.Unlock(ctx, 0x01, func(seed []byte) []byte { k := she.CMAC(key, seed); return k[:] }); err != nil {
		return err
	}
	time.Sleep(2 * probeS3)
	_, err := c.GetID(ctx, [16]byte{})
	return err
}

// showsPadding is the probe of ISO-TP padding with b: the ECU's single frames are 8 bytes, padded
// with b.
func showsPadding(b byte) func(context.Context, ecuProbe) error {
	return func(ctx context.Context, c ecuProbe) error {
		if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
			return err
		}
		frames := c.singleFrames()
		if len(frames) == 0 {
			return errors.New("no single frame from the ECU")
		}
		for _, f := range frames {
			n := int(f.Data[0] & 0xF)
			if f.Length != 8 || bytes.Count(f.Data[1+n:], []byte{b}) != 7-n {
				return fmt.Errorf("single frame % x", f.Data[:f.Length])
			}
		}
		return nil
	}
}

// showsNoPadding: the ECU's single frames end with their data.
func showsNoPadding(ctx context.Context, c ecuProbe) error {
	if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
		return err
	}
	frames := c.singleFrames()
	if len(frames) == 0 {
		return errors.New("no single frame from the ECU")
	}
	for _, f := range frames {
		if int(f.Length) != 1+int(f.Data[0]&0xF) {
			return fmt.Errorf("single frame % x", f.Data[:f.Length])
		}
	}
	return nil
}

// showsFlowControl: the ECU's flow control for a long request says BS=1, STmin=5 ms.
func showsFlowControl(ctx context.Context, c ecuProbe) error {
	if _, err := c.Do(ctx, append([]byte{uds.RoutineControl, 0x01, 0xFD, 0x10}, make([]byte, 64)...)); err == nil {
		return errors.New("LoadKey while locked answered positively")
	}
	for _, f := range c.ecuFrames() {
		if f.Data[0] == 0x30 {
			if f.Data[1] != 1 || f.Data[2] != 5 {
				return fmt.Errorf("flow control % x", f.Data[:f.Length])
			}
			return nil
		}
	}
	return errors.New("no flow control from the ECU")
}

// showsRelock: unlocked, the extended session requested again locks (a routine: NRC 0x33).
func showsRelock(ctx context.Context, c ecuProbe) error {
	key := ecu.DefaultSecurityKey
	if err := c.Prepare(ctx, &key); err != nil {
		return err
	}
	if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
		return err
	}
	_, err := c.StartRoutine(ctx, ecu.RIDGetID, make([]byte, 16))
	return probeNRC(err, uds.SecurityAccessDenied)
}

// showsSeedLength: seeds have n bytes, and the right key for one unlocks.
func showsSeedLength(n int) func(context.Context, ecuProbe) error {
	return func(ctx context.Context, c ecuProbe) error {
		if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
			return err
		}
		var seedLen int
		err := c.Unlock(ctx, 0x01, func(seed []byte) []byte {
			seedLen = len(seed)
			k := she.CMAC(ecu.DefaultSecurityKey, seed)
			return k[:]
		})
		if err != nil {
			return err
		}
		if seedLen != n {
			return fmt.Errorf("a seed of %d bytes", seedLen)
		}
		_, err = c.StartRoutine(ctx, ecu.RIDGetID, make([]byte, 16))
		return err
	}
}

// showsPending: a routine's answer follows a response pending.
func showsPending(ctx context.Context, c ecuProbe) error {
	key := ecu.DefaultSecurityKey
	if err := c.Prepare(ctx, &key); err != nil {
		return err
	}
	c.ecuFrames()
	if _, err := c.GetID(ctx, [16]byte{}); err != nil {
		return err
	}
	for _, f := range c.singleFrames() {
		if f.Data[0] == 0x03 && f.Data[1] == uds.NegativeResponse && f.Data[2] == uds.RoutineControl && f.Data[3] == byte(uds.ResponsePending) {
			return nil
		}
	}
	return errors.New("no response pending before the routine's answer")
}

// showsLate: an answer takes at least d.
func showsLate(d time.Duration) func(context.Context, ecuProbe) error {
	return func(ctx context.Context, c ecuProbe) error {
		start := time.Now()
		if _, err := c.UID(ctx); err != nil {
			return err
		}
		if took := time.Since(start); took < d {
			return fmt.Errorf("answered in %v", took)
		}
		return nil
	}
}

// showsTiming: the session answer announces p2 and p2Star, and the client takes them.
func showsTiming(p2, p2Star time.Duration) func(context.Context, ecuProbe) error {
	return func(ctx context.Context, c ecuProbe) error {
		if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
			return err
		}
		if a, b := c.Timing(); a != p2 || b != p2Star {
			return fmt.Errorf("P2 %v, P2* %v", a, b)
		}
		return nil
	}
}
