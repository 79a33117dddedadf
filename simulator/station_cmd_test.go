package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/server/reference"
	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/station"
	"github.com/shekit/shekit/vcan/uds/profile"
)

func TestStationCommandProvisionsASimulatedFleet(t *testing.T) {
	srv, err := reference.New(context.Background(), reference.Config{DataDir: t.TempDir(), CLMKeys: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	summary := filepath.Join(t.TempDir(), "summary.json")
	out, errOut, code := runFor(t, 30*time.Second, "station", "--kms", ts.URL, "--fleet", "3", "--ecu", "0x7F0:0x7F8",
		"--types", "master,secoc:4-5", "--sync", "--secret", "1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d", "--summary", summary)
	if code != 0 || out != "" {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "[4/4] ") || !strings.Contains(errOut, "4 ECUs: 4 provisioned, 0 failed") {
		t.Errorf("progress lines:\n%s", errOut)
	}
	b, err := os.ReadFile(summary)
	if err != nil {
		t.Fatal(err)
	}
	var sum station.Summary
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Totals.ECUsOK != 4 || sum.Totals.Keys[station.Injected] != 12 || sum.Totals.Syncs[station.Verified] != 12 {
		t.Errorf("totals %+v", sum.Totals)
	}
	// The same ECUs again, now without the supplier's secret: SecOC keys are refused, exit 1.
	out, errOut, code = runFor(t, 30*time.Second, "station", "--kms", ts.URL, "--fleet", "1", "--types", "secoc:4")
	if code != 1 || !strings.Contains(errOut, "FAILED (0/1 keys): SecOCKey 4: KMS refused: The SupplierSecretKey is required.") ||
		!strings.Contains(out, `"refused": 1`) {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}

func TestStationCommandBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"station", "--fleet", "1"}, "--kms"},
		{[]string{"station", "--kms", "http://x"}, "no ECU"},
		{[]string{"station", "--kms", "http://x", "--ecu", "0x7E0"}, "TX:RX"},
		{[]string{"station", "--kms", "http://x", "--ecu", "0x7E0:zz"}, "--ecu"},
		{[]string{"station", "--kms", "http://x", "--fleet", "1", "--types", "boot"}, "--types"},
		{[]string{"station", "--kms", "http://x", "--fleet", "1", "--cluster", "01"}, "--cluster"},
		{[]string{"station", "--kms", "http://x", "--fleet", "1", "--secret", "1d"}, "--secret"},
		{[]string{"station", "--kms", "http://x", "--fleet", "1", "--parallel", "0"}, "--parallel"},
		{[]string{"station", "--kms", "http://x", "--fleet", "1", "--kms-requests-per-ecu", "0"}, "--kms-requests-per-ecu"},
		{[]string{"station", "--kms", "http://x", "--fleet", "1", "--kernel-isotp"}, "--kernel-isotp"},
		{[]string{"station", "--kms", "http://x", "--fleet", "1", "stray"}, "unexpected argument"},
		{[]string{"station", "--kms", "http://x", "--fleet", "1", "--diag-profile", "no-such"}, "--diag-profile: profile \"no-such\": no such built-in profile"},
		{[]string{"station", "--kms", "http://x", "--fleet", "1", "--diag-profile", "missing/ecu.yaml"}, "--diag-profile"},
		{[]string{"station", "--kms", "http://x", "--fleet", "1", "--security-key", "01"}, "--security-key"},
	} {
		out, errOut, code := runFor(t, 5*time.Second, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

func TestStationCommandDrivesEachBuiltinDiagProfile(t *testing.T) {
	srv, err := reference.New(context.Background(), reference.Config{DataDir: t.TempDir(), CLMKeys: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for i, p := range profile.Builtin() {
		// Each profile's ECUs get their own UIDs: the KMS keeps the keys of the ECUs before.
		uid := fmt.Sprintf("0001001d000000%02x00000000000000", i+1)
		// A profile over DoIP reaches `fleet --doip` serving it, at the profile's addresses.
		reach := []string{"--fleet-uid", uid}
		if p.OverDoIP() {
			_, addr := startDoIPCommand(t, "fleet", "--can", "mem", "--count", "2", "--uid", uid, "--doip", "127.0.0.1:0", "--diag-profile", p.Name)
			reach = []string{"--doip", addr}
		}
		args := append([]string{"station", "--kms", ts.URL, "--diag-profile", p.Name, "--fleet", "2",
			"--types", "master,secoc:4", "--sync", "--secret", "1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d"}, reach...)
		out, errOut, code := runFor(t, 30*time.Second, args...)
		if code != 0 || !strings.Contains(errOut, "2 ECUs: 2 provisioned, 0 failed") {
			t.Fatalf("%s: exit %d\n%s%s", p.Name, code, out, errOut)
		}
		ids, err := ecu.DiagFleetIDs(p, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`"name": "%#x:%#x"`, ids.Request, ids.Response)
		if p.OverDoIP() {
			want = fmt.Sprintf(`"name": "%#04x"`, p.DoIP.LogicalAddress+1)
		}
		if !strings.Contains(out, want) {
			t.Errorf("%s: no %s in the summary:\n%s", p.Name, want, out)
		}
	}
}
