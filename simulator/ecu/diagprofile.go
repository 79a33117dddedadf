package ecu

import (
	"fmt"
	"sync"

	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// defaultDiagProfile is the built-in default profile, parsed once: every ECU without a diagnostic
// profile of its own shares it (a Profile is read-only once parsed).
var defaultDiagProfile = sync.OnceValue(profile.Default)

// IsDefaultDiagProfile reports whether p is the built-in default profile (nil counts as it): the
// kit's own CAN IDs, fleet numbering and transport defaults apply.
func IsDefaultDiagProfile(p *profile.Profile) bool {
	return p == nil || p.Name == profile.DefaultName && p.Source == "builtin:"+profile.DefaultName
}

// diagDefaults fills the configuration's zero SecurityAccess and timing settings from the
// diagnostic profile (the default profile's values are the kit's historical defaults).
func (c *Config) diagDefaults() {
	if c.DiagProfile == nil {
		c.DiagProfile = defaultDiagProfile()
	}
	p := c.DiagProfile
	s := p.Security
	if c.SeedLength == 0 && s.Algorithm != profile.AlgorithmNone {
		c.SeedLength = s.SeedLength
	}
	if c.SecurityKey == nil && s.Algorithm == profile.AlgorithmAESCMAC {
		k := [16]byte(s.Key)
		c.SecurityKey = &k
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = s.MaxAttempts
	}
	if c.Lockout == 0 {
		c.Lockout = s.Delay
	}
	if c.S3 == 0 {
		c.S3 = p.Link.S3
	}
	if c.P2 == 0 {
		c.P2 = p.Link.P2
	}
	if c.P2Star == 0 {
		c.P2Star = p.Link.P2Star
	}
}

// DiagTransportOptions are the ISO-TP options of the ECU's side of profile p's link: 29-bit IDs,
// CAN FD with its TX_DL and bit-rate switch, padding and the minimum frame length, the block size and STmin the ECU asks for,
// the N_As/N_Bs/N_Cr timeouts, and the address byte of extended or mixed addressing (the ECU
// sends the response prefix and receives the request prefix). None for the default profile,
// whose settings are the transport's defaults.
func DiagTransportOptions(p *profile.Profile) []isotp.Option {
	if IsDefaultDiagProfile(p) {
		return nil
	}
	l, ids := p.Link, p.Addressing.IDs()
	var opts []isotp.Option
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
	opts = append(opts, isotp.WithFlowControl(l.BlockSize, l.STmin), isotp.WithTimeouts(l.NAs, l.NBs, l.NCr))
	if ids.RequestPrefix != nil {
		opts = append(opts, isotp.WithAddressExtension(ids.ResponsePrefix[0], ids.RequestPrefix[0]))
	}
	return opts
}

// DiagFleetIDs returns the CAN IDs and address bytes of ECU i (from 0) in a fleet of n under
// profile p. The default profile numbers ECUs as FleetIDs does. Another profile's ECU 0 has the
// profile's IDs; ECU i adds i to the ECU's address under normal-fixed and 29-bit mixed
// addressing, and to the request and response CAN IDs otherwise (address bytes unchanged).
func DiagFleetIDs(p *profile.Profile, i, n int) (profile.CANIDs, error) {
	if IsDefaultDiagProfile(p) {
		req, resp, ext := FleetIDs(i, n)
		return profile.CANIDs{Request: req, Response: resp, Extended: ext}, nil
	}
	a := p.Addressing
	fixed := a.Mode == profile.NormalFixed || a.Mode == profile.Mixed && a.IDBits == 29
	if fixed {
		if int(a.ECUAddress)+n-1 > 0xFF {
			return profile.CANIDs{}, fmt.Errorf("ecu: %d ECUs from address %#02x do not fit one byte", n, a.ECUAddress)
		}
		a.ECUAddress += byte(i)
		return a.IDs(), nil
	}
	limit := uint32(0x7FF)
	if a.IDBits == 29 {
		limit = 0x1FFFFFFF
	}
	if max(a.PhysicalRequest, a.PhysicalResponse)+uint32(n-1) > limit {
		return profile.CANIDs{}, fmt.Errorf("ecu: %d ECUs from CAN IDs %#x/%#x exceed %d-bit IDs", n, a.PhysicalRequest, a.PhysicalResponse, a.IDBits)
	}
	ids := a.IDs()
	ids.Request += uint32(i)
	ids.Response += uint32(i)
	return ids, nil
}
