package entity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/shekit/shekit/vcan/doip"
)

// udpTypes are the payload types the entity answers on UDP; any other gets generic NACK 0x01.
var udpTypes = map[doip.PayloadType]bool{
	doip.TypeVehicleIdentificationRequest: true, doip.TypeVehicleIdentificationEID: true,
	doip.TypeVehicleIdentificationVIN: true, doip.TypeEntityStatusRequest: true, doip.TypePowerModeRequest: true,
}

// ServeUDP answers vehicle identification, entity status and power mode requests on pc
// (UDP_DISCOVERY, port 13400) until ctx ends, then closes pc and returns nil. When it starts it
// sends the configured vehicle announcements from pc. An answer goes to the request's sender in
// the request's protocol version (the entity's own for 0xFF); a request by EID or VIN that is not
// the entity's gets no answer.
func (e *Entity) ServeUDP(ctx context.Context, pc net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { pc.Close() })
	defer stop()
	if e.cfg.Announce != nil {
		go e.announce(ctx, pc)
	}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("doip entity: udp: %w", err)
		}
		if answer, ok := e.answerUDP(buf[:n]); ok {
			if _, err := pc.WriteTo(doip.Append(nil, answer), from); err != nil {
				e.cfg.Logger.Info("doip entity: udp answer not sent", "to", from, "err", err)
			}
		}
	}
}

// answerUDP returns the answer to one datagram, if one is due.
func (e *Entity) answerUDP(d []byte) (doip.Message, bool) {
	nack := func(err error) (doip.Message, bool) {
		code, _ := doip.NACKCodeOf(err)
		return doip.Message{Version: e.cfg.Version, Payload: doip.GenericNACK{Code: code}}, true
	}
	h, err := doip.ParseHeader(d)
	switch {
	case err != nil:
		return nack(doip.ErrIncorrectPattern)
	case !udpTypes[h.Type]:
		return nack(doip.ErrUnknownPayloadType)
	case h.Length > e.cfg.MaxDataSize:
		return nack(doip.ErrMessageTooLarge)
	case doip.CheckLength(h) != nil || uint64(len(d)-doip.HeaderLength) != uint64(h.Length):
		return nack(doip.ErrInvalidPayloadLength)
	}
	p, err := doip.ParsePayload(h, d[doip.HeaderLength:])
	if err != nil {
		return nack(err)
	}
	version := h.Version
	if version == doip.VersionDefault {
		version = e.cfg.Version
	}
	var answer doip.Payload
	switch p := p.(type) {
	case doip.VehicleIdentificationRequest:
		answer = e.announcement()
	case doip.VehicleIdentificationRequestEID:
		if p.EID == e.cfg.EID {
			answer = e.announcement()
		}
	case doip.VehicleIdentificationRequestVIN:
		if bytes.Equal(p.VIN[:], e.cfg.VIN[:]) {
			answer = e.announcement()
		}
	case doip.EntityStatusRequest:
		answer = e.status()
	case doip.PowerModeRequest:
		answer = doip.PowerModeResponse{Mode: e.cfg.PowerMode()}
	}
	if answer == nil {
		return doip.Message{}, false
	}
	return doip.Message{Version: version, Payload: answer}, true
}

// announce sends AnnounceCount vehicle announcements to Announce, AnnounceInterval apart.
func (e *Entity) announce(ctx context.Context, pc net.PacketConn) {
	msg := doip.Append(nil, doip.Message{Version: e.cfg.Version, Payload: e.announcement()})
	for i := range e.cfg.AnnounceCount {
		if i > 0 {
			tick := make(chan struct{})
			stop := e.cfg.Clock.AfterFunc(e.cfg.AnnounceInterval, func() { close(tick) })
			select {
			case <-tick:
			case <-ctx.Done():
				stop()
				return
			}
		}
		if _, err := pc.WriteTo(msg, e.cfg.Announce); err != nil {
			e.cfg.Logger.Info("doip entity: announcement not sent", "to", e.cfg.Announce, "err", err)
		}
	}
}
