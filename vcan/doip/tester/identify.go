package tester

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/shekit/shekit/vcan/doip"
)

// Answer is one entity's answer to a UDP request.
type Answer struct {
	From    *net.UDPAddr
	Message doip.Message
}

// Request sends req over UDP to addr (host:port, a broadcast address to reach every entity) in
// version (0xFF lets the entity choose, on vehicle identification requests) and collects the
// answers until wait has passed, ctx ends, or limit answers have come (limit 0: no limit). Datagrams
// that are not DoIP messages are ignored.
func Request(ctx context.Context, addr string, version byte, req doip.Payload, wait time.Duration, limit int) ([]Answer, error) {
	to, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("doip tester: %w", err)
	}
	pc, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, fmt.Errorf("doip tester: %w", err)
	}
	defer pc.Close()
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Now()) })
	defer stop()
	if _, err := pc.WriteToUDP(doip.Append(nil, doip.Message{Version: version, Payload: req}), to); err != nil {
		return nil, fmt.Errorf("doip tester: send %v: %w", req.PayloadType(), err)
	}
	pc.SetReadDeadline(time.Now().Add(wait))
	var answers []Answer
	buf := make([]byte, 64<<10)
	for limit <= 0 || len(answers) < limit {
		n, from, err := pc.ReadFromUDP(buf)
		if err != nil {
			break // the wait is over
		}
		if m, _, err := doip.Parse(buf[:n]); err == nil {
			answers = append(answers, Answer{From: from, Message: doip.Message{Version: m.Version, Payload: doip.Clone(m.Payload)}})
		}
	}
	if len(answers) == 0 && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return answers, nil
}

// Vehicle is an entity found by vehicle identification.
type Vehicle struct {
	Addr         *net.UDPAddr // where it answered from: its TCP_DATA socket is on the same host and port
	Announcement doip.VehicleAnnouncement
}

// Identify sends a vehicle identification request (req: plain, by EID or by VIN; nil for plain)
// in version 0xFF to addr and returns the entities that answer within wait (or the first limit).
func Identify(ctx context.Context, addr string, req doip.Payload, wait time.Duration, limit int) ([]Vehicle, error) {
	if req == nil {
		req = doip.VehicleIdentificationRequest{}
	}
	answers, err := Request(ctx, addr, doip.VersionDefault, req, wait, limit)
	if err != nil {
		return nil, err
	}
	var found []Vehicle
	for _, a := range answers {
		if v, ok := a.Message.Payload.(doip.VehicleAnnouncement); ok {
			found = append(found, Vehicle{Addr: a.From, Announcement: v})
		}
	}
	return found, nil
}
