package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/shekit/shekit/conformance/report"
	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/simulator/station"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/uds"
)

// memFleet starts n simulated ECUs (configured by simConfig, speaking the diagnostic profile) on
// a fresh in-memory bus and returns the station's targets. Under csec they leave the factory with the KMS's initial master
// key: an empty csec MASTER_ECU_KEY authorizes only its own first update, and as all-FF.
func memFleet(n int, base ecu.Config) []station.Target {
	hub := vcan.NewHub()
	base = simConfig(base)
	if base.InitialMasterKey == nil && base.Profile.Name == she.ProfileCSEc.Name {
		k := confKeys.initialMaster
		base.InitialMasterKey = &k
	}
	fleet, err := ecu.StartFleet(context.Background(), ecu.HubDialer(hub), base, n)
	if err != nil {
		harnessFail("starting %d simulated ECUs: %v", n, err)
	}
	DeferCleanup(func() { fleet.Stop(); hub.Close() })
	var out []station.Target
	p := base.DiagProfile
	for i := range n {
		ids, err := ecu.DiagFleetIDs(p, i, n)
		Expect(err).NotTo(HaveOccurred())
		t, err := ecu.ProfileTransport(ecu.HubDialer(hub), p, ids, simISOTPTimeouts)
		Expect(err).NotTo(HaveOccurred())
		c := ecu.NewProfileClient(t, p, uds.WithTiming(p.Link.P2, p.Link.P2Star, simMargin))
		DeferCleanup(c.Close)
		out = append(out, station.Target{Name: fmt.Sprintf("%#x:%#x", ids.Request, ids.Response), Client: c})
	}
	return out
}

// fleetUnderTest is the e2e suite's ECUs: simulated ones on the in-memory bus, or those of
// CONF_ECU_IDS on CONF_CAN (or of CONF_ECU_ADDRESSES over CONF_DOIP) but the first, which the ecu
// suite uses (all of them when only one is given).
func fleetUnderTest() []station.Target {
	if conf.CAN == "mem" {
		return memFleet(conf.Fleet, ecu.Config{UID: freshUID()})
	}
	if conf.DoIP != "" {
		return doipFleetUnderTest()
	}
	addrs := configuredECUs()
	if len(addrs) > 1 {
		addrs = addrs[1:]
	}
	var out []station.Target
	for _, a := range addrs {
		out = append(out, station.Target{Name: fmt.Sprintf("%#x:%#x", a.request, a.response), Client: dialECU(a)})
	}
	return out
}

// stationConfig is the station as the suite runs it: against the KMS under test through the
// contract-checking recorder, in a SecOC cluster of the configured EcuType (typeCluster).
func stationConfig(api *kmsAPI, types string) station.Config {
	keys, err := station.ParseKeys(types)
	Expect(err).NotTo(HaveOccurred())
	key := confKeys.securityKey
	return station.Config{KMS: &station.KMS{URL: api.url, Token: api.token, HTTP: &http.Client{Transport: api.rec}},
		Keys: keys, Sync: true, ClusterID: typeCluster(), Model: [4]byte{0, 0, 0, 1},
		SupplierSecretKey: conf.SupplierKey, SecurityKey: &key, Parallel: 16}
}

