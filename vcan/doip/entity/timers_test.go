package entity_test

import (
	"net"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan/doip"
	"github.com/shekit/shekit/vcan/doip/entity"
)

// TestInitialInactivity: a socket without routing activation is closed T_TCP_Initial_Inactivity
// after it opened, whatever it sends meanwhile.
func TestInitialInactivity(t *testing.T) {
	r := newRig(t, entity.Config{}, nil)
	w := r.dialRaw(t)
	w.alive() // served: its timer runs
	r.clock.Advance(entity.DefaultInitialInactivity - time.Millisecond)
	w.alive()
	r.clock.Advance(time.Millisecond)
	w.expectClosed()
}

// TestGeneralInactivity: once routing is active, each message restarts T_TCP_General_Inactivity;
// a tester silent for that long is closed.
func TestGeneralInactivity(t *testing.T) {
	r := newRig(t, entity.Config{GeneralInactivity: time.Minute}, nil)
	w := r.dialRaw(t)
	w.activate(0x0E00, 0x1000)
	r.clock.Advance(entity.DefaultInitialInactivity) // the initial timer no longer applies
	w.alive()
	r.clock.Advance(time.Minute - time.Millisecond)
	w.alive() // restarts the timer
	r.clock.Advance(time.Minute - time.Millisecond)
	w.alive()
	r.clock.Advance(time.Minute)
	w.expectClosed()
}

// TestUDPVehicleIdentification: answers in the request's version (the entity's own for 0xFF);
// requests by EID and VIN answered by the entity they name only; entity status and power mode;
// the generic NACKs of UDP.
func TestUDPVehicleIdentification(t *testing.T) {
	r := newRig(t, entity.Config{Version: doip.Version2019, MaxTesters: 3}, nil)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	to, _ := net.ResolveUDPAddr("udp", r.udp)
	exchange := func(req []byte) doip.Message {
		t.Helper()
		if _, err := pc.WriteTo(req, to); err != nil {
			t.Fatal(err)
		}
		return readDatagram(t, pc)
	}
	want := doip.VehicleAnnouncement{VIN: testVIN, LogicalAddress: 0x1000, EID: r.cfg.EID, GID: r.cfg.GID}
	check := func(got doip.Message, version byte, p doip.Payload) {
		t.Helper()
		if got.Version != version || !equalPayload(got.Payload, p) {
			t.Fatalf("got %#v (version %#02x), want %#v (version %#02x)", got.Payload, got.Version, p, version)
		}
	}
	check(exchange(unhex(t, "ff000001 00000000")), 3, want)
	check(exchange(unhex(t, "02fd0001 00000000")), 2, want)
	check(exchange(doip.Append(nil, doip.Message{Version: 0xFF, Payload: doip.VehicleIdentificationRequestEID{EID: r.cfg.EID}})), 3, want)
	check(exchange(doip.Append(nil, doip.Message{Version: 2, Payload: doip.VehicleIdentificationRequestVIN{VIN: testVIN}})), 2, want)
	// Another vehicle's VIN and another entity's EID: no answer; the next datagram answers the
	// status request that follows them.
	pc.WriteTo(doip.Append(nil, doip.Message{Version: 2, Payload: doip.VehicleIdentificationRequestVIN{VIN: [17]byte{'X'}}}), to)
	pc.WriteTo(doip.Append(nil, doip.Message{Version: 2, Payload: doip.VehicleIdentificationRequestEID{EID: [6]byte{9}}}), to)
	check(exchange(unhex(t, "03fc4001 00000000")), 3, doip.EntityStatusResponse{NodeType: doip.NodeGateway, MaxSockets: 3,
		HasMaxDataSize: true, MaxDataSize: entity.DefaultMaxDataSize})
	check(exchange(unhex(t, "02fd4003 00000000")), 2, doip.PowerModeResponse{Mode: doip.PowerReady})

	check(exchange(unhex(t, "02fc0001 00000000")), 3, doip.GenericNACK{Code: doip.NACKIncorrectPattern})
	check(exchange(unhex(t, "ff000005 00000007 0e00 00 00000000")), 3, doip.GenericNACK{Code: doip.NACKIncorrectPattern})
	check(exchange(unhex(t, "02fd0005 00000007 0e00 00 00000000")), 3, doip.GenericNACK{Code: doip.NACKUnknownPayloadType})
	check(exchange(unhex(t, "02fd0001 00010000")), 3, doip.GenericNACK{Code: doip.NACKMessageTooLarge})
	check(exchange(unhex(t, "02fd0002 00000006 0102")), 3, doip.GenericNACK{Code: doip.NACKInvalidPayloadLength})
	check(exchange(unhex(t, "02fd0001 00000001 00")), 3, doip.GenericNACK{Code: doip.NACKInvalidPayloadLength})
}

func readDatagram(t *testing.T, pc net.PacketConn) doip.Message {
	t.Helper()
	buf := make([]byte, 1500)
	pc.SetReadDeadline(time.Now().Add(patience))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	m, _, err := doip.Parse(buf[:n])
	if err != nil {
		t.Fatalf("datagram % x: %v", buf[:n], err)
	}
	return m
}

// TestAnnouncements: AnnounceCount announcements to the configured address, AnnounceInterval
// apart on the entity's clock.
func TestAnnouncements(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	r := newRig(t, entity.Config{Announce: pc.LocalAddr()}, nil)
	want := doip.VehicleAnnouncement{VIN: testVIN, LogicalAddress: 0x1000, EID: r.cfg.EID, GID: r.cfg.GID}
	for i := range entity.DefaultAnnounceCount {
		if i > 0 {
			r.clock.AdvanceWhenPending(t, entity.DefaultAnnounceInterval)
		}
		if m := readDatagram(t, pc); m.Version != 2 || !equalPayload(m.Payload, want) {
			t.Fatalf("announcement %d: %#v", i, m)
		}
	}
}
