//go:build linux

package vcan

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSocketFrameEncoding: struct can_frame and struct canfd_frame (linux/can.h) as written by
// hand: can_id in host order (little-endian here) with CAN_EFF_FLAG 0x80000000 and CAN_RTR_FLAG
// 0x40000000, len, flags (CANFD_BRS 1, CANFD_ESI 2), two reserved bytes, the data.
func TestSocketFrameEncoding(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the expected bytes are little-endian")
	}
	h := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	fd := Frame{ID: 0x18DA00F1, Extended: true, FD: true, BRS: true, Length: 12, Data: [64]byte{0x00, 0x0A, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	cases := []struct {
		f    Frame
		wire []byte
	}{
		{Frame{ID: 0x7E0, Length: 3, Data: [64]byte{1, 2, 3}}, h("E0070000 03 000000 0102030000000000")},
		{Frame{ID: 0x123, Remote: true, Length: 2}, h("23010040 02 000000 0000000000000000")},
		{fd, append(h("F100DA98 0C 010000 000A0102030405060708090A"), make([]byte, 52)...)},
		{Frame{ID: 0x7E8, FD: true, ESI: true, Length: 8, Data: [64]byte{0x30}}, append(h("E8070000 08 020000 3000000000000000"), make([]byte, 56)...)},
	}
	for _, tc := range cases {
		if got := encodeSocketFrame(tc.f); !bytes.Equal(got, tc.wire) {
			t.Errorf("%+v encoded % X\nwant % X", tc.f, got, tc.wire)
		}
		if got, ok := decodeSocketFrame(tc.wire); !ok || got != tc.f {
			t.Errorf("% X decoded %+v, %v", tc.wire, got, ok)
		}
	}
	for _, bad := range [][]byte{
		h("01000020 08 000000 0000000000000000"),             // CAN_ERR_FLAG: an error frame
		h("E0070000 09 000000 0000000000000000"),             // 9 bytes in a classic frame
		append(h("E0070000 0D 000000"), make([]byte, 64)...), // 13 bytes: no CAN FD length
		h("E0070000 03 000000 010203"),                       // neither 16 nor 72 bytes
	} {
		if f, ok := decodeSocketFrame(bad); ok {
			t.Errorf("% X decoded as %+v", bad, f)
		}
	}
}

// TestSocketCANFDOnVCAN0: a CAN FD socket passes the backend suite with classic frames, and
// carries CAN FD frames of every length, with BRS and ESI, to another; a classic socket (without
// CAN_RAW_FD_FRAMES) never sees them.
func TestSocketCANFDOnVCAN0(t *testing.T) {
	requireVCAN0(t)
	backendSuite(t, func(t *testing.T, filters ...Filter) Conn {
		s, err := DialSocketCANFD(context.Background(), "vcan0", filters...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := DialSocketCANFD(ctx, "vcan0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := DialSocketCANFD(ctx, "vcan0", ExactID(0x7E1, false), ExactID(0x18DA00F1, true))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	classic, err := DialSocketCAN(ctx, "vcan0", ExactID(0x7E1, false), ExactID(0x18DA00F1, true))
	if err != nil {
		t.Fatal(err)
	}
	defer classic.Close()
	time.Sleep(50 * time.Millisecond) // let the readers start
	var sent []Frame
	for i, n := range FDLengths {
		f := Frame{ID: 0x7E1, FD: true, BRS: i%2 == 0, ESI: i%3 == 0, Length: n}
		if i%4 == 0 {
			f.ID, f.Extended = 0x18DA00F1, true
		}
		for j := range f.Data[:n] {
			f.Data[j] = byte(i*16 + j)
		}
		sent = append(sent, f)
	}
	last := Frame{ID: 0x7E1, Length: 2, Data: [64]byte{0xAB, 0xCD}} // a classic frame to end with
	for _, f := range append(sent, last) {
		if err := a.SendFrame(ctx, f); err != nil {
			t.Fatalf("send %+v: %v (is vcan0's MTU 72?)", f, err)
		}
	}
	for i, want := range append(sent, last) {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		got, err := b.ReceiveFrame(rctx)
		rcancel()
		if err != nil || got != want {
			t.Fatalf("frame %d: %+v, %v; want %+v", i, got, err, want)
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	if got, err := classic.Receive(rctx); err != nil || FromClassic(got) != last {
		t.Fatalf("the classic socket received %v, %v; want only the classic frame", got, err)
	}
	if err := a.SendFrame(ctx, Frame{ID: 0x7E1, FD: true, Length: 13}); !errors.Is(err, ErrFrameLength) {
		t.Fatalf("a CAN FD frame of 13 bytes: %v", err)
	}
}

// requireVCAN0 skips the test where there is no vcan0, unless SHEKIT_REQUIRE_VCAN is set.
func requireVCAN0(t *testing.T) {
	t.Helper()
	if _, err := net.InterfaceByName("vcan0"); err != nil {
		if os.Getenv("SHEKIT_REQUIRE_VCAN") != "" {
			t.Fatalf("no vcan0: %v", err)
		}
		t.Skip("no vcan0 on this machine (vcan/setup-vcan.sh brings it up where the kernel has CAN; vcan/run-in-vm.sh runs tests in a VM that has one)")
	}
}
