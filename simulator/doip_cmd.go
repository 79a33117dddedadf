package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/doip"
	"github.com/shekit/shekit/vcan/doip/entity"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// The DoIP logical addresses of the simulated ECUs: ECU i of a fleet at 0x1001+i behind the
// gateway at 0x1000; a single ECU at --logical-address (0x1001). A DoIP diagnostic profile's
// logical address replaces 0x1001.
const (
	doipGatewayAddress = 0x1000
	doipFirstECU       = 0x1001
)

// doipRoute is one ECU the entity reaches: its logical address and its CAN IDs (and address
// bytes) under the diagnostic profile.
type doipRoute struct {
	logical uint16
	ids     profile.CANIDs
}

// parseLogicalAddress reads a DoIP logical address in decimal or 0x-hex.
func parseLogicalAddress(s string) (uint16, error) {
	v, err := strconv.ParseUint(s, 0, 16)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("--logical-address: %q is not a logical address", s)
	}
	return uint16(v), nil
}

// fleetRoutes are the routes to a fleet of n ECUs speaking diagnostic profile p: ECU i at
// logical address first+i, on the CAN IDs the fleet gives it under p.
func fleetRoutes(p *profile.Profile, first uint16, n int) ([]doipRoute, error) {
	routes := make([]doipRoute, n)
	for i := range routes {
		ids, err := ecu.DiagFleetIDs(p, i, n)
		if err != nil {
			return nil, err
		}
		routes[i] = doipRoute{logical: first + uint16(i), ids: ids}
	}
	return routes, nil
}

// canSide is diagnostic profile p as the simulated ECUs behind the DoIP entity serve it: p
// itself, or for a DoIP profile without addressing (an ECU with its own Ethernet port) a copy on
// the default profile's CAN IDs, which only the simulator's own entity uses.
func canSide(p *profile.Profile) *profile.Profile {
	if !p.OverDoIP() || p.HasAddressing {
		return p
	}
	c := *p
	c.Addressing, c.HasAddressing = profile.Default().Addressing, true
	return &c
}

// doipDefaults takes what --doip and --logical-address leave open from diagnostic profile p when
// it travels over DoIP: the entity's HOST:PORT and the (first) ECU's logical address; without
// either, 0x1001. For a fleet it checks that the ECUs' addresses are physical ones and miss the
// gateway's.
func (f *ecuFlags) doipDefaults(p *profile.Profile, fleet bool) error {
	if f.doip == "" && p.OverDoIP() {
		f.doip = p.DoIP.Entity
	}
	f.firstECU = doipFirstECU
	if p.OverDoIP() {
		f.firstECU = p.DoIP.LogicalAddress
	}
	if !fleet && f.logicalAddress != "" && (f.set == nil || f.set["logical-address"] || !p.OverDoIP()) {
		a, err := parseLogicalAddress(f.logicalAddress)
		if err != nil {
			return err
		}
		f.firstECU = a
	}
	if !fleet || f.doip == "" {
		return nil
	}
	last := int(f.firstECU) + f.count - 1
	if f.firstECU <= doipGatewayAddress && last >= doipGatewayAddress || last > 0x7FFF ||
		f.firstECU < 0x0E00 && last >= 0x0E00 {
		return fmt.Errorf("--doip: %d ECUs from logical address %#04x overlap the gateway's %#04x, the tester range 0x0E00-0x0FFF or pass 0x7FFF",
			f.count, f.firstECU, doipGatewayAddress)
	}
	return nil
}

// gatewayTransport opens the tester's side of the ISO-TP link to the ECU at ids under profile
// p, as a gateway forwards to it: on the bus of dial, or the kernel's socket on iface when
// kernel is set.
func gatewayTransport(dial ecu.Dialer, kernel bool, iface string, p *profile.Profile, ids profile.CANIDs) (isotp.Transport, error) {
	opts := ecu.DiagTesterOptions(p, ids)
	if kernel {
		return ecu.KernelTransport(iface, ids.Request, ids.Response, opts...)
	}
	return ecu.Transport(dial, ids.Request, ids.Response, opts...)
}

// serveDoIP starts a DoIP entity at address self on f.doip (TCP and UDP on the same port; port 0
// picks one) that forwards each route's diagnostic messages onto the bus by ISO-TP, as a gateway
// does (open gives the tester's side of a route's link). It returns a function that waits for the
// entity to stop once ctx has ended.
func serveDoIP(ctx context.Context, f *ecuFlags, self uint16, uid she.UID, routes []doipRoute,
	open func(profile.CANIDs) (isotp.Transport, error), stdout io.Writer) (func(), error) {
	var announce net.Addr
	if f.announce != "" {
		a, err := net.ResolveUDPAddr("udp", f.announce)
		if err != nil {
			return nil, fmt.Errorf("--announce: %w", err)
		}
		announce = a
	}
	cfg := entity.Config{LogicalAddress: self, VIN: simulatedVIN(uid), EID: [6]byte(uid[9:]), NodeType: doip.NodeNode, Announce: announce}
	if len(routes) > 1 || routes[0].logical != self {
		cfg.NodeType = doip.NodeGateway
	}
	e := entity.New(cfg)
	var transports []isotp.Transport
	closeAll := func() {
		for _, t := range transports {
			t.Close()
		}
	}
	for _, r := range routes {
		t, err := open(r.ids)
		if err != nil {
			closeAll()
			return nil, err
		}
		transports = append(transports, t)
		e.Register(r.logical, entity.TransportTarget(ctx, t))
	}
	ln, pc, err := listenDoIP(f.doip)
	if err != nil {
		closeAll()
		return nil, err
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.Serve(ctx, ln) }()
	go func() { defer wg.Done(); e.ServeUDP(ctx, pc) }()
	fmt.Fprintf(stdout, "DoIP entity %#04x on %s (TCP and UDP), ECUs at %#04x-%#04x\n", self, ln.Addr(),
		routes[0].logical, routes[len(routes)-1].logical)
	return func() { wg.Wait(); closeAll() }, nil
}

// listenDoIP opens the TCP listener and the UDP socket of addr on one port number.
func listenDoIP(addr string) (net.Listener, net.PacketConn, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--doip: %w", err)
	}
	host, _, _ := net.SplitHostPort(addr)
	port := ln.Addr().(*net.TCPAddr).Port
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		ln.Close()
		return nil, nil, fmt.Errorf("--doip: %w", err)
	}
	return ln, pc, nil
}

// simulatedVIN is the VIN a simulated entity reports: SHEKIT and the last 11 hex digits of the
// UID, upper case (17 characters; the VIN alphabet has no I, O or Q, and hex digits are none of
// them).
func simulatedVIN(uid she.UID) [17]byte {
	var vin [17]byte
	copy(vin[:], "SHEKIT")
	const digits = "0123456789ABCDEF"
	hex := make([]byte, 0, 30)
	for _, b := range uid {
		hex = append(hex, digits[b>>4], digits[b&0xF])
	}
	copy(vin[6:], hex[len(hex)-11:])
	return vin
}
