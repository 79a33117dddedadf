package station

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/vcan"
	"go.einride.tech/can"
)

// realTimeDialer dials station-side nodes of hub (a hub with a bit rate) that hand over each
// frame no earlier in wall time than the simulated bus would have carried it (see realTimeNode).
func realTimeDialer(hub *vcan.Hub) ecu.Dialer {
	return func(filters ...vcan.Filter) (vcan.Conn, error) {
		return &realTimeNode{Node: hub.Connect(filters...), hub: hub}, nil
	}
}

// realTimeNode makes a hub's simulated bus time cost wall time on the tester's side. The hub
// keeps simulated time only while frames are on the bus; the station's other work (the KMS's
// round trips) takes wall time. Each request the node starts (a single or first frame) anchors
// the bus's simulated time to the wall clock, and a frame that completes an answer (a single
// frame, or the last consecutive frame) is handed over once as much wall time has passed since
// the anchor as bus time has: a conversation then lasts, in wall time, at least as long as the
// bus carries it. The frames in between go through at once: the hub gives them their bus times
// whenever they are sent, and the station acts on whole answers only. Sleeping to one anchor
// per request keeps late wake-ups from adding up within it.
type realTimeNode struct {
	*vcan.Node
	hub *vcan.Hub

	mu   sync.Mutex
	wall time.Time     // when the current request started
	sim  time.Duration // the bus's simulated time then
	left int           // bytes of the segmented answer still to come
}

var (
	_ vcan.FrameConn = (*realTimeNode)(nil)
	_ vcan.Waiter    = (*realTimeNode)(nil)
)

func (n *realTimeNode) Send(ctx context.Context, f can.Frame) error {
	return n.SendFrame(ctx, vcan.FromClassic(f))
}

func (n *realTimeNode) SendFrame(ctx context.Context, f vcan.Frame) error {
	if pci := f.Data[0] >> 4; f.Length > 0 && pci <= 1 { // a single or first frame: a new request
		n.mu.Lock()
		n.wall, n.sim = time.Now(), n.hub.BusTime()
		n.mu.Unlock()
	}
	return n.Node.SendFrame(ctx, f)
}

func (n *realTimeNode) Receive(ctx context.Context) (can.Frame, error) {
	for {
		f, err := n.ReceiveFrame(ctx)
		if err != nil || !f.FD {
			cf, _ := f.Classic()
			return cf, err
		}
	}
}

func (n *realTimeNode) ReceiveFrame(ctx context.Context) (vcan.Frame, error) {
	tf, err := n.Node.ReceiveTimed(ctx)
	if err != nil {
		return vcan.Frame{}, err
	}
	n.mu.Lock()
	due, complete := n.wall.Add(tf.Time-n.sim), n.completes(tf.Wire)
	n.mu.Unlock()
	if d := time.Until(due); complete && d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return vcan.Frame{}, ctx.Err()
		}
	}
	return tf.Wire, nil
}

// completes reports whether f, received, completes an ISO-TP message (normal addressing): a
// single frame, or the consecutive frame that brings the last bytes a first frame announced.
func (n *realTimeNode) completes(f vcan.Frame) bool {
	if f.Length == 0 {
		return false
	}
	d := f.Data[:f.Length]
	switch d[0] >> 4 {
	case 0:
		return true
	case 1:
		size, header := int(d[0]&0x0F)<<8|int(d[1]), 2
		if size == 0 && len(d) >= 6 { // CAN FD: the 32-bit length escape
			size, header = int(binary.BigEndian.Uint32(d[2:6])), 6
		}
		n.left = size - (len(d) - header)
	case 2:
		n.left -= len(d) - 1
		return n.left <= 0
	}
	return false
}

// TestRealTimeNodeTakesBusTime: through a real-time node, conversations take at least the wall
// time the bus needs to carry them (in-process they would take a fraction of it).
func TestRealTimeNodeTakesBusTime(t *testing.T) {
	l := newLine(t, classic500k, baseUID)
	start := time.Now()
	for range 20 {
		if _, err := l.target.Client.UID(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	bus, frames := l.busTime()
	// 20 reads of the 15-byte UID: a single frame, then a first frame, a flow control and two
	// consecutive frames; worst-case stuffing at 500 kbit/s: ≥ 20 × 4 × 250 µs.
	if frames != 20*5 || bus < 20*time.Millisecond {
		t.Fatalf("%d frames, %v of bus time: not the exchange this test expects", frames, bus)
	}
	if took < bus {
		t.Errorf("20 UID reads took %v, less than the %v the bus needs", took, bus)
	}
}
