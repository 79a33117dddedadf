package tester_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/doip/entity"
	"github.com/shekit/shekit/vcan/doip/tester"
	"github.com/shekit/shekit/vcan/uds"
)

// BenchmarkLoadKeyDoIP is one LoadKey routine from a UDS client over DoIP on loopback TCP to a
// simulated ECU behind the entity: the 68-byte request in one diagnostic message, its ACK, the
// 53-byte answer; the SHE checks M1-M3 and builds M4/M5. It reports the median and p99 of the
// exchanges.
func BenchmarkLoadKeyDoIP(b *testing.B) {
	const batch = 4096
	uid := she.UID{0x00, 0x01, 0x00, 0x1d, 14: 1}
	msgs := make([]she.Messages, batch)
	for i := range msgs {
		m, err := she.BuildMessages(she.KeyUpdate{UID: uid, KeyID: she.Key1, AuthID: she.MasterECUKey,
			NewKey: [16]byte{0x4B, byte(i), byte(i >> 8)}, Counter: uint32(i + 1), Flags: 0x0F})
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	ctx := context.Background()
	var client *ecu.Client
	var took []time.Duration
	i := batch
	b.ReportAllocs()
	for b.Loop() {
		if i == batch {
			b.StopTimer()
			client = freshDoIPClient(b, uid)
			i = 0
			b.StartTimer()
		}
		m := &msgs[i]
		start := time.Now()
		if res, err := client.LoadKey(ctx, m.M1, m.M2, m.M3); err != nil || res.ERC != she.NoError {
			b.Fatal(res.ERC, err)
		}
		took = append(took, time.Since(start))
		i++
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds()), "median-µs")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
}

// freshDoIPClient serves a factory-fresh ECU behind an entity and returns a client in its
// extended session.
func freshDoIPClient(b *testing.B, uid she.UID) *ecu.Client {
	sim, err := ecu.New(ecu.Config{UID: uid, NoSecurity: true}, nil)
	if err != nil {
		b.Fatal(err)
	}
	e := entity.New(entity.Config{LogicalAddress: 0x1001})
	e.Register(0x1001, entity.Handler(sim.Handle))
	addr := serveB(b, e)
	conn, err := tester.Dial(context.Background(), addr, tester.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	c := ecu.NewClient(conn.Transport(0x1001), uds.WithTiming(uds.DefaultP2, uds.DefaultP2Star, time.Second))
	if err := c.StartSession(context.Background(), uds.ExtendedSession); err != nil {
		b.Fatal(err)
	}
	return c
}
