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

// doipAddresses turns --ecu (logical addresses) and --fleet (0x1001+i) into the ECUs to reach
// over DoIP.
func (f *stationFlags) doipAddresses() ([]ecuAddr, error) {
	var out []ecuAddr
	for _, e := range f.ecus {
		a, err := parseLogicalAddress(e)
		if err != nil {
			return nil, fmt.Errorf("--ecu: with --doip, %q is not a logical address", e)
		}
		out = append(out, ecuAddr{logical: a})
	}
	for i := range f.fleet {
		out = append(out, ecuAddr{logical: doipFirstECU + uint16(i)})
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
	conn, err := tester.Dial(dctx, addr, tester.Config{SourceAddress: testerAddress})
	if err != nil {
		return nil, func() {}, err
	}
	targets := make([]station.Target, len(addrs))
	for i, a := range addrs {
		targets[i] = station.Target{Name: fmt.Sprintf("%#04x", a.logical), Client: ecu.NewProfileClient(conn.Transport(a.logical), p)}
	}
	return targets, func() { conn.Close() }, nil
}

// testerAddress is the station's DoIP logical address, in the external test equipment range.
const testerAddress = 0x0E00
