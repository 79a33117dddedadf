package ecu

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/uds"
)

// key1Updates returns n CMD_LOAD_KEY messages for KEY_1 with counters 1..n, authorized by the
// empty (all-zero) MASTER_ECU_KEY.
func key1Updates(tb testing.TB, uid she.UID, n int) []she.Messages {
	msgs := make([]she.Messages, n)
	for i := range msgs {
		m, err := she.BuildMessages(she.KeyUpdate{UID: uid, KeyID: she.Key1, AuthID: she.MasterECUKey,
			NewKey: [16]byte{0x4B, byte(i), byte(i >> 8)}, Counter: uint32(i + 1), Flags: 0x0F})
		if err != nil {
			tb.Fatal(err)
		}
		msgs[i] = m
	}
	return msgs
}

// loadKeyLoop runs one LoadKey of KEY_1 per iteration, counters 1, 2, …; every 4096 counters
// (and first) it calls fresh, with the timer stopped, for a client in the extended session of a
// factory-fresh ECU.
func loadKeyLoop(b *testing.B, uid she.UID, fresh func() *Client) {
	const batch = 4096
	msgs := key1Updates(b, uid, batch)
	ctx := context.Background()
	var client *Client
	i := batch
	b.ReportAllocs()
	for b.Loop() {
		if i == batch {
			b.StopTimer()
			client = fresh()
			i = 0
			b.StartTimer()
		}
		m := &msgs[i]
		if res, err := client.LoadKey(ctx, m.M1, m.M2, m.M3); err != nil || res.ERC != she.NoError {
			b.Fatal(res.ERC, err)
		}
		i++
	}
}

// benchLoadKey runs loadKeyLoop from a tester's client to an ECU over user-space ISO-TP on an
// in-memory hub made with hubOpts. It returns the simulated bus time the LoadKey exchanges took
// (zero without a bit rate).
func benchLoadKey(b *testing.B, hubOpts ...vcan.HubOption) time.Duration {
	uid := she.UID{0x00, 0x01, 0x00, 0x1d, 14: 1}
	var r *rig
	var sim, sessionEnd time.Duration
	loadKeyLoop(b, uid, func() *Client {
		if r != nil {
			sim += r.hub.BusTime() - sessionEnd
		}
		r = newRig(b, Config{UID: uid, NoSecurity: true}, hubOpts...)
		r.tap.Close()
		if err := r.client.StartSession(context.Background(), uds.ExtendedSession); err != nil {
			b.Fatal(err)
		}
		sessionEnd = r.hub.BusTime()
		return r.client
	})
	return sim + r.hub.BusTime() - sessionEnd
}

// BenchmarkUDSLoadKeyMem is one LoadKey routine from the tester's client to the ECU over
// user-space ISO-TP on the in-memory bus without a bit rate: 68 request bytes (FF, 9 CFs), a flow
// control, 53 response bytes (FF, 7 CFs), a flow control; the SHE checks M1-M3 and builds M4/M5.
func BenchmarkUDSLoadKeyMem(b *testing.B) {
	benchLoadKey(b)
}

// BenchmarkUDSLoadKeyBus500k is the same on the simulated 500 kbit/s bus; it reports the
// simulated bus time of one exchange (sim-µs/op) next to the wall time it takes to simulate it.
func BenchmarkUDSLoadKeyBus500k(b *testing.B) {
	sim := benchLoadKey(b, vcan.WithBitRate(500000, vcan.WorstCaseStuffing))
	b.ReportMetric(float64(sim.Microseconds())/float64(b.N), "sim-µs/op")
}

// worstCaseBits is the length of a classic CAN frame with an 11-bit ID and n data bytes with
// worst-case stuffing: 47 + 8n + floor((34 + 8n - 1) / 4) bit times (ISO 11898-1 frame format).
func worstCaseBits(n int) int { return 47 + 8*n + (34+8*n-1)/4 }

