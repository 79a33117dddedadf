package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/server/reference"
	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/simulator/station"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/doip"
	"github.com/shekit/shekit/vcan/doip/entity"
	"github.com/shekit/shekit/vcan/doip/tester"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// didOverDoIP writes did-canfd's layout as a DoIP profile: the ECU at logical address first, the
// tester at 0x0E42, the entity entity ("" for none), its CAN side did-canfd's.
func didOverDoIP(t *testing.T, first, entity string) string {
	t.Helper()
	data, err := os.ReadFile("../vcan/uds/profile/builtin/did-canfd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doip := "name: did-doip\ntransport: doip\ndoip:\n  logical_address: " + first + "\n  tester_address: 0x0E42\n"
	if entity != "" {
		doip += "  entity: " + entity + "\n"
	}
	text := strings.Replace(string(data), "name: did-canfd\n", doip, 1)
	file := filepath.Join(t.TempDir(), "did-doip.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestFleetAndStationOverDoIPWithProfile: `fleet --doip` serves a DoIP profile over did-canfd's
// layout, its ECUs at the profile's logical address +i behind the gateway at 0x1000, and the
// station, given the profile with the entity in it and no --doip, provisions all three.
func TestFleetAndStationOverDoIPWithProfile(t *testing.T) {
	srv, err := reference.New(context.Background(), reference.Config{DataDir: t.TempDir(), CLMKeys: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	entityAddr, addr := startDoIPCommand(t, "fleet", "--can", "mem", "--count", "3", "--doip", "127.0.0.1:0",
		"--diag-profile", didOverDoIP(t, "0x2001", ""))
	if entityAddr != "0x1000" {
		t.Fatalf("gateway at %s", entityAddr)
	}
	withEntity := didOverDoIP(t, "0x2001", addr)
	out, errOut, code := runFor(t, 60*time.Second, "station", "--kms", ts.URL, "--types", "master",
		"--diag-profile", withEntity, "--fleet", "3")
	if code != 0 || !strings.Contains(errOut, "3 ECUs: 3 provisioned, 0 failed") {
		t.Fatalf("station: exit %d\n%s%s", code, out, errOut)
	}
	var sum station.Summary
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range sum.ECUs {
		names[e.Name] = true
	}
	if len(names) != 3 || !names["0x2001"] || !names["0x2002"] || !names["0x2003"] {
		t.Fatalf("ECUs provisioned: %v", names)
	}
	// The ECUs behind the gateway serve the profile, not the default: SecurityAccess at the
	// default's level 0x01 is refused (did-canfd's is 0x11).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := tester.Dial(ctx, addr, tester.Config{SourceAddress: 0x0E42})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := ecu.NewClient(conn.Transport(0x2001)).Prepare(ctx, &ecu.DefaultSecurityKey); err == nil {
		t.Fatal("a did-canfd ECU unlocked at the default profile's level 0x01")
	}
}

// TestECUOverDoIPWithProfile: `ecu --doip` with a DoIP profile is an entity at the profile's
// logical address (doip-default's 0x1001, a file's 0x2345), unless --logical-address says
// otherwise, and serves the profile's layout.
func TestECUOverDoIPWithProfile(t *testing.T) {
	file := didOverDoIP(t, "0x2345", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--diag-profile", "doip-default"}, "0x1001"},
		{[]string{"--diag-profile", file}, "0x2345"},
		{[]string{"--diag-profile", file, "--logical-address", "0x1234"}, "0x1234"},
	} {
		args := append([]string{"ecu", "--can", "mem", "--doip", "127.0.0.1:0", "--uid", "0001001d0000000000000000000007"}, tc.args...)
		entityAddr, addr := startDoIPCommand(t, args...)
		if entityAddr != tc.want {
			t.Fatalf("%v: entity at %s, want %s", tc.args, entityAddr, tc.want)
		}
		p, err := profile.Find(tc.args[1])
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := tester.Dial(ctx, addr, tester.Config{SourceAddress: p.DoIP.TesterAddress})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		uid, err := ecu.NewProfileClient(conn.Transport(conn.EntityAddress()), p).UID(ctx)
		if want, _ := she.ParseUID("0001001d0000000000000000000007"); err != nil || uid != want {
			t.Fatalf("%v: UID %v, %v", tc.args, uid, err)
		}
	}
}

// TestFleetServesOnTheProfilesEntity: without --doip, `fleet` with a DoIP profile naming an
// entity serves DoIP there.
func TestFleetServesOnTheProfilesEntity(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	free := ln.Addr().String() // free once closed; nothing else in the test binds it
	ln.Close()
	_, addr := startDoIPCommand(t, "fleet", "--can", "mem", "--count", "1", "--diag-profile", didOverDoIP(t, "0x2001", free))
	if addr != free {
		t.Fatalf("entity on %s, want the profile's %s", addr, free)
	}
}

// TestDoIPProfileBadInput: a DoIP profile whose fleet would take the gateway's address, a
// tester's or pass the last physical one, and a
// station given a DoIP profile without an entity or --doip, are refused before anything starts.
func TestDoIPProfileBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"fleet", "--can", "mem", "--count", "1", "--doip", "127.0.0.1:0", "--diag-profile", didOverDoIP(t, "0x1000", "")},
			"--doip: 1 ECUs from logical address 0x1000 overlap"},
		{[]string{"fleet", "--can", "mem", "--count", "3", "--doip", "127.0.0.1:0", "--diag-profile", didOverDoIP(t, "0x0DFE", "")},
			"--doip: 3 ECUs from logical address 0x0dfe overlap"},
		{[]string{"fleet", "--can", "mem", "--count", "2", "--doip", "127.0.0.1:0", "--diag-profile", didOverDoIP(t, "0x7FFF", "")},
			"pass 0x7FFF"},
		{[]string{"station", "--kms", "http://127.0.0.1:1", "--diag-profile", "doip-default", "--fleet", "1"},
			"--diag-profile doip-default travels over DoIP and names no entity"},
	} {
		out, errOut, code := runFor(t, 5*time.Second, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit %d mentioning %q", tc.args, code, errOut, out, exitUsage, tc.want)
		}
	}
}

