package vcan

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.einride.tech/can"
)

// TestParseCandumpLines reads lines in the form can-utils' candump -l writes (the first is the
// example of can-utils' README).
func TestParseCandumpLines(t *testing.T) {
	for _, tc := range []struct {
		line string
		want LogLine
	}{
		{"(1436509052.249713) vcan0 044#2A366C2BBA62F0", LogLine{Time: 1436509052249713 * time.Microsecond, Interface: "vcan0",
			Frame: can.Frame{ID: 0x044, Length: 7, Data: can.Data{0x2A, 0x36, 0x6C, 0x2B, 0xBA, 0x62, 0xF0}}}},
		{"(0.000270) can0 18DA00F1#0322FD00", LogLine{Time: 270 * time.Microsecond, Interface: "can0",
			Frame: can.Frame{ID: 0x18DA00F1, IsExtended: true, Length: 4, Data: can.Data{0x03, 0x22, 0xFD, 0x00}}}},
		{"(1.000000) vcan0 7E0#", LogLine{Time: time.Second, Interface: "vcan0", Frame: can.Frame{ID: 0x7E0}}},
		{"(1.000000) vcan0 123#R", LogLine{Time: time.Second, Interface: "vcan0", Frame: can.Frame{ID: 0x123, IsRemote: true}}},
		{"(1.000000) vcan0 123#R3", LogLine{Time: time.Second, Interface: "vcan0", Frame: can.Frame{ID: 0x123, IsRemote: true, Length: 3}}},
	} {
		tc.want.Wire = FromClassic(tc.want.Frame)
		got, err := ParseLogLine(tc.line)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v", tc.line, got, err)
			continue
		}
		if out := FormatLogLine(got); out != tc.line {
			t.Errorf("formatted back as %q", out)
		}
	}
	for _, bad := range []string{
		"", "(1.0) vcan0 123#00", "1.000000 vcan0 123#00", "(1.000000) vcan0 12#00", "(1.000000) vcan0 123#0",
		"(1.000000) vcan0 123#000102030405060708", "(1.000000) vcan0 123", "(1.000000) vcan0 800#00",
		"(1.000000) vcan0 123#R9", "(x.000000) vcan0 123#00", "(1.000000) vcan0 2000000000#00",
	} {
		if l, err := ParseLogLine(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, l)
		}
	}
}

// TestParseCandumpFDLines reads CAN FD records as candump -l writes them (ID##<flags>DATA; the
// flags a hex digit of BRS 1, ESI 2, and FDF 4 that newer kernels set on every FD frame) and
// writes them back without FDF.
func TestParseCandumpFDLines(t *testing.T) {
	fd := func(id uint32, ext, brs, esi bool, data ...byte) Frame {
		f := Frame{ID: id, Extended: ext, FD: true, BRS: brs, ESI: esi, Length: uint8(len(data))}
		copy(f.Data[:], data)
		return f
	}
	twelve := []byte{0x10, 0x0B, 0x31, 0x01, 0xFD, 0x10, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF}
	sixtyFour := make([]byte, 64)
	for i := range sixtyFour {
		sixtyFour[i] = byte(i)
	}
	hex64 := "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F" +
		"202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F"
	for _, tc := range []struct {
		line, back string
		want       Frame
	}{
		{"(1.000000) vcan0 123##100", "", fd(0x123, false, true, false, 0x00)},
		{"(1.000000) vcan0 123##0", "", fd(0x123, false, false, false)},
		{"(1.000000) vcan0 7E0##3100B3101FD10AABBCCDDEEFF", "", fd(0x7E0, false, true, true, twelve...)},
		{"(0.000405) vcan0 18DA00F1##1" + hex64, "", fd(0x18DA00F1, true, true, false, sixtyFour...)},
		// FDF (4) is dropped: BRS|FDF is written back as BRS.
		{"(1.000000) vcan0 7E8##50322FD00", "(1.000000) vcan0 7E8##10322FD00", fd(0x7E8, false, true, false, 0x03, 0x22, 0xFD, 0x00)},
		{"(1.000000) vcan0 7E8##40011223344556677", "(1.000000) vcan0 7E8##00011223344556677", fd(0x7E8, false, false, false, 0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77)},
	} {
		got, err := ParseLogLine(tc.line)
		if err != nil || got.Wire != tc.want || got.Frame != (can.Frame{}) || got.Interface != "vcan0" {
			t.Errorf("%s: got %+v, %v", tc.line, got.Wire, err)
			continue
		}
		if tc.back == "" {
			tc.back = tc.line
		}
		if out := FormatLogLine(got); out != tc.back {
			t.Errorf("formatted back as %q, want %q", out, tc.back)
		}
	}
	for _, bad := range []string{
		"(1.000000) vcan0 123##", "(1.000000) vcan0 123##G00", "(1.000000) vcan0 123##1000102030405060708",
		"(1.000000) vcan0 123##1" + hex64 + "00", "(1.000000) vcan0 123##10", "(1.000000) vcan0 123##R",
		"(1.000000) vcan0 800##100", "(1.000000) vcan0 123###100",
	} {
		if l, err := ParseLogLine(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, l.Wire)
		}
	}
}

