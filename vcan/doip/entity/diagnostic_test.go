package entity_test

import (
	"context"
	"errors"
	"testing"

	"github.com/shekit/shekit/vcan/doip"
	"github.com/shekit/shekit/vcan/doip/entity"
)

// fakeECU answers a few requests the way the simulated ECU does.
func fakeECU(req []byte, pending func()) []byte {
	switch string(req) {
	case "\x10\x03":
		return []byte{0x50, 0x03, 0x00, 0x32, 0x01, 0xF4}
	case "\x31\x01\xFD\x10":
		pending()
		pending()
		return []byte{0x71, 0x01, 0xFD, 0x10, 0x00}
	case "\x3E\x80":
		return nil
	case "\x3E\x00":
		return []byte{0x7E, 0x00}
	}
	return []byte{0x7F, req[0], 0x11}
}

// refusing is a gateway's target it cannot forward to.
type refusing struct{}

func (refusing) Forward(context.Context, []byte, func([]byte)) error {
	return errors.New("bus off")
}

// silentTarget forwards and never answers.
type silentTarget struct{}

func (silentTarget) Forward(context.Context, []byte, func([]byte)) error { return nil }

// eagerTarget answers before Forward returns: the answer must still follow the ACK.
type eagerTarget struct{}

func (eagerTarget) Forward(_ context.Context, req []byte, answer func([]byte)) error {
	answer([]byte{req[0] + 0x40})
	return nil
}

func diag(source, target uint16, data ...byte) doip.DiagnosticMessage {
	return doip.DiagnosticMessage{SourceAddress: source, TargetAddress: target, Data: data}
}

func ack(source, target uint16) doip.DiagnosticACK {
	return doip.DiagnosticACK{SourceAddress: source, TargetAddress: target}
}

func nack(source, target uint16, code doip.DiagnosticCode) doip.DiagnosticNACK {
	return doip.DiagnosticNACK{SourceAddress: source, TargetAddress: target, Code: code}
}

// TestDiagnosticMessageRules: the ACK from the addressed node to the tester, then the answer;
// each response pending its own message without another ACK; a suppressed answer only ACKed;
// NACK 0x03 for an unknown target keeps the socket; 0x06 when the target cannot be reached; a
// target that does not answer is ACKed all the same.
func TestDiagnosticMessageRules(t *testing.T) {
	r := newRig(t, entity.Config{}, map[uint16]entity.Target{0x1001: entity.Handler(fakeECU),
		0x1002: refusing{}, 0x1003: silentTarget{}, 0x1004: eagerTarget{}})
	w := r.dialRaw(t)
	w.activate(0x0E00, 0x1000)

	w.send(diag(0x0E00, 0x1001, 0x10, 0x03))
	w.expect(ack(0x1001, 0x0E00))
	w.expect(diag(0x1001, 0x0E00, 0x50, 0x03, 0x00, 0x32, 0x01, 0xF4))

	w.send(diag(0x0E00, 0x1001, 0x31, 0x01, 0xFD, 0x10))
	w.expect(ack(0x1001, 0x0E00))
	w.expect(diag(0x1001, 0x0E00, 0x7F, 0x31, 0x78))
	w.expect(diag(0x1001, 0x0E00, 0x7F, 0x31, 0x78))
	w.expect(diag(0x1001, 0x0E00, 0x71, 0x01, 0xFD, 0x10, 0x00))

	w.send(diag(0x0E00, 0x1001, 0x3E, 0x80))
	w.expect(ack(0x1001, 0x0E00))
	w.send(diag(0x0E00, 0x1001, 0x3E, 0x00)) // nothing came for 3E 80 in between
	w.expect(ack(0x1001, 0x0E00))
	w.expect(diag(0x1001, 0x0E00, 0x7E, 0x00))

	w.send(diag(0x0E00, 0x2000, 0x10, 0x03))
	w.expect(nack(0x2000, 0x0E00, doip.DiagnosticUnknownTarget))
	w.send(diag(0x0E00, 0x1002, 0x10, 0x03))
	w.expect(nack(0x1002, 0x0E00, doip.DiagnosticTargetUnreachable))
	w.send(diag(0x0E00, 0x1003, 0x10, 0x03))
	w.expect(ack(0x1003, 0x0E00))
	w.send(diag(0x0E00, 0x1004, 0x22))
	w.expect(ack(0x1004, 0x0E00))
	w.expect(diag(0x1004, 0x0E00, 0x62))
	w.send(diag(0x0E00, 0x1001, 0x3E, 0x00)) // the socket is still open and in step
	w.expect(ack(0x1001, 0x0E00))
	w.expect(diag(0x1001, 0x0E00, 0x7E, 0x00))

	t.Run("a source address not active on the socket: NACK 0x02, closed", func(t *testing.T) {
		w.send(diag(0x0E01, 0x1001, 0x3E, 0x00))
		w.expect(nack(0x1001, 0x0E01, doip.DiagnosticInvalidSource))
		w.expectClosed()
	})
	t.Run("before routing activation: NACK 0x02, closed", func(t *testing.T) {
		w := r.dialRaw(t)
		w.send(diag(0x0E00, 0x1001, 0x3E, 0x00))
		w.expect(nack(0x1001, 0x0E00, doip.DiagnosticInvalidSource))
		w.expectClosed()
	})
}

