package conformance_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/station"
	"github.com/shekit/shekit/vcan/doip/tester"
	"github.com/shekit/shekit/vcan/uds"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// defaultTesterAddress is the suites' DoIP logical address unless ecu.tester_address says
// otherwise: in the external test equipment range (0x0E00-0x0FFF), apart from the station's 0x0E00.
const defaultTesterAddress = 0x0E80

// maxProbedECUs bounds the addresses probed when ecu.addresses is not declared.
const maxProbedECUs = 64

// doipFromProfile fills, when the diagnostic profile (CONF_DIAG_PROFILE) travels over DoIP, what
// neither the declaration nor the environment says: ecu.doip from the profile's entity (unless
// the ECUs are declared on CAN) and, over DoIP, ecu.tester_address from the profile's. The ECUs'
// addresses, unless declared, are then probed from the profile's logical address up
// (doipDeclaration.probeFrom). A profile that cannot be read is left to decode to report.
func (c *Config) doipFromProfile() {
	if c.DiagProfile == "" {
		return
	}
	p, err := profile.Find(c.DiagProfile)
	if err != nil || !p.OverDoIP() {
		return
	}
	if c.DoIP == "" && c.CAN == "" && c.ECUIDs == "" && !c.KernelISOTP {
		c.DoIP = p.DoIP.Entity
	}
	if c.DoIP != "" && c.TesterAddress == "" {
		c.TesterAddress = fmt.Sprintf("%#04x", p.DoIP.TesterAddress)
	}
}

// doipDeclaration is the decoded DoIP part of the ECU declaration (ecu.doip set).
type doipDeclaration struct {
	addresses []uint16    // ecu.addresses; none: probed (doipECUAddresses)
	probeFrom uint16      // where probing starts: a DoIP diagnostic profile's logical address; 0: the entity's
	tester    uint16      // ecu.tester_address
	tls       *tls.Config // ecu.doip_ca_file set: connect with TLS, trusting that CA
}

