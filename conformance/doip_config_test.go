package conformance_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan/doip/entity"
	"github.com/shekit/shekit/vcan/doip/tester"
)

// TestDoIPDeclaration: ecu.doip with its addresses and tester address is read from the file
// (lists and hex numbers as YAML writes them), needs no CAN, certifies targets ecu and station,
// and bad or mixed declarations are refused naming the field.
func TestDoIPDeclaration(t *testing.T) {
	clearConf(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "decl.yaml")
	os.WriteFile(file, []byte("version: 1\necu:\n  doip: 192.0.2.10:13400\n  addresses: [0x1001, 0x1002]\n  tester_address: 0x0E81\n"), 0o600)
	c, err := loadConfigFrom(file)
	if err != nil {
		t.Fatal(err)
	}
	if c.DoIP != "192.0.2.10:13400" || c.CAN != "" {
		t.Errorf("doip %q, can %q; want the entity and no CAN", c.DoIP, c.CAN)
	}
	d, err := c.decode()
	if err != nil || !slices.Equal(d.doip.addresses, []uint16{0x1001, 0x1002}) || d.doip.tester != 0x0E81 || d.doip.tls != nil {
		t.Errorf("decoded %+v, %v", d.doip, err)
	}
	c.ECUAddresses, c.TesterAddress = "", ""
	if d, err := c.decode(); err != nil || d.doip.addresses != nil || d.doip.tester != 0x0E80 {
		t.Errorf("no addresses, no tester address: %+v, %v; want probing from tester 0x0E80", d.doip, err)
	}

	// Without ecu.doip the ECUs are the in-process ones (ecu.can: mem), which no certification takes.
	for _, target := range []string{"ecu", "station"} {
		t.Setenv("CONF_TARGETS", target)
		decl := "version: 1\nkms:\n  url: http://kms\n  supplier_id: 00AB\n  ecu_type: 0042\n  supplier_secret_key: a0b1c2d3e4f5061728394a5b6c7d8e9f\n" +
			"  initial_master_key: 42424242424242424242424242424242\necu:\n  doip: 192.0.2.10:13400\n  security_key: 5348452d6b69742064656d6f206b6579\n"
		os.WriteFile(file, []byte(decl), 0o600)
		if _, err := loadConfigFrom(file); err != nil {
			t.Errorf("certifying %s over DoIP: %v", target, err)
		}
		os.WriteFile(file, []byte(strings.Replace(decl, "  doip: 192.0.2.10:13400\n", "", 1)), 0o600)
		if _, err := loadConfigFrom(file); err == nil || !strings.Contains(err.Error(), "to certify target "+target) {
			t.Errorf("certifying %s with neither CAN nor DoIP: %v", target, err)
		}
	}
	os.Unsetenv("CONF_TARGETS")

	for _, bad := range []struct {
		env  []string
		want string
	}{
		{[]string{"CONF_DOIP=127.0.0.1:13400", "CONF_CAN=vcan0"}, "declare DoIP or CAN, not both"},
		{[]string{"CONF_DOIP=127.0.0.1:13400", "CONF_ECU_IDS=0x7E0:0x7E8"}, "declare DoIP or CAN, not both"},
		{[]string{"CONF_ECU_ADDRESSES=0x1001"}, "ecu.addresses (CONF_ECU_ADDRESSES) is for DoIP"},
		{[]string{"CONF_TESTER_ADDRESS=0x0E80"}, "ecu.tester_address (CONF_TESTER_ADDRESS) is for DoIP"},
		{[]string{"CONF_DOIP=13400"}, `ecu.doip (CONF_DOIP): "13400" is not HOST:PORT`},
	} {
		clearConf(t)
		for _, kv := range bad.env {
			name, value, _ := strings.Cut(kv, "=")
			t.Setenv(name, value)
		}
		if _, err := loadConfigFrom(""); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v: error %v, want %q", bad.env, err, bad.want)
		}
	}

	for _, bad := range []struct {
		c    Config
		want string
	}{
		{Config{DoIP: "h:1", ECUAddresses: "0x1001,zz"}, `CONF_ECU_ADDRESSES: "zz" is not a DoIP logical address`},
		{Config{DoIP: "h:1", ECUAddresses: "0x1001,"}, `CONF_ECU_ADDRESSES: "" is not a DoIP logical address`},
		{Config{DoIP: "h:1", ECUAddresses: "0"}, `CONF_ECU_ADDRESSES: "0" is not`},
		{Config{DoIP: "h:1", ECUAddresses: "0x1001, 4097"}, "CONF_ECU_ADDRESSES: 0x1001 given twice"},
		{Config{DoIP: "h:1", TesterAddress: "0x1000"}, "CONF_TESTER_ADDRESS: \"0x1000\" is not an external test equipment address"},
		{Config{DoIP: "h:1", DoIPCAFile: filepath.Join(dir, "missing.pem")}, "CONF_DOIP_CA_FILE: open"},
		{Config{DoIP: "h:1", DoIPCAFile: file}, "holds no PEM certificate"},
	} {
		if _, err := bad.c.decodeDoIP(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: error %v, want %q", bad.c, err, bad.want)
		}
	}
}