// TestGatewayForwardsWithTheProfilesAddressBytes: behind `fleet --doip` the gateway speaks to
// each ECU as a tester on the profile's CAN side: under extended-seedkey its requests lead with
// the ECU's address byte and the answers with the tester's, so the station reaches both ECUs.
func TestGatewayForwardsWithTheProfilesAddressBytes(t *testing.T) {
	srv, err := reference.New(context.Background(), reference.Config{DataDir: t.TempDir(), CLMKeys: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	_, addr := startDoIPCommand(t, "fleet", "--can", "mem", "--count", "2", "--doip", "127.0.0.1:0", "--diag-profile", "extended-seedkey")
	out, errOut, code := runFor(t, 60*time.Second, "station", "--kms", ts.URL, "--types", "master",
		"--diag-profile", "extended-seedkey", "--doip", addr, "--fleet", "2")
	if code != 0 || !strings.Contains(errOut, "2 ECUs: 2 provisioned, 0 failed") || !strings.Contains(out, `"name": "0x1002"`) {
		t.Fatalf("station: exit %d\n%s%s", code, out, errOut)
	}
}

// didEthernetProfile is did-canfd's layout over DoIP for an ECU with its own Ethernet port: no
// addressing, only P2 and P2* of the link.
func didEthernetProfile(t *testing.T) *profile.Profile {
	t.Helper()
	data, err := os.ReadFile("../vcan/uds/profile/builtin/did-canfd.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start, end := strings.Index(text, "addressing:\n"), strings.Index(text, "security:\n")
	if start < 0 || end < start {
		t.Fatal("did-canfd.yaml: no addressing and link sections")
	}
	text = text[:start] + "transport: doip\ndoip:\n  logical_address: 0x0D10\n  tester_address: 0x0E42\n" +
		"link:\n  p2: 50ms\n  p2_star: 5000ms\n" + text[end:]
	p, err := profile.Parse("did-ethernet.yaml", []byte(strings.Replace(text, "name: did-canfd", "name: did-ethernet", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if p.HasAddressing || !p.OverDoIP() {
		t.Fatalf("did-ethernet: addressing %v, over DoIP %v", p.HasAddressing, p.OverDoIP())
	}
	return p
}

// TestDIDLayoutOverDoIPInProcess: a simulated ECU serving did-canfd's layout over DoIP, without
// addressing (canSide puts it on the default profile's CAN IDs behind the entity), takes a key
// from a client speaking the profile through the entity and the tester: WriteDataByIdentifier of
// M1..M3 with their CRC, M4 and M5 read back and proven.
func TestDIDLayoutOverDoIPInProcess(t *testing.T) {
	p := didEthernetProfile(t)
	side := canSide(p)
	if side == p || !side.HasAddressing || side.Addressing != profile.Default().Addressing || p.HasAddressing {
		t.Fatalf("canSide: %+v", side.Addressing)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hub := vcan.NewHub()
	defer hub.Close()
	dial := ecu.HubDialer(hub)
	uid, _ := she.ParseUID("0001001d0000000000000000000042")
	cfg := ecu.Config{UID: uid, DiagProfile: side}
	ids := side.Addressing.IDs()
	et, err := ecu.Transport(dial, ids.Response, ids.Request, cfg.TransportOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ecu.New(cfg, et)
	if err != nil {
		t.Fatal(err)
	}
	go e.Serve(ctx)
	gt, err := gatewayTransport(dial, false, "", side, ids)
	if err != nil {
		t.Fatal(err)
	}
	defer gt.Close()
	ent := entity.New(entity.Config{LogicalAddress: p.DoIP.LogicalAddress, NodeType: doip.NodeNode,
		InitialInactivity: 30 * time.Second}) // a loaded machine's connect can outlast the standard 2 s
	ent.Register(p.DoIP.LogicalAddress, entity.TransportTarget(ctx, gt))
	ln, pc, err := listenDoIP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer pc.Close()
	go ent.Serve(ctx, ln)
	conn, err := tester.Dial(ctx, ln.Addr().String(), tester.Config{SourceAddress: p.DoIP.TesterAddress})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ecu.NewProfileClient(conn.Transport(p.DoIP.LogicalAddress), p)
	if err := client.Prepare(ctx, (*[16]byte)(p.Security.Key)); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	got, err := client.UID(ctx)
	if err != nil || got != uid {
		t.Fatalf("UID %v, %v", got, err)
	}
	m, err := she.BuildMessages(she.KeyUpdate{UID: uid, KeyID: she.Key1, AuthID: she.MasterECUKey, NewKey: [16]byte{0x4B}, Counter: 1})
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.LoadKey(ctx, m.M1, m.M2, m.M3)
	if err != nil || res.ERC != she.NoError || res.M4 != m.M4 || res.M5 != m.M5 {
		t.Fatalf("LoadKey %+v, %v", res, err)
	}
}
