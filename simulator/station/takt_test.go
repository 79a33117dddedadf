package station

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
)

var taktRTTs = flag.String("takt-rtt", "20ms,50ms", "the KMS round trips BenchmarkStationTakt simulates (comma-separated; BenchmarkStationPlant takes the first)")

// taktKeys is the end-of-line set: the master key, the supplier key and the nine SecOC keys.
const taktKeys = "master,supplier,secoc:4-C"

// busModel is a CAN bus the takt benchmarks run on.
type busModel struct {
	name              string
	hub               []vcan.HubOption
	isotp             []isotp.Option
	bitRate, dataRate int
}

var (
	classic500k = busModel{"classic-500k", []vcan.HubOption{vcan.WithBitRate(500000, vcan.WorstCaseStuffing)}, nil, 500000, 0}
	fd500k2M    = busModel{"fd-500k-2M", []vcan.HubOption{vcan.WithBitRate(500000, vcan.WorstCaseStuffing), vcan.WithDataBitRate(2000000)},
		[]isotp.Option{isotp.WithCANFD(64, true)}, 500000, 2000000}
)

// kmsURL starts the KMS a takt benchmark runs against, with rtt in front of it: "mem", the
// reference KMS's service over memStore, or "sqlite", the whole reference server with SQLite.
func kmsURL(b *testing.B, kind string, rtt time.Duration) string {
	if kind == "sqlite" {
		return newRig(b, 0, ecu.Config{}, delayed(rtt)).url
	}
	ts := httptest.NewServer(delayed(rtt)(memKMS()))
	b.Cleanup(ts.Close)
	return ts.URL
}

// rtts parses -takt-rtt.
func rtts(b *testing.B) []time.Duration {
	var out []time.Duration
	for s := range strings.SplitSeq(*taktRTTs, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil || d < 0 {
			b.Fatalf("-takt-rtt: %q is not a duration", s)
		}
		out = append(out, d)
	}
	return out
}

// delayed holds each request rtt of wall time before next serves it: the network's round trip.
func delayed(rtt time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			time.Sleep(rtt)
			next.ServeHTTP(w, req)
		})
	}
}

// line is one station's bus: one simulated ECU, the station's client on real-time nodes, and a
// tap that sees every frame.
type line struct {
	bus    busModel
	target Target
	tap    *vcan.Node
}

func newLine(b testing.TB, bus busModel, uid she.UID) *line {
	hub := vcan.NewHub(bus.hub...)
	fleet, err := ecu.StartFleet(context.Background(), ecu.HubDialer(hub), ecu.Config{UID: uid}, 1, bus.isotp...)
	if err != nil {
		b.Fatal(err)
	}
	c, err := ecu.Dial(realTimeDialer(hub), ecu.DefaultRequestID, ecu.DefaultResponseID, bus.isotp...)
	if err != nil {
		b.Fatal(err)
	}
	l := &line{bus: bus, target: Target{Name: fmt.Sprint(uid), Client: c}, tap: hub.Connect()}
	b.Cleanup(func() { c.Close(); fleet.Stop(); hub.Close() })
	return l
}

// busTime takes the frames the tap saw since the last call and returns how long they occupied
// the bus at the model's bit rates, and how many there were.
func (l *line) busTime() (time.Duration, int) {
	frames := l.tap.ReceiveFor(10 * time.Millisecond) // all are queued already: sent synchronously
	var d time.Duration
	for _, tf := range frames {
		d += vcan.FDFrameTime(tf.Wire, vcan.WorstCaseStuffing, l.bus.bitRate, l.bus.dataRate)
	}
	return d, len(frames)
}

// provision runs the station over the line's ECU once and returns the wall time it took, or an
// error unless every key went in and synced.
func (l *line) provision(cfg Config) (time.Duration, error) {
	start := time.Now()
	sum := Run(context.Background(), cfg, []Target{l.target})
	took := time.Since(start)
	if !sum.OK() || sum.Totals.Syncs[Verified] != 11 {
		out, _ := json.Marshal(sum.ECUs)
		return took, fmt.Errorf("%s: totals %+v: %.2000s", l.target.Name, sum.Totals, out)
	}
	return took, nil
}