// TestAnswersInTheRequestsVersion: a tester speaking version 0x03 gets its ACK and answers in 0x03.
func TestAnswersInTheRequestsVersion(t *testing.T) {
	r := newRig(t, entity.Config{}, map[uint16]entity.Target{0x1001: entity.Handler(fakeECU)})
	w := r.dialRaw(t)
	w.sendBytes(doip.Append(nil, doip.Message{Version: 3, Payload: doip.RoutingActivationRequest{SourceAddress: 0x0E00}}))
	w.expectVersion(3, doip.RoutingActivationResponse{TesterAddress: 0x0E00, EntityAddress: 0x1000, Code: doip.ActivationSuccess})
	w.sendBytes(doip.Append(nil, doip.Message{Version: 3, Payload: diag(0x0E00, 0x1001, 0x3E, 0x00)}))
	w.expectVersion(3, ack(0x1001, 0x0E00))
	w.expectVersion(3, diag(0x1001, 0x0E00, 0x7E, 0x00))
}

// TestGenericHeaderNACK: each generic NACK code, and which close the socket.
func TestGenericHeaderNACK(t *testing.T) {
	r := newRig(t, entity.Config{MaxDataSize: 64, MemoryBudget: 16}, map[uint16]entity.Target{0x1001: entity.Handler(fakeECU)})
	nackCode := func(code doip.NACKCode) doip.GenericNACK { return doip.GenericNACK{Code: code} }
	t.Run("incorrect pattern 0x00, closed", func(t *testing.T) {
		w := r.dialRaw(t)
		w.sendBytes(unhex(t, "02fc0005 00000007 0e00 00 00000000"))
		w.expect(nackCode(doip.NACKIncorrectPattern))
		w.expectClosed()
	})
	t.Run("version 0xFF on a routing activation 0x00, closed", func(t *testing.T) {
		w := r.dialRaw(t)
		w.sendBytes(unhex(t, "ff000005 00000007 0e00 00 00000000"))
		w.expect(nackCode(doip.NACKIncorrectPattern))
		w.expectClosed()
	})
	t.Run("unknown payload type 0x01, discarded, socket open", func(t *testing.T) {
		w := r.dialRaw(t)
		w.sendBytes(unhex(t, "02fd9999 00000003 010203"))
		w.expect(nackCode(doip.NACKUnknownPayloadType))
		w.sendBytes(unhex(t, "ff000001 00000000")) // a UDP-only request on TCP
		w.expect(nackCode(doip.NACKUnknownPayloadType))
		w.alive()
	})
	t.Run("message too large 0x02, discarded, socket open", func(t *testing.T) {
		w := r.dialRaw(t)
		w.activate(0x0E00, 0x1000)
		w.send(diag(0x0E00, 0x1001, make([]byte, 61)...)) // 65 > 64
		w.expect(nackCode(doip.NACKMessageTooLarge))
		w.send(diag(0x0E00, 0x1001, 0x3E, 0x00))
		w.expect(ack(0x1001, 0x0E00))
		w.expect(diag(0x1001, 0x0E00, 0x7E, 0x00))
	})
	t.Run("out of memory 0x03, discarded, socket open", func(t *testing.T) {
		w := r.dialRaw(t)
		w.activate(0x0E01, 0x1000)
		w.send(diag(0x0E01, 0x1001, make([]byte, 13)...)) // 17 bytes > the budget of 16
		w.expect(nackCode(doip.NACKOutOfMemory))
		w.send(diag(0x0E01, 0x1001, 0x3E, 0x00))
		w.expect(ack(0x1001, 0x0E01))
		w.expect(diag(0x1001, 0x0E01, 0x7E, 0x00))
	})
	t.Run("invalid payload length 0x04, closed", func(t *testing.T) {
		w := r.dialRaw(t)
		w.sendBytes(unhex(t, "02fd0005 00000008 0e00 00 00000000 00"))
		w.expect(nackCode(doip.NACKInvalidPayloadLength))
		w.expectClosed()
	})
}

// blockingTarget takes each request only when the test releases it, and never answers.
type blockingTarget struct{ release chan struct{} }

func (b blockingTarget) Forward(ctx context.Context, _ []byte, _ func([]byte)) error {
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestRoutesRunSideBySide: a target slow to take its request holds up neither the requests to
// other targets nor their answers; its own are acknowledged in order once it takes them. Requests
// waiting for it count against the memory budget: beyond it, generic NACK 0x03.
func TestRoutesRunSideBySide(t *testing.T) {
	slow := blockingTarget{release: make(chan struct{})}
	r := newRig(t, entity.Config{MaxDataSize: 64, MemoryBudget: 72},
		map[uint16]entity.Target{0x1001: entity.Handler(fakeECU), 0x1009: slow})
	w := r.dialRaw(t)
	w.activate(0x0E00, 0x1000)
	w.send(diag(0x0E00, 0x1009, make([]byte, 30)...)) // taken by the route, which waits on the target
	w.send(diag(0x0E00, 0x1009, make([]byte, 30)...)) // queued: 60 bytes held
	w.send(diag(0x0E00, 0x1009, make([]byte, 10)...)) // 60 + 14 > 72: the header check refuses it
	w.expect(doip.GenericNACK{Code: doip.NACKOutOfMemory})
	w.send(diag(0x0E00, 0x1001, 0x10, 0x03))
	w.expect(ack(0x1001, 0x0E00))
	w.expect(diag(0x1001, 0x0E00, 0x50, 0x03, 0x00, 0x32, 0x01, 0xF4))
	slow.release <- struct{}{}
	w.expect(ack(0x1009, 0x0E00))
	slow.release <- struct{}{}
	w.expect(ack(0x1009, 0x0E00))
	w.send(diag(0x0E00, 0x1009, make([]byte, 60)...)) // the budget is free again
	slow.release <- struct{}{}
	w.expect(ack(0x1009, 0x0E00))
}
