package profile_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// The shekit-default file says what the simulated ECU's code does today.
func TestDefaultProfileIsTheSimulators(t *testing.T) {
	p := profile.Default()
	ids := p.Addressing.IDs()
	if ids.Request != ecu.DefaultRequestID || ids.Response != ecu.DefaultResponseID || ids.Extended || ids.RequestPrefix != nil {
		t.Errorf("IDs %+v, want %#x/%#x 11-bit", ids, ecu.DefaultRequestID, ecu.DefaultResponseID)
	}
	l := p.Link
	if l.FD || l.TxDL != 8 || !l.Pad || l.PadByte != 0xCC || l.BlockSize != 0 || l.STmin != 0 ||
		l.NAs != time.Second || l.NBs != time.Second || l.NCr != time.Second || l.P2 != uds.DefaultP2 || l.P2Star != uds.DefaultP2Star || l.S3 != 5*time.Second {
		t.Errorf("link %+v", l)
	}
	s := p.Security
	if s.Algorithm != profile.AlgorithmAESCMAC || !bytes.Equal(s.Key, ecu.DefaultSecurityKey[:]) || s.Level != 1 ||
		s.SeedLength != 16 || s.MaxAttempts != 3 || s.Delay != 10*time.Second {
		t.Errorf("security %+v", s)
	}
	want := map[profile.OpName]struct {
		service profile.Service
		id      uint16
	}{
		profile.ReadUID:     {profile.ReadDID, ecu.DIDUID},
		profile.LoadKey:     {profile.RoutineStart, ecu.RIDLoadKey},
		profile.GetID:       {profile.RoutineStart, ecu.RIDGetID},
		profile.VerifyMAC:   {profile.RoutineStart, ecu.RIDVerifyMAC},
		profile.GenerateMAC: {profile.RoutineStart, ecu.RIDGenerateMAC},
		profile.KeyCheck:    {profile.RoutineStart, ecu.RIDVerifyMAC},
	}
	for name, w := range want {
		op := p.Operations[name]
		session, security := byte(uds.ExtendedSession), true
		if name == profile.ReadUID {
			session, security = uds.DefaultSession, false
		}
		if op == nil || len(op.Steps) != 1 || op.Steps[0].Service != w.service || op.Steps[0].ID != w.id ||
			op.Session != session || op.Security != security {
			t.Errorf("%s = %+v, want %s %#x", name, op, w.service, w.id)
		}
	}
	if p.Errors.NRC[0x0B] != byte(uds.GeneralProgrammingFailure) || p.Errors.NRC[0x0A] != byte(uds.ConditionsNotCorrect) ||
		len(p.Errors.NRC) != 2 || p.Errors.OtherNRC != 0 || p.Errors.ZeroFill {
		t.Errorf("errors %+v", p.Errors)
	}
}
