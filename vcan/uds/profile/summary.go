package profile

import (
	"fmt"
	"strings"
)

// Summary describes the profile in one line: transport, addressing, link, SecurityAccess and how
// LoadKey travels (for listings such as `simulator profiles`).
func (p *Profile) Summary() string {
	var b strings.Builder
	b.WriteString(p.Name + ":")
	if p.OverDoIP() {
		fmt.Fprintf(&b, " DoIP %#04x from tester %#04x", p.DoIP.LogicalAddress, p.DoIP.TesterAddress)
		if p.DoIP.Entity != "" {
			b.WriteString(" at " + p.DoIP.Entity)
		}
		if !p.HasAddressing {
			b.WriteString(p.security())
			return b.String()
		}
		b.WriteString(", behind it")
	}
	ids := p.Addressing.IDs()
	fmt.Fprintf(&b, " %s %d-bit %#x/%#x", p.Addressing.Mode, p.Addressing.IDBits, ids.Request, ids.Response)
	if ids.RequestPrefix != nil {
		fmt.Fprintf(&b, " (address bytes %#02x/%#02x)", ids.RequestPrefix[0], ids.ResponsePrefix[0])
	}
	l := p.Link
	if l.FD {
		fmt.Fprintf(&b, ", CAN FD TX_DL %d", l.TxDL)
		if l.BRS {
			b.WriteString(" BRS")
		}
	} else {
		b.WriteString(", classic CAN")
	}
	if l.Pad {
		fmt.Fprintf(&b, ", padding %#02x", l.PadByte)
	} else {
		b.WriteString(", no padding")
	}
	b.WriteString(p.security())
	return b.String()
}

// security describes SecurityAccess and how LoadKey travels, for Summary.
func (p *Profile) security() string {
	var b strings.Builder
	if s := p.Security; s.Algorithm == AlgorithmNone {
		b.WriteString("; no SecurityAccess")
	} else {
		fmt.Fprintf(&b, "; SecurityAccess %#02x %s", s.Level, s.Algorithm)
	}
	b.WriteString("; LoadKey:")
	for _, st := range p.Operations[LoadKey].Steps {
		b.WriteString(" " + string(st.Service))
		switch st.Service {
		case RoutineStart, RoutineResults, WriteDID, ReadDID:
			fmt.Fprintf(&b, " %#04x", st.ID)
		}
	}
	return b.String()
}