// loadKeyOnBus runs one LoadKey on a 500 kbit/s bus and returns the bus time from the start of
// the request's first frame to the end of the response's last frame, and the floor: the sum of
// the exchange's frame lengths.
func loadKeyOnBus(tb testing.TB) (busTime, floor time.Duration) {
	uid := she.UID{0x00, 0x01, 0x00, 0x1d, 14: 1}
	m := key1Updates(tb, uid, 1)[0]
	r := newRig(tb, Config{UID: uid, NoSecurity: true}, vcan.WithBitRate(500000, vcan.WorstCaseStuffing))
	ctx := context.Background()
	if err := r.client.StartSession(ctx, uds.ExtendedSession); err != nil {
		tb.Fatal(err)
	}
	r.tap.ReceiveFor(20 * time.Millisecond)
	if res, err := r.client.LoadKey(ctx, m.M1, m.M2, m.M3); err != nil || res.ERC != she.NoError {
		tb.Fatal(res.ERC, err)
	}
	frames := r.tap.ReceiveFor(20 * time.Millisecond)
	if len(frames) != 20 { // FF + 9 CF + FC, FF + 7 CF + FC
		tb.Fatalf("LoadKey took %d frames, want 20", len(frames))
	}
	bits := 0
	for _, tf := range frames {
		bits += worstCaseBits(int(tf.Frame.Length))
	}
	floor = time.Duration(bits) * time.Second / 500000
	first := frames[0].Time - time.Duration(worstCaseBits(int(frames[0].Frame.Length)))*time.Second/500000
	return frames[len(frames)-1].Time - first, floor
}

// TestLoadKeyBusTimeNearFloor: on the simulated 500 kbit/s bus a LoadKey exchange takes no more
// than 1.1 times the time its frames occupy the bus.
func TestLoadKeyBusTimeNearFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		busTime, floor := loadKeyOnBus(t)
		t.Logf("LoadKey on 500 kbit/s: %v of bus time, floor %v", busTime, floor)
		if floor < 4500*time.Microsecond || floor > 5400*time.Microsecond {
			t.Fatalf("floor %v outside 4.5-5.4 ms: the exchange's frames are not what they should be", floor)
		}
		if busTime > floor*11/10 {
			t.Fatalf("bus time %v exceeds 1.1 x floor %v", busTime, floor)
		}
	})
}

// fleetClients starts a fleet of n ECUs on one in-memory bus and a client for each.
func fleetClients(tb testing.TB, n int) []*Client {
	h := vcan.NewHub()
	f, err := StartFleet(context.Background(), HubDialer(h), Config{UID: she.UID{0x00, 0x01, 0x00, 0x1d}, NoSecurity: true}, n)
	if err != nil {
		tb.Fatal(err)
	}
	clients := make([]*Client, n)
	for i := range n {
		req, resp, _ := FleetIDs(i, n)
		if clients[i], err = Dial(HubDialer(h), req, resp); err != nil {
			tb.Fatal(err)
		}
		if err := clients[i].StartSession(context.Background(), uds.ExtendedSession); err != nil {
			tb.Fatalf("ECU %d: %v", i, err)
		}
	}
	tb.Cleanup(func() {
		for _, c := range clients {
			c.Close()
		}
		f.Stop()
		h.Close()
	})
	return clients
}

// getIDAll asks every ECU for its ID, at most parallel at a time, and checks the UIDs.
func getIDAll(tb testing.TB, clients []*Client, parallel int) {
	sem := make(chan struct{}, parallel)
	errs := make(chan error, len(clients))
	for i, c := range clients {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			id, err := c.GetID(context.Background(), [16]byte{byte(i)})
			if err == nil && (id.ERC != she.NoError || id.UID != FleetUID(she.UID{0x00, 0x01, 0x00, 0x1d}, i)) {
				err = errUnexpected
			}
			errs <- err
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			tb.Fatal(err)
		}
	}
}

var errUnexpected = &uds.NegativeResponseError{}

func TestFleetOf1000AnswersGetID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		if testing.Short() {
			t.Skip("1,000 ECUs: not in -short")
		}
		getIDAll(t, fleetClients(t, 1000), 16)
	})
}

// BenchmarkFleet1000GetID is one GetID from each of 1,000 ECUs on one in-memory bus, 16 at a time.
func BenchmarkFleet1000GetID(b *testing.B) {
	clients := fleetClients(b, 1000)
	for b.Loop() {
		getIDAll(b, clients, 16)
	}
}
