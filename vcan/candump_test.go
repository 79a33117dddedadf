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
		"(1.000000) vcan0 123##100", "(1.000000) vcan0 123#R9", "(x.000000) vcan0 123#00", "(1.000000) vcan0 2000000000#00",
	} {
		if l, err := ParseLogLine(bad); err == nil {
			t.Errorf("%q parsed as %+v", bad, l)
		}
	}
}

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