// BenchmarkStationTakt is the end-of-line takt time: one ECU through the station per op — the
// master key, the supplier key and the nine SecOC keys, each synced (the e2e suite's set) —
// against an in-process reference KMS over loopback HTTP with rtt of wall time put in front of
// every request (the network's round trip; -takt-rtt sets it): kms-mem is the reference KMS's
// service over a store in memory (memStore), kms-sqlite the whole reference server on SQLite.
// Both on the 500 kbit/s classic bus model and on CAN FD at 500 kbit/s / 2 Mbit/s (64-byte
// frames, bit rate switch). The ECU is provisioned again each op (its keys move on).
//
// What takes which time: the KMS's round trips take wall time (the injected delay plus the
// server's own work). The hub's bus takes simulated time only, so the station's client sees the
// bus in wall time through realTimeNode: each frame reaches the station once as much wall time
// has passed since its request started as the bus needed to carry the request and the answer
// up to that frame. A LoadKey thus lasts at least its bus time; the ECU's computation runs in
// wall time inside it, overlapped with the bus as on a real ECU. takt-ms/op is the wall time of
// station.Run for the ECU: session, SecurityAccess, UID, every key's POST, LoadKey and PUT,
// every sync's POST, check and PUT.
//
// floor-ms is what the protocol allows at best: the bus time of every frame of that ECU (counted
// on the hub by a tap, at the model's bit rates with worst-case stuffing: the session, the UID,
// every LoadKey and sync exchange) plus 6 round trips that must follow each other (the master
// key's POST, its PUT, the other keys' POSTs at once, and after the last LoadKey its PUT, its
// sync POST and its sync PUT). floor-ratio = takt ÷ floor; bus-ms/op and frames/op are the
// bus's part. The floor leaves out the KMS's own time (kms-mem: next to nothing; kms-sqlite:
// the reference server's durable writes), so it counts against the ratio. It counts every frame
// as if none could go while a round trip is under way, though the syncs of all keys but the
// last can: a takt a little under the floor is possible.
func BenchmarkStationTakt(b *testing.B) {
	for _, bus := range []busModel{classic500k, fd500k2M} {
		for _, kind := range []string{"mem", "sqlite"} {
			for _, rtt := range rtts(b) {
				b.Run(fmt.Sprintf("%s/kms-%s/rtt-%v", bus.name, kind, rtt), func(b *testing.B) { benchTakt(b, bus, kind, rtt) })
			}
		}
	}
}

// benchTakt is one sub-benchmark of BenchmarkStationTakt.
func benchTakt(b *testing.B, bus busModel, kind string, rtt time.Duration) {
	cfg := (&rig{url: kmsURL(b, kind, rtt)}).config(b, taktKeys, true)
	l := newLine(b, bus, baseUID)
	var takt, busTime time.Duration
	frames := 0
	for b.Loop() {
		took, err := l.provision(cfg)
		if err != nil {
			b.Fatal(err)
		}
		takt += took
		b.StopTimer()
		d, n := l.busTime()
		busTime, frames = busTime+d, frames+n
		b.StartTimer()
	}
	n := time.Duration(b.N)
	floor := busTime/n + 6*rtt
	b.ReportMetric(ms(takt/n), "takt-ms/op")
	b.ReportMetric(ms(floor), "floor-ms")
	b.ReportMetric(float64(takt/n)/float64(floor), "floor-ratio")
	b.ReportMetric(ms(busTime/n), "bus-ms/op")
	b.ReportMetric(float64(frames)/float64(b.N), "frames/op")
}

// BenchmarkStationPlant is the plant's view: N stations, each with its own 500 kbit/s bus and
// its ECU (real-time, as in BenchmarkStationTakt), provision one ECU each per op, all at once,
// against one reference KMS with the first -takt-rtt in front of it. ecus/h is N ECUs per op's
// wall time; takt-ms/op the op's wall time (the stations' slowest). Stations and KMS share this
// machine's CPUs, as a real plant's stations would not.
func BenchmarkStationPlant(b *testing.B) {
	rtt := rtts(b)[0]
	for _, n := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("stations-%d/rtt-%v", n, rtt), func(b *testing.B) {
			r := newRig(b, 0, ecu.Config{}, delayed(rtt))
			cfg := r.config(b, taktKeys, true)
			lines := make([]*line, n)
			for i := range lines {
				uid := baseUID // a fleet of one sets the last four bytes: the station's number goes before
				binary.BigEndian.PutUint32(uid[6:], uint32(i))
				lines[i] = newLine(b, classic500k, uid)
			}
			var wall time.Duration
			for b.Loop() {
				start := time.Now()
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i, l := range lines {
					wg.Go(func() { _, errs[i] = l.provision(cfg) })
				}
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					b.Fatal(err)
				}
				wall += time.Since(start)
				b.StopTimer()
				for _, l := range lines {
					l.busTime() // drain the taps
				}
				b.StartTimer()
			}
			perOp := wall / time.Duration(b.N)
			b.ReportMetric(float64(n)*float64(time.Hour)/float64(perOp), "ecus/h")
			b.ReportMetric(ms(perOp), "takt-ms/op")
		})
	}
}
