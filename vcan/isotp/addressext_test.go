package isotp

import (
	"bytes"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan"
)

// wireFrames returns the frames the tap saw, in order.
func wireFrames(tap *vcan.Node) []vcan.Frame {
	var out []vcan.Frame
	for _, tf := range tap.ReceiveFor(50 * time.Millisecond) {
		out = append(out, tf.Wire)
	}
	return out
}

func checkWire(t *testing.T, got []vcan.Frame, want []struct {
	id   uint32
	data string
}) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d frames on the bus, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		data := got[i].Data[:got[i].Length]
		if got[i].ID != w.id || !bytes.Equal(data, hexBytes(t, w.data)) {
			t.Errorf("frame %d: %#x % X\nwant     %#x %s", i, got[i].ID, data, w.id, w.data)
		}
	}
}

// TestAddressExtensionClassic: with extended addressing the tester's frames start with the ECU's
// address (0x40) and the ECU's with the tester's (0xF1), flow control included, so each frame
// carries one byte less (ISO 15765-2 extended addressing). The frames are written out by hand.
func TestAddressExtensionClassic(t *testing.T) {
	tester, ecu, tap := pair(t, vcan.NewHub(),
		[]Option{WithAddressExtension(0x40, 0xF1)}, []Option{WithAddressExtension(0xF1, 0x40)})
	exchange(t, tester, ecu, count(6, 1)) // the longest single frame: 6 bytes
	exchange(t, tester, ecu, count(7, 1)) // one byte more: FF of 5, FC, CF of 2
	exchange(t, ecu, tester, count(12, 0xA0))
	checkWire(t, wireFrames(tap), []struct {
		id   uint32
		data string
	}{
		{testerID, "40 06 01 02 03 04 05 06"},
		{testerID, "40 10 07 01 02 03 04 05"},
		{ecuID, "F1 30 00 00 CC CC CC CC"},
		{testerID, "40 21 06 07 CC CC CC CC"},
		{ecuID, "F1 10 0C A0 A1 A2 A3 A4"},
		{testerID, "40 30 00 00 CC CC CC CC"},
		{ecuID, "F1 21 A5 A6 A7 A8 A9 AA"},
		{ecuID, "F1 22 AB CC CC CC CC CC"},
	})
}

// TestAddressExtensionFilters: frames with another address byte are not received (nor are they
// taken for flow control); frames with the node's own are.
func TestAddressExtensionFilters(t *testing.T) {
	h := vcan.NewHub()
	_, ecu, tap := pair(t, h, nil, []Option{WithAddressExtension(0xF1, 0x40)})
	ctx := ctxFor(t, 5*time.Second)
	send := func(data string) {
		f := vcan.Frame{ID: testerID}
		f.Length = uint8(copy(f.Data[:], hexBytes(t, data)))
		if err := tap.SendFrame(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	send("41 03 AA BB CC CC CC CC") // another ECU's address
	send("03 11 22 33 CC CC CC CC") // normal addressing: 03 is not this ECU's address
	send("40 03 22 FD 00 CC CC CC")
	got, err := ecu.Receive(ctx)
	if err != nil || !bytes.Equal(got, hexBytes(t, "22 FD 00")) {
		t.Fatalf("received % X, %v; want 22 FD 00 (the frames for other addresses dropped)", got, err)
	}
}

// TestAddressExtensionCANFD: on CAN FD with TX_DL 64 the address byte precedes the SF_DL escape,
// a first frame carries 61 bytes and a consecutive frame 62.
func TestAddressExtensionCANFD(t *testing.T) {
	fd := WithCANFD(64, false)
	tester, ecu, tap, _ := fdPair(t, []Option{fd, WithAddressExtension(0x40, 0xF1)}, []Option{fd, WithAddressExtension(0xF1, 0x40)})
	exchange(t, tester, ecu, count(20, 1))
	exchange(t, tester, ecu, count(70, 1))
	checkWire(t, wireFrames(tap), []struct {
		id   uint32
		data string
	}{
		{testerID, "40 00 14 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14 CC"},
		{testerID, "40 10 46 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14 15 16 17 18 19 1A 1B 1C 1D 1E 1F " +
			"20 21 22 23 24 25 26 27 28 29 2A 2B 2C 2D 2E 2F 30 31 32 33 34 35 36 37 38 39 3A 3B 3C 3D"},
		{ecuID, "F1 30 00 00 CC CC CC CC"},
		{testerID, "40 21 3E 3F 40 41 42 43 44 45 46 CC"},
	})
}

// TestMinFrameLength: padded frames are at least the minimum frame length rather than 8 bytes:
// 4 on classic CAN (flow control too), 12 on CAN FD, where a single frame then needs the SF_DL
// escape; longer content is padded as usual.
func TestMinFrameLength(t *testing.T) {
	tester, ecu, tap := pair(t, vcan.NewHub(), []Option{WithMinFrameLength(4)}, []Option{WithMinFrameLength(4)})
	exchange(t, tester, ecu, count(2, 1))
	exchange(t, tester, ecu, count(8, 1))
	checkWire(t, wireFrames(tap), []struct {
		id   uint32
		data string
	}{
		{testerID, "02 01 02 CC"},
		{testerID, "10 08 01 02 03 04 05 06"},
		{ecuID, "30 00 00 CC"},
		{testerID, "21 07 08 CC"},
	})
	fd := WithCANFD(64, false)
	tester, ecu, tap, _ = fdPair(t, []Option{fd, WithMinFrameLength(12)}, []Option{fd, WithMinFrameLength(12)})
	exchange(t, tester, ecu, count(2, 1))
	exchange(t, tester, ecu, count(11, 1))
	checkWire(t, wireFrames(tap), []struct {
		id   uint32
		data string
	}{
		{testerID, "00 02 01 02 CC CC CC CC CC CC CC CC"}, // CAN_DL above 8: the SF_DL escape
		{testerID, "00 0B 01 02 03 04 05 06 07 08 09 0A 0B CC CC CC"},
	})
}
