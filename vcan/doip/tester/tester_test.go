package tester_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/doip"
	"github.com/shekit/shekit/vcan/doip/entity"
	"github.com/shekit/shekit/vcan/doip/tester"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vectors"
)

// patience bounds every wait: generous, for a loaded machine.
const patience = 20 * time.Second

// roomy is a UDS client's timing with a margin a loaded machine meets: the tests prove what
// arrives, not how fast.
var roomy = uds.WithTiming(uds.DefaultP2, uds.DefaultP2Star, patience/4)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	t.Cleanup(cancel)
	return ctx
}

// newEntity is entity.New with T_TCP_Initial_Inactivity set to patience: on a loaded machine (or
// an emulated VM) a TLS handshake alone can outlast the standard 2 s before routing activation;
// the entity's own tests cover that timer on a fake clock.
func newEntity(cfg entity.Config) *entity.Entity {
	cfg.InitialInactivity = patience
	return entity.New(cfg)
}

var eid = [6]byte{0x02, 0, 0, 0, 0x10, 0}

// serve starts e on loopback TCP (TLS when tlsCfg is set) and UDP and returns their addresses.
func serve(t *testing.T, e *entity.Entity, tlsCfg *tls.Config) (tcp, udp string) {
	t.Helper()
	return serveOn(t, e, tlsCfg)
}

func serveB(b *testing.B, e *entity.Entity) string {
	tcp, _ := serveOn(b, e, nil)
	return tcp
}

func serveOn(t testing.TB, e *entity.Entity, tlsCfg *tls.Config) (tcp, udp string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); e.Serve(ctx, ln) }()
	go func() { defer wg.Done(); e.ServeUDP(ctx, pc) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ln.Addr().String(), pc.LocalAddr().String()
}

// loadKey runs the OEM document's MASTER_ECU_KEY update through c and checks the document's M4
// and M5.
func loadKey(t *testing.T, ctx context.Context, c *ecu.Client) {
	t.Helper()
	u, err := vectors.LoadMemoryUpdate("oem-doc-a-master-ecu-key")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Prepare(ctx, &ecu.DefaultSecurityKey); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if uid, err := c.UID(ctx); err != nil || uid != she.UID(u.UID) {
		t.Fatalf("UID %v, %v", uid, err)
	}
	res, err := c.LoadKey(ctx, u.M1, u.M2, u.M3)
	if err != nil || res.ERC != she.NoError || res.M4 != u.M4 || res.M5 != u.M5 {
		t.Fatalf("LoadKey: %+v, %v; want the document's M4/M5", res, err)
	}
}

func docUID(t *testing.T) she.UID {
	u, err := vectors.LoadMemoryUpdate("oem-doc-a-master-ecu-key")
	if err != nil {
		t.Fatal(err)
	}
	return she.UID(u.UID)
}

