package station

import (
	"context"
	"testing"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/vcan"
)

// BenchmarkStationFleet provisions a whole fleet through the station per op: the master key, the
// supplier key and nine SecOC keys of every ECU, each synced (66 HTTP requests and 22 UDS
// routines per ECU), against the in-process reference server with SQLite over loopback HTTP.
// On the 500 kbit/s bus model it also reports the simulated bus time of the run (bus-ms/op).
func BenchmarkStationFleet(b *testing.B) {
	for _, c := range []struct {
		name    string
		ecus    int
		hubOpts []vcan.HubOption
	}{
		{"1000-ecus-mem", 1000, nil},
		{"100-ecus-500kbit", 100, []vcan.HubOption{vcan.WithBitRate(500000, vcan.WorstCaseStuffing)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var busTime time.Duration
			for b.Loop() {
				b.StopTimer()
				r := newRig(b, c.ecus, ecu.Config{}, nil, c.hubOpts...)
				cfg := r.config(b, "master,supplier,secoc:4-C", true)
				cfg.Parallel = 64
				start := r.hub.BusTime()
				b.StartTimer()
				sum := Run(context.Background(), cfg, r.targets)
				b.StopTimer()
				if !sum.OK() || sum.Totals.Syncs[Verified] != 11*c.ecus {
					b.Fatalf("totals %+v", sum.Totals)
				}
				busTime += r.hub.BusTime() - start
				r.fleet.Stop()
				b.StartTimer()
			}
			b.ReportMetric(float64(c.ecus*11), "keys/op")
			if c.hubOpts != nil {
				b.ReportMetric(float64(busTime.Milliseconds())/float64(b.N), "bus-ms/op")
			}
		})
	}
}
