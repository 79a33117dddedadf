package entity_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/shekit/shekit/vcan/doip"
	"github.com/shekit/shekit/vcan/doip/entity"
	"github.com/shekit/shekit/vcan/doip/tester"
)

// TestRoutingActivationCodes: each refusal with its code, and whether the socket stays open.
func TestRoutingActivationCodes(t *testing.T) {
	security := func(source uint16, oem []byte) doip.ActivationCode {
		if bytes.Equal(oem, []byte("good")) {
			return doip.ActivationSuccess
		}
		return doip.ActivationMissingAuthentication
	}
	r := newRig(t, entity.Config{CentralSecurity: security}, nil)
	deny := func(req doip.RoutingActivationRequest, code doip.ActivationCode) *raw {
		t.Helper()
		w := r.dialRaw(t)
		w.send(req)
		w.expect(doip.RoutingActivationResponse{TesterAddress: req.SourceAddress, EntityAddress: 0x1000, Code: code})
		return w
	}
	t.Run("unknown source address 0x00, closed", func(t *testing.T) {
		deny(doip.RoutingActivationRequest{SourceAddress: 0x0DFF}, doip.ActivationUnknownSource).expectClosed()
		deny(doip.RoutingActivationRequest{SourceAddress: 0x1000}, doip.ActivationUnknownSource).expectClosed()
	})
	t.Run("unsupported activation type 0x06, closed", func(t *testing.T) {
		deny(doip.RoutingActivationRequest{SourceAddress: 0x0E00, ActivationType: 0x02}, doip.ActivationUnsupportedType).expectClosed()
	})
	t.Run("WWH-OBD 0x01 is activated", func(t *testing.T) {
		deny(doip.RoutingActivationRequest{SourceAddress: 0x0E10, ActivationType: doip.ActivationWWHOBD}, doip.ActivationSuccess).alive()
	})
	t.Run("central security: missing authentication 0x04 keeps the socket, then activated", func(t *testing.T) {
		w := deny(doip.RoutingActivationRequest{SourceAddress: 0x0E20, ActivationType: 0xE0, OEM: []byte("bad!")}, doip.ActivationMissingAuthentication)
		w.send(doip.RoutingActivationRequest{SourceAddress: 0x0E20, ActivationType: 0xE0, OEM: []byte("good")})
		w.expect(doip.RoutingActivationResponse{TesterAddress: 0x0E20, EntityAddress: 0x1000, Code: doip.ActivationSuccess})
	})
	t.Run("another source address on an active socket 0x02, closed", func(t *testing.T) {
		w := r.dialRaw(t)
		w.activate(0x0E30, 0x1000)
		w.activate(0x0E30, 0x1000) // the same address again: still active
		w.send(doip.RoutingActivationRequest{SourceAddress: 0x0E31})
		w.expect(doip.RoutingActivationResponse{TesterAddress: 0x0E31, EntityAddress: 0x1000, Code: doip.ActivationSourceMismatch})
		w.expectClosed()
	})
	t.Run("central security unsupported without the hook 0x06", func(t *testing.T) {
		r2 := newRig(t, entity.Config{}, nil)
		w := r2.dialRaw(t)
		w.send(doip.RoutingActivationRequest{SourceAddress: 0x0E00, ActivationType: 0xE0})
		w.expect(doip.RoutingActivationResponse{TesterAddress: 0x0E00, EntityAddress: 0x1000, Code: doip.ActivationUnsupportedType})
		w.expectClosed()
	})
	t.Run("TLS required 0x07, closed", func(t *testing.T) {
		r2 := newRig(t, entity.Config{RequireTLS: true}, nil)
		w := r2.dialRaw(t)
		w.send(doip.RoutingActivationRequest{SourceAddress: 0x0E00})
		w.expect(doip.RoutingActivationResponse{TesterAddress: 0x0E00, EntityAddress: 0x1000, Code: doip.ActivationTLSRequired})
		w.expectClosed()
	})
}

// TestSecondActivationFromTheSameAddress: the entity alive-checks the socket where the address is
// active; a tester that answers keeps it (the newcomer gets 0x03 and is closed), one that does not
// loses it to the newcomer.
func TestSecondActivationFromTheSameAddress(t *testing.T) {
	r := newRig(t, entity.Config{}, nil)
	ctx := ctxFor(t)
	first, err := tester.Dial(ctx, r.tcp, tester.Config{SourceAddress: 0x0E80})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second := r.dialRaw(t)
	second.send(doip.RoutingActivationRequest{SourceAddress: 0x0E80})
	second.expect(doip.RoutingActivationResponse{TesterAddress: 0x0E80, EntityAddress: 0x1000, Code: doip.ActivationSourceActiveElsewhere})
	second.expectClosed()

	silent := r.dialRaw(t)
	silent.activate(0x0E81, 0x1000)
	newcomer := r.dialRaw(t)
	newcomer.send(doip.RoutingActivationRequest{SourceAddress: 0x0E81})
	silent.expect(doip.AliveCheckRequest{}) // the entity asks the socket where 0x0E81 is active
	r.clock.Advance(r.cfg.AliveCheckTimeout)
	newcomer.expect(doip.RoutingActivationResponse{TesterAddress: 0x0E81, EntityAddress: 0x1000, Code: doip.ActivationSuccess})
	silent.expectClosed()
	select {
	case <-first.Done():
		t.Fatalf("the tester that answered the alive check was closed: %v", first.Err())
	default:
	}
}

// TestNoFreeSocket: with every routing slot taken, a new activation alive-checks the active
// sockets: 0x01 when all answer, the slot of one that does not otherwise. Beyond MaxTesters+1
// open sockets, new connections are closed at once.
func TestNoFreeSocket(t *testing.T) {
	r := newRig(t, entity.Config{MaxTesters: 1}, nil)
	holder := r.dialRaw(t)
	holder.activate(0x0E00, 0x1000)
	extra := r.dialRaw(t)
	extra.alive() // the second socket is open and served
	third := r.dialRaw(t)
	third.expectClosed()

	extra.send(doip.RoutingActivationRequest{SourceAddress: 0x0E01})
	holder.expect(doip.AliveCheckRequest{})
	holder.send(doip.AliveCheckResponse{SourceAddress: 0x0E00})
	extra.expect(doip.RoutingActivationResponse{TesterAddress: 0x0E01, EntityAddress: 0x1000, Code: doip.ActivationNoFreeSocket})
	extra.expectClosed()

	next := dialWhenFree(t, r)
	next.send(doip.RoutingActivationRequest{SourceAddress: 0x0E02})
	holder.expect(doip.AliveCheckRequest{})
	r.clock.Advance(r.cfg.AliveCheckTimeout)
	next.expect(doip.RoutingActivationResponse{TesterAddress: 0x0E02, EntityAddress: 0x1000, Code: doip.ActivationSuccess})
	holder.expectClosed()
}

// dialWhenFree connects once the entity has let go of the sockets it closed.
func dialWhenFree(t *testing.T, r *rig) *raw {
	t.Helper()
	ctx := ctxFor(t)
	for r.e.OpenSockets() > 1 {
		if ctx.Err() != nil {
			t.Fatal("the entity keeps its closed sockets")
		}
		yield()
	}
	return r.dialRaw(t)
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	t.Cleanup(cancel)
	return ctx
}