// TestLoadKeyThroughDoIP: a UDS client on the tester's transport, a simulated ECU's Handle
// behind the entity: the document's LoadKey gives its M4/M5.
func TestLoadKeyThroughDoIP(t *testing.T) {
	ctx := ctxFor(t)
	sim, err := ecu.New(ecu.Config{UID: docUID(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEntity(entity.Config{LogicalAddress: 0x1001})
	e.Register(0x1001, entity.Handler(sim.Handle))
	addr, _ := serve(t, e, nil)
	conn, err := tester.Dial(ctx, addr, tester.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.EntityAddress() != 0x1001 {
		t.Fatalf("entity address %#04x", conn.EntityAddress())
	}
	loadKey(t, ctx, ecu.NewClient(conn.Transport(0x1001), roomy))
}

// TestLoadKeyThroughGateway: the gateway forwards onto the in-memory CAN bus by ISO-TP to a
// simulated ECU serving there.
func TestLoadKeyThroughGateway(t *testing.T) {
	ctx := ctxFor(t)
	hub := vcan.NewHub()
	defer hub.Close()
	et, err := ecu.Transport(ecu.HubDialer(hub), ecu.DefaultResponseID, ecu.DefaultRequestID)
	if err != nil {
		t.Fatal(err)
	}
	defer et.Close()
	sim, err := ecu.New(ecu.Config{UID: docUID(t)}, et)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { sim.Serve(sctx); close(done) }()
	defer func() { stop(); <-done }()
	gt, err := ecu.Transport(ecu.HubDialer(hub), ecu.DefaultRequestID, ecu.DefaultResponseID)
	if err != nil {
		t.Fatal(err)
	}
	defer gt.Close()
	e := newEntity(entity.Config{LogicalAddress: 0x1000})
	e.Register(0x1001, entity.TransportTarget(sctx, gt))
	addr, _ := serve(t, e, nil)
	conn, err := tester.Dial(ctx, addr, tester.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	loadKey(t, ctx, ecu.NewClient(conn.Transport(0x1001), roomy))
}

type refusing struct{}

func (refusing) Forward(context.Context, []byte, func([]byte)) error { return errors.New("bus off") }

type silent struct{}

func (silent) Forward(context.Context, []byte, func([]byte)) error { return nil }

// TestRefusalsReachTheClient: NACK 0x03 and 0x06 come back from Send as *NACKError and the
// connection stays usable; a target that never answers is ACKed and the UDS client's P2 runs out.
func TestRefusalsReachTheClient(t *testing.T) {
	ctx := ctxFor(t)
	e := newEntity(entity.Config{})
	e.Register(0x1001, entity.Handler(func(req []byte, _ func()) []byte { return []byte{0x7E, 0x00} }))
	e.Register(0x1002, refusing{})
	e.Register(0x1003, silent{})
	addr, _ := serve(t, e, nil)
	conn, err := tester.Dial(ctx, addr, tester.Config{SourceAddress: 0x0E80})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var ne *tester.NACKError
	if err := conn.Transport(0x2000).Send(ctx, []byte{0x3E, 0x00}); !errors.As(err, &ne) || ne.Code != doip.DiagnosticUnknownTarget {
		t.Fatalf("unknown target: %v", err)
	}
	if err := conn.Transport(0x1002).Send(ctx, []byte{0x3E, 0x00}); !errors.As(err, &ne) || ne.Code != doip.DiagnosticTargetUnreachable {
		t.Fatalf("unreachable target: %v", err)
	}
	client := uds.NewClient(conn.Transport(0x1003), uds.WithTiming(20*time.Millisecond, 100*time.Millisecond, 10*time.Millisecond))
	if _, err := client.Do(ctx, []byte{0x3E, 0x00}); !errors.Is(err, uds.ErrTimeout) {
		t.Fatalf("silent target: %v, want ErrTimeout", err)
	}
	if err := uds.NewClient(conn.Transport(0x1001), roomy).TesterPresent(ctx, false); err != nil {
		t.Fatalf("after the refusals: %v", err)
	}
}

// TestActivationDenied: Dial reports the entity's code.
func TestActivationDenied(t *testing.T) {
	addr, _ := serve(t, newEntity(entity.Config{}), nil)
	_, err := tester.Dial(ctxFor(t), addr, tester.Config{SourceAddress: 0x0001})
	var ae *tester.ActivationError
	if !errors.As(err, &ae) || ae.Code != doip.ActivationUnknownSource || !errors.Is(err, tester.ErrActivationDenied) {
		t.Fatalf("Dial from 0x0001: %v", err)
	}
}

// TestIdentify: vehicle identification finds the entity, plain and by its EID.
func TestIdentify(t *testing.T) {
	vin := [17]byte([]byte("SHEKIT0DOIP000002"))
	e := newEntity(entity.Config{LogicalAddress: 0x1000, VIN: vin, EID: eid})
	_, udp := serve(t, e, nil)
	ctx := ctxFor(t)
	for _, req := range []doip.Payload{nil, doip.VehicleIdentificationRequestEID{EID: eid}, doip.VehicleIdentificationRequestVIN{VIN: vin}} {
		found, err := tester.Identify(ctx, udp, req, patience, 1)
		if err != nil || len(found) != 1 {
			t.Fatalf("Identify(%#v): %v, %v", req, found, err)
		}
		if a := found[0].Announcement; a.VIN != vin || a.LogicalAddress != 0x1000 || a.EID != eid {
			t.Fatalf("announcement %#v", a)
		}
		if found[0].Addr.String() != udp {
			t.Fatalf("answered from %v, want %v", found[0].Addr, udp)
		}
	}
}

// TestTLS: routing activation and a diagnostic exchange over TLS (port 3496's socket), with an
// entity that requires it.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	e := newEntity(entity.Config{RequireTLS: true})
	e.Register(0x1001, entity.Handler(func(req []byte, _ func()) []byte { return []byte{0x7E, 0x00} }))
	addr, _ := serve(t, e, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	ctx := ctxFor(t)
	conn, err := tester.Dial(ctx, addr, tester.Config{TLS: &tls.Config{RootCAs: pool, ServerName: "doip.test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := uds.NewClient(conn.Transport(0x1001), roomy).TesterPresent(ctx, false); err != nil {
		t.Fatal(err)
	}
}

func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "doip.test"},
		DNSNames: []string{"doip.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestManyTesters: MaxTesters testers at once, each with its own requests and answers.
func TestManyTesters(t *testing.T) {
	const testers, requests = 4, 25
	e := newEntity(entity.Config{MaxTesters: testers})
	e.Register(0x1001, entity.Handler(func(req []byte, pending func()) []byte {
		if req[1]%5 == 0 {
			pending()
		}
		return append([]byte{req[0] + 0x40}, req[1:]...)
	}))
	addr, _ := serve(t, e, nil)
	ctx := ctxFor(t)
	var wg sync.WaitGroup
	errs := make(chan error, testers)
	for i := range testers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := tester.Dial(ctx, addr, tester.Config{SourceAddress: 0x0E00 + uint16(i)})
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			c := uds.NewClient(conn.Transport(0x1001), roomy)
			for n := range requests {
				req := []byte{0x22, byte(n), byte(i)}
				resp, err := c.Do(ctx, req)
				if err != nil || len(resp) != 3 || resp[0] != 0x62 || resp[1] != byte(n) || resp[2] != byte(i) {
					errs <- fmt.Errorf("tester %d request %d: % x, %v", i, n, resp, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// gate takes a request only once released, and says when one has arrived.
type gate struct{ entered, release chan struct{} }

func (g gate) Forward(ctx context.Context, _ []byte, _ func([]byte)) error {
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestTransportsSendSideBySide: while one target has not taken its request (its Send waits for
// the ACK), a transport to another target on the same connection gets through.
func TestTransportsSendSideBySide(t *testing.T) {
	g := gate{entered: make(chan struct{}, 1), release: make(chan struct{})}
	e := newEntity(entity.Config{})
	e.Register(0x1001, g)
	e.Register(0x1002, entity.Handler(func(req []byte, _ func()) []byte { return []byte{0x7E, 0x00} }))
	addr, _ := serve(t, e, nil)
	ctx := ctxFor(t)
	conn, err := tester.Dial(ctx, addr, tester.Config{ACKTimeout: patience})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	slow := make(chan error, 1)
	go func() { slow <- conn.Transport(0x1001).Send(ctx, []byte{0x3E, 0x80}) }()
	<-g.entered
	if err := uds.NewClient(conn.Transport(0x1002), roomy).TesterPresent(ctx, false); err != nil {
		t.Fatalf("the other target: %v", err)
	}
	select {
	case err := <-slow:
		t.Fatalf("acknowledged before its target took it: %v", err)
	default:
	}
	close(g.release)
	if err := <-slow; err != nil {
		t.Fatalf("the slow target: %v", err)
	}
}
