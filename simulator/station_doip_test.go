package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/server/reference"
	"github.com/shekit/shekit/simulator/station"
)

// TestStationOverDoIP: the station provisions the three ECUs behind `fleet --doip`, by the
// gateway's address and then by discovery, and refuses --ecu values that are not logical
// addresses.
func TestStationOverDoIP(t *testing.T) {
	srv, err := reference.New(context.Background(), reference.Config{DataDir: t.TempDir(), CLMKeys: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	_, addr := startDoIPCommand(t, "fleet", "--can", "mem", "--count", "3", "--doip", "127.0.0.1:0")
	for _, how := range [][]string{
		{"--doip", addr, "--fleet", "2", "--ecu", "0x1003"},
		{"--doip", "discover", "--discover", addr, "--ecu", "0x1001", "--ecu", "0x1002", "--ecu", "0x1003"},
	} {
		args := append([]string{"station", "--kms", ts.URL, "--types", "master"}, how...)
		out, errOut, code := runFor(t, 60*time.Second, args...)
		if code != 0 || !strings.Contains(errOut, "3 ECUs: 3 provisioned, 0 failed") {
			t.Fatalf("%v: exit %d\n%s%s", how, code, out, errOut)
		}
		var sum station.Summary
		if err := json.Unmarshal([]byte(out), &sum); err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, e := range sum.ECUs {
			names[e.Name] = true
		}
		if sum.Totals.ECUsOK != 3 || len(names) != 3 || !names["0x1001"] || !names["0x1002"] || !names["0x1003"] {
			t.Fatalf("%v: summary %+v, ECUs %v", how, sum.Totals, names)
		}
	}
	out, errOut, code := runFor(t, 5*time.Second, "station", "--kms", ts.URL, "--doip", addr, "--ecu", "0x7E0:0x7E8")
	if code != exitUsage || !strings.Contains(errOut, "logical address") {
		t.Fatalf("--ecu TX:RX with --doip: exit %d\n%s%s", code, out, errOut)
	}
}
