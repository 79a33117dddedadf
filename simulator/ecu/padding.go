package ecu

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/shekit/shekit/vcan/isotp"
)

// Padding is how an ECU pads its ISO-TP frames: the zero value is the default (every frame
// padded to 8 bytes with 0xCC), PadWith another byte, or NoPadding (frames only as long as their
// content). Every choice is conforming; a tester accepts them all.
type Padding struct {
	set, none bool
	b         byte
}

// NoPadding sends frames only as long as their content.
var NoPadding = Padding{set: true, none: true}

// PadWith pads every frame to 8 bytes with b.
func PadWith(b byte) Padding { return Padding{set: true, b: b} }

// ParsePadding reads a padding as the ecu command's --padding flag takes it: "none", or a byte in
// hex ("cc", "0x55"); empty is the default.
func ParsePadding(s string) (Padding, error) {
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case "":
		return Padding{}, nil
	case "none":
		return NoPadding, nil
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 8)
	if err != nil {
		return Padding{}, fmt.Errorf("padding %q: want none or a byte in hex (cc, 0x55)", s)
	}
	return PadWith(byte(v)), nil
}

// String is the padding as ParsePadding reads it ("" for the default).
func (p Padding) String() string {
	switch {
	case !p.set:
		return ""
	case p.none:
		return "none"
	}
	return fmt.Sprintf("%02x", p.b)
}

// TransportOptions are the ISO-TP options of an ECU's transport: those of the diagnostic
// profile's link and addressing (DiagTransportOptions), then the configured padding, which
// overrides the profile's; none for the default profile and padding.
func (c Config) TransportOptions() []isotp.Option {
	opts := DiagTransportOptions(c.DiagProfile)
	switch {
	case !c.Padding.set:
		return opts
	case c.Padding.none:
		return append(opts, isotp.WithoutPadding())
	}
	return append(opts, isotp.WithPadding(c.Padding.b))
}
