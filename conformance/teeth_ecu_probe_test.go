package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/uds"
)

// TestECUTeethUncaughtMisbehave: each fault the ecu suite does not catch yet does misbehave, shown
// on a simulated ECU behind its variant, while the same probe on the simulator alone sees the
// conforming behaviour.
func TestECUTeethUncaughtMisbehave(t *testing.T) {
	for _, row := range ecuTeeth {
		if row.kind != uncaught {
			continue
		}
		t.Run(row.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := row.shows(ctx, probeECU(t, row.variant)); err != nil {
				t.Errorf("the variant does not misbehave: %v", err)
			}
			if err := row.shows(ctx, probeECU(t, nil)); err == nil {
				t.Errorf("the simulator alone shows the misbehaviour too")
			}
		})
	}
}

// probeECU starts a simulated ECU on a fresh bus, behind v's proxy unless v is nil, and returns a
// client for it.
func probeECU(t *testing.T, v *ecuVariant) *ecu.Client {
	t.Helper()
	h := vcan.NewHub()
	key := ecu.DefaultSecurityKey
	cfg := ecu.Config{UID: freshUID(), Profile: she.ProfileAUTOSAR, SecurityKey: &key, Lockout: time.Second, S3: probeS3}
	et, err := ecu.Transport(ecu.HubDialer(h), ecu.DefaultResponseID, ecu.DefaultRequestID)
	if v != nil {
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
	t.Cleanup(func() { cancel(); c.Close(); et.Close(); h.Close() })
	return c
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
func showsWrongKeysCounted(ctx context.Context, c *ecu.Client) error {
	wrong := func() error {
		resp, err := c.Do(ctx, []byte{uds.SecurityAccess, 0x01})
		if err != nil {
			return err
		}
		return probeSendKey(ctx, c, make([]byte, 16), len(resp))
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
func showsLengthFirst(ctx context.Context, c *ecu.Client) error {
	if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
		return err
	}
	_, err := c.StartRoutine(ctx, ecu.RIDLoadKey, make([]byte, 63))
	return probeNRC(err, uds.IncorrectMessageLengthOrInvalidFormat)
}

// showsSuppressIgnored: TesterPresent with the suppress bit is answered: the client discards
// that answer while it waits for the next request's.
func showsSuppressIgnored(ctx context.Context, c *ecu.Client) error {
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
func showsAttemptsForgiven(ctx context.Context, c *ecu.Client) error {
	wrong := func() error {
		if err := c.StartSession(ctx, uds.ExtendedSession); err != nil {
			return err
		}
		resp, err := c.Do(ctx, []byte{uds.SecurityAccess, 0x01})
		if err != nil {
			return err
		}
		return probeSendKey(ctx, c, make([]byte, 16), len(resp))
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
func showsS3Ignored(ctx context.Context, c *ecu.Client) error {
	key := ecu.DefaultSecurityKey
	if err := c.Prepare(ctx, &key); err != nil {
		return err
	}
	time.Sleep(2 * probeS3)
	_, err := c.GetID(ctx, [16]byte{})
	return err
}