// TestProbeECUAddresses: without declared addresses the suites take those the entity
// acknowledges from its own address up: behind a gateway its ECUs (the gateway's own address
// refused), an ECU entity itself; with a DoIP profile, from its logical address up; an entity
// taking none is an error asking for the declaration.
func TestProbeECUAddresses(t *testing.T) {
	for _, c := range []struct {
		entity, from uint16
		nodes        []uint16
		want         []uint16
	}{
		{0x1000, 0, []uint16{0x1001, 0x1002, 0x1003, 0x1005}, []uint16{0x1001, 0x1002, 0x1003}},
		{0x1001, 0, []uint16{0x1001}, []uint16{0x1001}},
		{0x1000, 0, []uint16{0x2000}, nil},
		// From a DoIP profile's logical address: its ECUs, numbered from it.
		{0x1000, 0x2000, []uint16{0x1001, 0x2000, 0x2001}, []uint16{0x2000, 0x2001}},
		{0x1000, 0x1002, []uint16{0x1001, 0x1002, 0x1003}, []uint16{0x1002, 0x1003}},
		{0x1000, 0x3000, []uint16{0x1001, 0x3001}, nil},
	} {
		addr := serveTestEntity(t, c.entity, c.nodes, nil)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := tester.Dial(ctx, addr, doipDeclaration{tester: defaultTesterAddress}.testerConfig(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		got, err := probeECUAddresses(ctx, conn, c.from)
		switch {
		case c.want == nil && (err == nil || !strings.Contains(err.Error(), "declare them (CONF_ECU_ADDRESSES)")):
			t.Errorf("entity %#04x with nodes %x from %#04x: %x, %v; want an error asking for CONF_ECU_ADDRESSES", c.entity, c.nodes, c.from, got, err)
		case c.want != nil && (err != nil || !slices.Equal(got, c.want)):
			t.Errorf("entity %#04x with nodes %x from %#04x: %x, %v; want %x", c.entity, c.nodes, c.from, got, err, c.want)
		}
	}
}

// TestDoIPOverTLS: with ecu.doip_ca_file the suites connect with TLS and verify the entity's
// certificate against that CA; another CA's certificate is refused.
func TestDoIPOverTLS(t *testing.T) {
	dir := t.TempDir()
	cert, caFile := selfSignedCert(t, dir, "ca.pem")
	_, otherCA := selfSignedCert(t, dir, "other.pem")
	addr := serveTestEntity(t, 0x1001, []uint16{0x1001}, &tls.Config{Certificates: []tls.Certificate{cert}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := (&Config{DoIP: addr, DoIPCAFile: caFile}).decodeDoIP()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tester.Dial(ctx, addr, d.testerConfig(time.Second))
	if err != nil {
		t.Fatalf("TLS with the entity's CA: %v", err)
	}
	defer conn.Close()
	if got, err := probeECUAddresses(ctx, conn, 0); err != nil || !slices.Equal(got, []uint16{0x1001}) {
		t.Errorf("over TLS: %x, %v", got, err)
	}
	d, err = (&Config{DoIP: addr, DoIPCAFile: otherCA}).decodeDoIP()
	if err != nil {
		t.Fatal(err)
	}
	if conn, err := tester.Dial(ctx, addr, d.testerConfig(time.Second)); err == nil {
		conn.Close()
		t.Error("TLS with another CA: connected")
	}
}

// serveTestEntity serves a DoIP entity at address self on a loopback port (with TLS when tc is
// set), each node answering tester present; it returns host:port.
func serveTestEntity(t *testing.T, self uint16, nodes []uint16, tc *tls.Config) string {
	t.Helper()
	// A TLS handshake on a loaded machine can outlast T_TCP_Initial_Inactivity's 2 s.
	e := entity.New(entity.Config{LogicalAddress: self, InitialInactivity: 30 * time.Second})
	for _, n := range nodes {
		e.Register(n, entity.Handler(func(req []byte, _ func()) []byte {
			if len(req) == 2 && req[0] == 0x3E && req[1] == 0x80 {
				return nil
			}
			return []byte{0x7F, req[0], 0x11}
		}))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}

// selfSignedCert makes a self-signed certificate for 127.0.0.1 and writes it (PEM) to dir/name.
func selfSignedCert(t *testing.T, dir, name string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "doip entity"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, file
}

// TestDoIPFromDiagProfile: a DoIP diagnostic profile (CONF_DIAG_PROFILE) supplies the entity
// (CONF_DOIP) and the tester address (CONF_TESTER_ADDRESS) and has the ECUs probed from its
// logical address; explicit settings win, a CAN declaration keeps the ECUs on CAN, and a CAN
// profile supplies nothing.
func TestDoIPFromDiagProfile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "gw.yaml")
	const text = "version: 1\nname: gw\ntransport: doip\ndoip:\n  logical_address: 0x2001\n  tester_address: 0x0E42\n" +
		"  entity: 192.0.2.10:13400\noperations:\n  ReadUID:\n    steps:\n      - service: read-did\n        did: 0xFD00\n        response: [UID]\n" +
		"  LoadKey:\n    steps:\n      - service: routine-start\n        rid: 0xFD10\n        request: [M1, M2, M3]\n        response: [ERC, M4, M5]\n"
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in                 Config
		doip, tester, can  string
		probeFrom, decoded uint16
	}{
		{Config{DiagProfile: file}, "192.0.2.10:13400", "0x0e42", "", 0x2001, 0x0E42},
		{Config{DiagProfile: file, DoIP: "h:1", TesterAddress: "0x0E90"}, "h:1", "0x0E90", "", 0x2001, 0x0E90},
		{Config{DiagProfile: file, CAN: "vcan0"}, "", "", "vcan0", 0, 0x0E80},
		{Config{DiagProfile: "doip-default"}, "", "", "", 0, 0x0E80},
		{Config{DiagProfile: "doip-default", DoIP: "h:1"}, "h:1", "0x0e80", "", 0x1001, 0x0E80},
		{Config{DiagProfile: "shekit-default", DoIP: "h:1"}, "h:1", "", "", 0, 0x0E80},
	} {
		c := tc.in
		c.doipFromProfile()
		if c.DoIP != tc.doip || c.TesterAddress != tc.tester || c.CAN != tc.can {
			t.Errorf("%+v: doip %q, tester %q, can %q; want %q, %q, %q", tc.in, c.DoIP, c.TesterAddress, c.CAN, tc.doip, tc.tester, tc.can)
		}
		d, err := c.decodeDoIP()
		if err != nil || d.probeFrom != tc.probeFrom || d.tester != tc.decoded {
			t.Errorf("%+v: decoded %+v, %v; want probing from %#04x, tester %#04x", tc.in, d, err, tc.probeFrom, tc.decoded)
		}
	}
	t.Setenv("CONF_DIAG_PROFILE", file)
	for _, v := range []string{"CONF_DOIP", "CONF_CAN", "CONF_ECU_IDS", "CONF_TESTER_ADDRESS", "CONF_TARGETS", "CONF_FILE"} {
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	c, err := loadConfigFrom("")
	if err != nil || c.DoIP != "192.0.2.10:13400" || c.CAN != "" {
		t.Errorf("CONF_DIAG_PROFILE=%s alone: doip %q, can %q, %v; want the profile's entity and no CAN", file, c.DoIP, c.CAN, err)
	}
}
