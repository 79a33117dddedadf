package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/station"
	"github.com/shekit/shekit/vcan/doip/tester"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// doipFromProfile takes the DoIP entity from diagnostic profile p when it travels over DoIP and
// --doip is not given: the profile's entity, which it must then name.
func (f *stationFlags) doipFromProfile(p *profile.Profile) error {
	if f.doip != "" || !p.OverDoIP() {
		return nil
	}
	if p.DoIP.Entity == "" {
		return fmt.Errorf("--diag-profile %s travels over DoIP and names no entity: give --doip HOST:PORT", p.Name)
	}
	f.doip = p.DoIP.Entity
	return nil
}

// doipAddresses turns --ecu (logical addresses) and --fleet (from the logical address of a DoIP
// profile p, else 0x1001, +i) into the ECUs to reach over DoIP.
func (f *stationFlags) doipAddresses(p *profile.Profile) ([]ecuAddr, error) {
	var out []ecuAddr
	for _, e := range f.ecus {
		a, err := parseLogicalAddress(e)
		if err != nil {
			return nil, fmt.Errorf("--ecu: with --doip, %q is not a logical address", e)
		}
		out = append(out, ecuAddr{logical: a})
	}
	first := uint16(doipFirstECU)
	if p.OverDoIP() {
		first = p.DoIP.LogicalAddress
	}
	if int(first)+f.fleet-1 > 0x7FFF {
		return nil, fmt.Errorf("--fleet: %d ECUs from logical address %#04x pass 0x7FFF", f.fleet, first)
	}
	for i := range f.fleet {
		out = append(out, ecuAddr{logical: first + uint16(i)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no ECU: give --ecu ADDRESS or --fleet N with --doip")
	}
	return out, nil
}

// dialDoIP connects to the DoIP entity of --doip (or the first that answers vehicle
// identification at --discover, with --doip discover), activates routing and returns a client
// per ECU, speaking diagnostic profile p's services, all on that one connection.
func dialDoIP(ctx context.Context, f *stationFlags, p *profile.Profile, addrs []ecuAddr) ([]station.Target, func(), error) {
	addr := f.doip
	if addr == "discover" {
		found, err := tester.Identify(ctx, f.discover, nil, 2*time.Second, 1)
		if err != nil {
			return nil, func() {}, fmt.Errorf("--doip discover: %w", err)
		}
		if len(found) == 0 {
			return nil, func() {}, fmt.Errorf("--doip discover: no entity answered at %s within 2 s", f.discover)
		}
		addr = net.JoinHostPort(found[0].Addr.IP.String(), strconv.Itoa(found[0].Addr.Port))
	}
	dctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	conn, err := tester.Dial(dctx, addr, tester.Config{SourceAddress: stationTester(p)})
	if err != nil {
		return nil, func() {}, err
	}
	targets := make([]station.Target, len(addrs))
	for i, a := range addrs {
		targets[i] = station.Target{Name: fmt.Sprintf("%#04x", a.logical), Client: ecu.NewProfileClient(conn.Transport(a.logical), p)}
	}
	return targets, func() { conn.Close() }, nil
}

// stationTester is the station's DoIP logical address: a DoIP profile's tester address, else
// 0x0E00, in the external test equipment range.
func stationTester(p *profile.Profile) uint16 {
	if p.OverDoIP() {
		return p.DoIP.TesterAddress
	}
	return profile.DefaultTesterAddress
}