// failures lists what went wrong in a station run, one line per ECU, for a failure message.
func failures(sum *station.Summary) string {
	var lines []string
	for _, e := range sum.ECUs {
		if e.OK {
			continue
		}
		line := e.Name + ": " + e.Error
		for _, k := range e.Keys {
			switch {
			case k.Outcome != station.Injected:
				line += fmt.Sprintf(" %s %s %s: %s;", k.Type, k.KeyID, k.Outcome, k.Message)
			case k.Sync != nil && k.Sync.Outcome != station.Verified:
				line += fmt.Sprintf(" %s %s sync %s: %s;", k.Type, k.KeyID, k.Sync.Outcome, k.Sync.Message)
			}
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// keepSummary attaches the station's summary to the report if the spec fails.
func keepSummary(sum *station.Summary) {
	DeferCleanup(func() {
		if CurrentSpecReport().Failed() {
			b, _ := json.MarshalIndent(sum, "", "  ")
			AddReportEntry(report.ExchangeEntry, "station summary:\n"+string(b), ReportEntryVisibilityNever)
		}
	})
}

var _ = suite("e2e", "End to end: station, KMS and ECUs", func() {
	var api *kmsAPI
	var fleet []station.Target
	var cfg station.Config
	BeforeAll(func() {
		api = newKMSAPI()
		fleet = fleetUnderTest()
		cfg = stationConfig(api, "master,supplier,secoc:4-C")
	})

	It("provisions every ECU through the station: master, supplier and nine SecOC keys, each synced", func() {
		sum := station.Run(context.Background(), cfg, fleet)
		keepSummary(sum)
		Expect(sum.OK()).To(BeTrue(), "ECUs that failed:\n%s", failures(sum))
		Expect(sum.Totals.Keys[station.Injected]).To(Equal(11 * len(fleet)))
		Expect(sum.Totals.Syncs[station.Verified]).To(Equal(11 * len(fleet)))
		api.rec.keptContract(false)
	})

	It("provisions the same ECUs again: every key moves on to a new counter and still syncs", func() {
		sum := station.Run(context.Background(), cfg, fleet)
		keepSummary(sum)
		Expect(sum.OK()).To(BeTrue(), "ECUs that failed:\n%s", failures(sum))
		Expect(sum.Totals.Syncs[station.Verified]).To(Equal(11 * len(fleet)))
		api.rec.keptContract(false)
	})

	It("reports an ECU's wrong proof to the KMS as OperationFailed, saying what differed", selfTest, func() { // a simulated faulty ECU; the reference's audit log
		if conf.CAN != "mem" {
			Skip("needs a simulated ECU with a fault (CONF_CAN=mem)")
		}
		faulty := memFleet(1, ecu.Config{UID: freshUID(), Faults: ecu.Faults{WrongProof: true}})
		sum := station.Run(context.Background(), stationConfig(api, "master"), faulty)
		keepSummary(sum)
		Expect(sum.ECUs[0].Keys).To(HaveLen(1), "the station tried no key: %s", sum.ECUs[0].Error)
		k := sum.ECUs[0].Keys[0]
		Expect(k.Outcome).To(Equal(station.Failed))
		Expect(k.Message).To(HavePrefix("LoadKey: M5 mismatch: ECU "))
		api.rec.keptContract(false)
		if targets.reference == nil || conf.KMSURL != "" {
			return // the report's content is visible only in the reference server's audit log
		}
		entries, err := targets.reference.server().Store.Audit(context.Background(), 0, 1<<20)
		Expect(err).NotTo(HaveOccurred())
		found := false
		for _, e := range entries {
			if e.UID == sum.ECUs[0].UID && strings.HasPrefix(e.Action, "result:") {
				Expect(e.Outcome).To(Equal("OperationFailed"))
				Expect(e.Message).To(Equal(k.Message))
				found = true
			}
		}
		Expect(found).To(BeTrue(), "no report of the failed injection in the KMS's audit log")
	})

	It("names an ECU that does not answer and goes on with the others", selfTest, func() { // a simulated silent ECU
		if conf.CAN != "mem" {
			Skip("needs a simulated silent ECU (CONF_CAN=mem)")
		}
		ok := memFleet(1, ecu.Config{UID: freshUID()})
		silent := memFleet(1, ecu.Config{UID: freshUID(), Faults: ecu.Faults{Silent: true}})
		c := stationConfig(api, "master")
		c.StepTimeout = 500 * time.Millisecond
		sum := station.Run(context.Background(), c, append(silent, ok...))
		keepSummary(sum)
		Expect(sum.ECUs[0].Error).To(Equal("session and SecurityAccess: no answer in time"))
		if conf.SimFault == "" {
			Expect(sum.ECUs[1].OK).To(BeTrue(), failures(sum))
		}
	})
})