// TestCaptureAndReplayFD: a capture of CAN FD frames on a hub with a data bit rate reads back as
// the frames sent, and replays on a FrameConn; a Conn without CAN FD refuses to replay them.
func TestCaptureAndReplayFD(t *testing.T) {
	h := NewHub(WithBitRate(500000, WorstCaseStuffing), WithDataBitRate(2000000))
	defer h.Close()
	sender, tap := h.Connect(), h.Connect()
	ctx := context.Background()
	sent := []Frame{{ID: 0x7E0, FD: true, BRS: true, Length: 64}, FromClassic(frame(0x7E8, 0x30, 0, 0)),
		{ID: 0x18DA00F1, Extended: true, FD: true, Length: 12, Data: [64]byte{0x00, 0x0A}}}
	for i := range sent[0].Data {
		sent[0].Data[i] = byte(255 - i)
	}
	for _, f := range sent {
		if err := sender.SendFrame(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := Capture(cctx, tap, NewLogWriter(&log, "vcan0")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "(0.000405) vcan0 7E0##1FFFEFD") {
		t.Fatalf("no FD record of the 64-byte frame at 405 µs in:\n%s", log.String())
	}
	lines, err := ReadLog(&log)
	if err != nil || len(lines) != 3 {
		t.Fatalf("%d lines, %v", len(lines), err)
	}
	for i, l := range lines {
		if l.Wire != sent[i] {
			t.Fatalf("line %d: %+v", i, l.Wire)
		}
	}
	h2 := NewHub(WithBitRate(500000, WorstCaseStuffing), WithDataBitRate(2000000))
	defer h2.Close()
	player, listener := h2.Connect(), h2.Connect()
	if err := Replay(ctx, player, lines, false); err != nil {
		t.Fatal(err)
	}
	for i := range lines {
		tf, err := listener.ReceiveTimed(ctx)
		if err != nil || tf.Wire != sent[i] || i == 0 && tf.Time != 405500*time.Nanosecond {
			t.Fatalf("replayed frame %d: %+v at %v, %v", i, tf.Wire, tf.Time, err)
		}
	}
	if err := Replay(ctx, classicOnly{player}, lines, false); err == nil || !strings.Contains(err.Error(), "CAN FD") {
		t.Fatalf("replay of FD frames on a classic Conn: %v", err)
	}
}

// classicOnly hides a node's CAN FD methods.
type classicOnly struct{ Conn }

func TestCaptureAndReplay(t *testing.T) {
	h := NewHub(WithBitRate(500000, WorstCaseStuffing))
	defer h.Close()
	sender, tap := h.Connect(), h.Connect()
	ctx := context.Background()
	sent := []can.Frame{frame(0x7E0, 0x02, 0x10, 0x03), frame(0x7E8, 0x06, 0x50, 0x03, 0, 0x32, 0x01, 0xF4),
		{ID: 0x18DA00F1, IsExtended: true, Length: 1, Data: can.Data{0x3E}}}
	for _, f := range sent {
		sender.Send(ctx, f)
	}
	var log bytes.Buffer
	lw := NewLogWriter(&log, "vcan0")
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := Capture(cctx, tap, lw); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(log.String(), "\n"); n != 3 {
		t.Fatalf("captured %d lines:\n%s", n, log.String())
	}
	lines, err := ReadLog(&log)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lines {
		if l.Frame != sent[i] || l.Interface != "vcan0" {
			t.Fatalf("line %d: %+v", i, l)
		}
	}
	// The capture was back to back: replayed unpaced on a bus of the same bit rate, every frame
	// ends at the logged time.
	replay := func(paced bool) []time.Duration {
		h := NewHub(WithBitRate(500000, WorstCaseStuffing))
		defer h.Close()
		player, listener := h.Connect(), h.Connect()
		if err := Replay(ctx, player, lines, paced); err != nil {
			t.Fatal(err)
		}
		var times []time.Duration
		for i := range lines {
			tf, err := listener.ReceiveTimed(ctx)
			if err != nil || tf.Frame != lines[i].Frame {
				t.Fatalf("replayed frame %d: %+v, %v", i, tf, err)
			}
			times = append(times, tf.Time)
		}
		return times
	}
	for i, at := range replay(false) {
		if at != lines[i].Time {
			t.Fatalf("unpaced: frame %d ends at %v, logged at %v", i, at, lines[i].Time)
		}
	}
	// Paced, each frame waits at least the logged gap after the previous one.
	paced := replay(true)
	for i := 1; i < len(paced); i++ {
		if gap, logged := paced[i]-paced[i-1], lines[i].Time-lines[i-1].Time; gap < logged {
			t.Fatalf("paced: gap %v before frame %d, logged %v", gap, i, logged)
		}
	}
	if _, err := ReadLog(strings.NewReader("(1.000000) vcan0 123#00\nnonsense\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad log: %v", err)
	}
}

func FuzzParseLogLine(f *testing.F) {
	f.Add("(1436509052.249713) vcan0 044#2A366C2BBA62F0")
	f.Add("(0.000270) can0 18DA00F1#0322FD00")
	f.Add("(1.000000) vcan0 123#R3")
	f.Add("(1.000000) vcan0 7E0##3100B3101FD10AABBCCDDEEFF")
	f.Add("(1.000000) vcan0 18DA00F1##50322FD00")
	f.Fuzz(func(t *testing.T, line string) {
		l, err := ParseLogLine(line)
		if err != nil {
			return
		}
		again, err := ParseLogLine(FormatLogLine(l))
		if err != nil || again != l {
			t.Fatalf("%q: round trip gave %+v, %v", line, again, err)
		}
	})
}
