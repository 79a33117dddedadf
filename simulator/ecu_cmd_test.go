package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.einride.tech/can"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/vcan"
)

func runFor(t *testing.T, d time.Duration, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, &stdout, &stderr)
	return stdout.String(), stderr.String(), code
}

func TestECUCommandsRunUntilStopped(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := runFor(t, 200*time.Millisecond, "fleet", "--can", "mem", "--count", "3", "--store", dir,
		"--log", filepath.Join(dir, "bus.log"))
	if code != 0 || !strings.Contains(out, "3 ECUs listening on mem") {
		t.Fatalf("fleet: exit %d, %s%s", code, out, errOut)
	}
	stores, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(stores) != 3 {
		t.Fatalf("%d key store files, want one per ECU", len(stores))
	}
	if _, err := os.Stat(filepath.Join(dir, "bus.log")); err != nil {
		t.Fatalf("bus log: %v", err)
	}
	out, errOut, code = runFor(t, 100*time.Millisecond, "ecu", "--can", "mem", "--uid", "000300010000000000000000000002",
		"--profile", "csec", "--store", dir, "--fault-slow-nvm", "10ms",
		"--padding", "none", "--seed-length", "4", "--relock-same-session", "--rng-init-at-boot")
	if code != 0 || !strings.Contains(out, "ECU 000300010000000000000000000002 listening on mem: request 0x7e0, response 0x7e8") {
		t.Fatalf("ecu: exit %d, %s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "000300010000000000000000000002.json")); err != nil {
		t.Fatal(err)
	}
}

func TestECUCommandBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ecu", "--uid", "0003"}, 2, "--uid"},
		{[]string{"ecu", "--profile", "she2"}, 2, "--profile"},
		{[]string{"ecu", "--security-key", "00"}, 2, "--security-key"},
		{[]string{"ecu", "--tx", "0x20000000"}, 2, "--tx"},
		{[]string{"ecu", "--rx", "seven"}, 2, "--rx"},
		{[]string{"ecu", "--bogus"}, 2, "bogus"},
		{[]string{"ecu", "--initial-master-key", "zz"}, 2, "--initial-master-key"},
		{[]string{"ecu", "stray"}, 2, "unexpected argument"},
		{[]string{"ecu", "--padding", "1cc"}, 2, "--padding"},
		{[]string{"ecu", "--seed-length", "33"}, 2, "--seed-length"},
		{[]string{"ecu", "--seed-length", "0"}, 2, "--seed-length"},
		{[]string{"fleet", "--count", "0"}, 2, "--count"},
		{[]string{"ecu", "--can", "mem", "--kernel-isotp"}, 1, "--kernel-isotp"},
		{[]string{"ecu", "--can", "nosuchcan0"}, 1, "nosuchcan0"},
	} {
		out, errOut, code := runFor(t, time.Second, tc.args...)
		if code != tc.code || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit %d and one line mentioning %s", tc.args, code, errOut, out, tc.code, tc.want)
		}
	}
}

// TestECUFlagsLegalVariants: the legal-variant flags reach the ECU's configuration.
func TestECUFlagsLegalVariants(t *testing.T) {
	fs := flag.NewFlagSet("ecu", flag.ContinueOnError)
	var f ecuFlags
	f.register(fs, false)
	if err := fs.Parse([]string{"--padding", "none", "--seed-length", "4", "--relock-same-session", "--rng-init-at-boot"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Padding != ecu.NoPadding || cfg.SeedLength != 4 || !cfg.RelockSameSession || !cfg.RNGInitAtBoot {
		t.Fatalf("config %+v", cfg)
	}
	var d ecuFlags
	d.register(flag.NewFlagSet("ecu", flag.ContinueOnError), false)
	if cfg, err = d.config(); err != nil || cfg.Padding != ecu.PadWith(0xCC) || cfg.SeedLength != 16 || cfg.RelockSameSession || cfg.RNGInitAtBoot {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
}

func TestLogTrafficWritesEveryFrame(t *testing.T) {
	hub := vcan.NewHub()
	defer hub.Close()
	sender, tap := hub.Connect(), hub.Connect()
	var out bytes.Buffer
	stop := logTraffic(context.Background(), tap, vcan.NewLogWriter(&out, "mem"))
	sent := []can.Frame{{ID: 0x7E0, Length: 2, Data: can.Data{0x10, 0x03}}, {ID: 0x7E8, Length: 1, Data: can.Data{0x7F}}}
	for _, f := range sent {
		if err := sender.Send(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	stop()
	text := out.String()
	lines, err := vcan.ReadLog(strings.NewReader(text))
	if err != nil || len(lines) != 2 || lines[0].Frame != sent[0] || lines[1].Frame != sent[1] || lines[1].Interface != "mem" {
		t.Fatalf("%v %+v\n%s", err, lines, text)
	}
}