// decodeDoIP reads ecu.addresses, ecu.tester_address and ecu.doip_ca_file.
func (c *Config) decodeDoIP() (doipDeclaration, error) {
	d := doipDeclaration{tester: defaultTesterAddress}
	if c.DoIP == "" {
		return d, nil
	}
	if p, err := profile.Find(c.DiagProfile); err == nil && p.OverDoIP() {
		d.probeFrom = p.DoIP.LogicalAddress
	}
	if strings.TrimSpace(c.ECUAddresses) != "" {
		for f := range strings.SplitSeq(c.ECUAddresses, ",") {
			a, err := parseLogical(f)
			if err != nil {
				return d, fmt.Errorf("CONF_ECU_ADDRESSES: %w", err)
			}
			if slices.Contains(d.addresses, a) {
				return d, fmt.Errorf("CONF_ECU_ADDRESSES: %#04x given twice", a)
			}
			d.addresses = append(d.addresses, a)
		}
	}
	if c.TesterAddress != "" {
		a, err := parseLogical(c.TesterAddress)
		if err != nil || a < 0x0E00 || a > 0x0FFF {
			return d, fmt.Errorf("CONF_TESTER_ADDRESS: %q is not an external test equipment address (0x0E00 to 0x0FFF)", c.TesterAddress)
		}
		d.tester = a
	}
	if c.DoIPCAFile != "" {
		pem, err := os.ReadFile(c.DoIPCAFile)
		if err != nil {
			return d, fmt.Errorf("CONF_DOIP_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return d, fmt.Errorf("CONF_DOIP_CA_FILE: %s holds no PEM certificate", c.DoIPCAFile)
		}
		host, _, err := net.SplitHostPort(c.DoIP)
		if err != nil {
			return d, fmt.Errorf("CONF_DOIP: %q is not HOST:PORT", c.DoIP)
		}
		d.tls = &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return d, nil
}

// parseLogical reads a DoIP logical address, 0x-hex or decimal, not 0.
func parseLogical(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseUint(s, 0, 16)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("%q is not a DoIP logical address (e.g. 0x1001)", s)
	}
	return uint16(v), nil
}

// testerConfig is how the suites connect: from the declared tester address, with TLS when
// declared, waiting for an acknowledge 2 s (the tester's default) plus the timing margin.
func (d doipDeclaration) testerConfig(margin time.Duration) tester.Config {
	return tester.Config{SourceAddress: d.tester, TLS: d.tls, ACKTimeout: 2*time.Second + margin}
}

// doipLink is the run's one DoIP connection (routing activated once from the tester address),
// dialled when first needed and again if the entity ended it, and the ECU addresses found on it.
var doipLink struct {
	sync.Mutex
	conn      *tester.Conn
	addresses []uint16
}

// doipConn returns the run's open connection to CONF_DOIP, dialling it if there is none.
func doipConn(ctx context.Context) (*tester.Conn, error) {
	doipLink.Lock()
	defer doipLink.Unlock()
	if c := doipLink.conn; c != nil {
		select {
		case <-c.Done():
		default:
			return c, nil
		}
	}
	c, err := tester.Dial(ctx, conf.DoIP, confKeys.doip.testerConfig(confKeys.timingMargin))
	if err != nil {
		return nil, fmt.Errorf("CONF_DOIP=%s: %w", conf.DoIP, err)
	}
	doipLink.conn = c
	return c, nil
}

// closeDoIPLink ends the run's DoIP connection, if any.
func closeDoIPLink() {
	doipLink.Lock()
	defer doipLink.Unlock()
	if doipLink.conn != nil {
		doipLink.conn.Close()
		doipLink.conn = nil
	}
}

var _ = AfterSuite(closeDoIPLink)

// doipECUAddresses are the logical addresses of the ECUs under test: CONF_ECU_ADDRESSES, or else
// those probeECUAddresses finds (a gateway at 0x1000 with its ECUs at 0x1001+i, as `simulator
// fleet --doip` serves them, or one ECU at its own address), probed once per run.
func doipECUAddresses(ctx context.Context) ([]uint16, error) {
	if len(confKeys.doip.addresses) > 0 {
		return confKeys.doip.addresses, nil
	}
	c, err := doipConn(ctx)
	if err != nil {
		return nil, err
	}
	doipLink.Lock()
	defer doipLink.Unlock()
	if len(doipLink.addresses) == 0 {
		found, err := probeECUAddresses(ctx, c, confKeys.doip.probeFrom)
		if err != nil {
			return nil, fmt.Errorf("CONF_DOIP=%s: %w", conf.DoIP, err)
		}
		doipLink.addresses = found
	}
	return doipLink.addresses, nil
}

// probeECUAddresses finds the ECUs on c: the addresses the entity acknowledges a tester present
// to (3E 80: no answer asked), from its own address (from, when not 0: a DoIP profile's logical
// address) up to the first it refuses with a NACK, at most maxProbedECUs; the entity's own
// address counts only if it takes it.
func probeECUAddresses(ctx context.Context, c *tester.Conn, from uint16) ([]uint16, error) {
	var found []uint16
	first := c.EntityAddress()
	if from != 0 {
		first = from
	}
	for i := range uint16(maxProbedECUs) {
		a := first + i
		t := c.Transport(a)
		err := t.Send(ctx, []byte{0x3E, 0x80})
		t.Close()
		var nack *tester.NACKError
		if errors.As(err, &nack) {
			if i == 0 && from == 0 {
				continue // a gateway: its ECUs follow it
			}
			break
		}
		if err != nil {
			return nil, fmt.Errorf("probing ECU address %#04x: %w", a, err)
		}
		found = append(found, a)
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("the entity at %#04x takes no ECU address from %#04x up: declare them (CONF_ECU_ADDRESSES)", c.EntityAddress(), first)
	}
	return found, nil
}

// configuredDoIPECUs is doipECUAddresses, a failure of which is the harness's.
func configuredDoIPECUs() []uint16 {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := doipECUAddresses(ctx)
	if err != nil {
		harnessFail("%v", err)
	}
	return a
}

// dialDoIPECU is a client of the ECU at logical address a over the run's DoIP connection,
// speaking the diagnostic profile, adding CONF_TIMING_MARGIN to its P2 and P2* (which start once
// the entity has acknowledged a request).
func dialDoIPECU(a uint16) *ecu.Client {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := doipConn(ctx)
	if err != nil {
		harnessFail("%v", err)
	}
	p := diag()
	client := ecu.NewProfileClient(c.Transport(a), p, uds.WithTiming(p.Link.P2, p.Link.P2Star, confKeys.timingMargin))
	DeferCleanup(client.Close)
	return client
}

// doipName names an ECU by its logical address, as the station's --doip does.
func doipName(a uint16) string { return fmt.Sprintf("%#04x", a) }

// doipFleetUnderTest is the e2e suite's ECUs over DoIP: every ECU address but the first, which
// the ecu suite uses (all when there is one), on the run's one connection, as the station's
// --doip reaches them.
func doipFleetUnderTest() []station.Target {
	addrs := configuredDoIPECUs()
	if len(addrs) > 1 {
		addrs = addrs[1:]
	}
	var out []station.Target
	for _, a := range addrs {
		out = append(out, station.Target{Name: doipName(a), Client: dialDoIPECU(a)})
	}
	return out
}
