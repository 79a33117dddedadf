package vcan

import (
	"context"
	"slices"
	"sync"
	"time"

	"go.einride.tech/can"
)

// TimedFrame is a frame with the time it finished on the bus: simulated bus time on a Hub with a
// bit rate, time since the hub started otherwise.
type TimedFrame struct {
	Time  time.Duration
	Frame can.Frame // the frame when it is classic CAN; zero for a CAN FD frame
	Wire  Frame     // the frame as the bus carried it, classic or CAN FD
}

// FaultAction is what a Fault does to the frame it hits.
type FaultAction uint8

// The fault actions.
const (
	Drop      FaultAction = iota // no node receives the frame
	Corrupt                      // receivers get the frame with the first data bit inverted
	Delay                        // receivers get the frame Fault.Delay later
	Duplicate                    // receivers get the frame twice
)

// Fault hits the Nth frame (counting from 1) that matches Match after the fault is injected.
type Fault struct {
	Match  Filter
	Nth    int
	Action FaultAction
	Delay  time.Duration
}

// maxQueue is how many frames a node may have waiting before further ones are dropped, as a CAN
// controller's receive FIFO overflows.
const maxQueue = 1 << 16

// Hub is an in-memory CAN bus: every frame a node sends reaches every other node whose filters
// match, in the order the bus carried them. With a bit rate it keeps simulated bus time: each
// frame occupies the bus for its length in bits, a node cannot send before it has received what
// it responds to, and timing results are deterministic whatever the machine's load.
type Hub struct {
	mu       sync.Mutex
	nodes    map[*Node]struct{}
	exact    map[idKey][]*Node // nodes with an exact-ID filter, by that ID
	broad    []*Node           // nodes with any other filter, or none
	bitRate  int
	dataRate int // CAN FD data phase, for frames with BRS; 0: the nominal rate
	stuffing Stuffing
	busFree  time.Duration // simulated time at which the bus is next idle
	faults   []*faultState
	start    time.Time
	closed   bool
}

// idKey is a CAN ID with its length.
type idKey struct {
	id       uint32
	extended bool
}

// exactKey reports the ID f selects when it selects exactly one.
func (f Filter) exactKey() (idKey, bool) {
	full := uint32(can.MaxID)
	if f.Extended {
		full = can.MaxExtendedID
	}
	return idKey{f.ID & full, f.Extended}, f.Mask&full == full
}

type faultState struct {
	Fault
	seen int
}

// HubOption configures a Hub.
type HubOption func(*Hub)

// WithBitRate makes the hub model a bus of bitRate bits per second (500000 for the usual
// high-speed CAN), counting stuff bits as s says.
func WithBitRate(bitRate int, s Stuffing) HubOption {
	return func(h *Hub) { h.bitRate, h.stuffing = bitRate, s }
}

// WithDataBitRate sets the data phase bit rate of CAN FD frames with the bit rate switch (BRS),
// 2000000 for the usual 2 Mbit/s; it needs WithBitRate, the nominal (arbitration) rate. Without
// it CAN FD frames run at the nominal rate throughout.
func WithDataBitRate(dataRate int) HubOption {
	return func(h *Hub) { h.dataRate = dataRate }
}

// NewHub returns an empty bus.
func NewHub(opts ...HubOption) *Hub {
	h := &Hub{nodes: map[*Node]struct{}{}, exact: map[idKey][]*Node{}, start: time.Now()}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Connect adds a node that receives the frames matching any of filters (all frames when there
// are none).
func (h *Hub) Connect(filters ...Filter) *Node {
	n := &Node{hub: h, filters: filters, signal: make(chan struct{}, 1), done: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		n.closed = true
		close(n.done)
		return n
	}
	h.nodes[n] = struct{}{}
	h.index(n)
	return n
}

// index files n under the IDs of its exact filters, or among the broad nodes.
func (h *Hub) index(n *Node) {
	keys := make([]idKey, 0, len(n.filters))
	for _, f := range n.filters {
		k, ok := f.exactKey()
		if !ok {
			h.broad = append(h.broad, n)
			return
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		h.broad = append(h.broad, n)
		return
	}
	for _, k := range keys {
		if !slices.Contains(h.exact[k], n) {
			h.exact[k] = append(h.exact[k], n)
		}
	}
}

// unindex removes n from the index.
func (h *Hub) unindex(n *Node) {
	h.broad = slices.DeleteFunc(h.broad, func(m *Node) bool { return m == n })
	for _, f := range n.filters {
		if k, ok := f.exactKey(); ok {
			if h.exact[k] = slices.DeleteFunc(h.exact[k], func(m *Node) bool { return m == n }); len(h.exact[k]) == 0 {
				delete(h.exact, k)
			}
		}
	}
}

// Inject arms a fault.
func (h *Hub) Inject(f Fault) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.faults = append(h.faults, &faultState{Fault: f})
}

// BusTime returns the simulated time at which the bus is next idle (zero without a bit rate).
func (h *Hub) BusTime() time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.busFree
}

// Close disconnects every node.
func (h *Hub) Close() error {
	h.mu.Lock()
	nodes := h.nodes
	h.nodes, h.exact, h.broad, h.closed = map[*Node]struct{}{}, map[idKey][]*Node{}, nil, true
	h.mu.Unlock()
	for n := range nodes {
		n.shut()
	}
	return nil
}

// send puts frame on the bus for its sender.
func (h *Hub) send(from *Node, frame Frame) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return ErrClosed
	}
	var at time.Duration
	if h.bitRate > 0 {
		from.mu.Lock()
		start := max(h.busFree, from.now)
		at = start + FDFrameTime(frame, h.stuffing, h.bitRate, h.dataRate)
		h.busFree, from.now = at, at
		from.mu.Unlock()
	} else {
		at = time.Since(h.start)
	}
	action, delay, hit := h.fault(frame)
	tf := TimedFrame{Time: at, Wire: frame}
	copies := 1
	switch {
	case !hit:
	case action == Drop:
		copies = 0
	case action == Corrupt:
		tf.Wire.Data[0] ^= 0x80
	case action == Duplicate:
		copies = 2
	case action == Delay:
		tf.Time += delay
	}
	tf.Frame, _ = tf.Wire.Classic()
	var receivers []*Node
	for _, n := range h.exact[idKey{frame.ID, frame.Extended}] {
		if n != from {
			receivers = append(receivers, n)
		}
	}
	for _, n := range h.broad {
		if n != from && matchAny(n.filters, frame) {
			receivers = append(receivers, n)
		}
	}
	if hit && action == Delay {
		h.mu.Unlock()
		time.AfterFunc(delay, func() { deliver(receivers, tf, copies) })
		return nil
	}
	// Delivered under the hub's lock, so that every node sees frames in bus order.
	deliver(receivers, tf, copies)
	h.mu.Unlock()
	return nil
}

func deliver(receivers []*Node, tf TimedFrame, copies int) {
	for _, n := range receivers {
		for range copies {
			n.enqueue(tf)
		}
	}
}

// fault counts frame against every armed fault it matches and returns the action of the first
// one it hits. Faults that reach their count are disarmed.
func (h *Hub) fault(frame Frame) (action FaultAction, delay time.Duration, hit bool) {
	armed := h.faults[:0]
	for _, f := range h.faults {
		if f.Match.MatchFrame(frame) {
			f.seen++
			if f.seen == f.Nth {
				if !hit {
					action, delay, hit = f.Action, f.Delay, true
				}
				continue
			}
		}
		armed = append(armed, f)
	}
	clear(h.faults[len(armed):])
	h.faults = armed
	return action, delay, hit
}

// Node is one connection to a Hub. It implements FrameConn and Waiter.
type Node struct {
	hub     *Hub
	filters []Filter

	mu      sync.Mutex
	queue   []TimedFrame
	now     time.Duration // the node's simulated time (with a bit rate)
	dropped int
	closed  bool
	signal  chan struct{}
	done    chan struct{}
}

var (
	_ FrameConn = (*Node)(nil)
	_ Waiter    = (*Node)(nil)
)

// Send puts the classic frame f on the bus. It does not block: the hub queues the frame for every
// receiver.
func (n *Node) Send(ctx context.Context, f can.Frame) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	return n.SendFrame(ctx, FromClassic(f))
}

// SendFrame puts f, classic or CAN FD, on the bus. It does not block.
func (n *Node) SendFrame(ctx context.Context, f Frame) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return n.hub.send(n, f)
}

// Receive returns the next classic frame; CAN FD frames are skipped.
func (n *Node) Receive(ctx context.Context) (can.Frame, error) {
	for {
		tf, err := n.ReceiveTimed(ctx)
		if err != nil || !tf.Wire.FD {
			return tf.Frame, err
		}
	}
}

// ReceiveFrame returns the next frame, classic or CAN FD.
func (n *Node) ReceiveFrame(ctx context.Context) (Frame, error) {
	tf, err := n.ReceiveTimed(ctx)
	return tf.Wire, err
}

// ReceiveTimed returns the next frame, classic or CAN FD, with the time it finished on the bus.
func (n *Node) ReceiveTimed(ctx context.Context) (TimedFrame, error) {
	for {
		n.mu.Lock()
		if len(n.queue) > 0 {
			tf := n.queue[0]
			n.queue[0] = TimedFrame{}
			n.queue = n.queue[1:]
			n.now = max(n.now, tf.Time)
			n.mu.Unlock()
			return tf, nil
		}
		closed := n.closed
		n.mu.Unlock()
		if closed {
			return TimedFrame{}, ErrClosed
		}
		select {
		case <-n.signal:
		case <-n.done:
		case <-ctx.Done():
			return TimedFrame{}, ctx.Err()
		}
	}
}

// ReceiveFor returns the frames that arrive within d (on a tap: what the bus carried).
func (n *Node) ReceiveFor(d time.Duration) []TimedFrame {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var frames []TimedFrame
	for {
		tf, err := n.ReceiveTimed(ctx)
		if err != nil {
			return frames
		}
		frames = append(frames, tf)
	}
}

// Wait lets d pass: simulated time on a hub with a bit rate, a sleep otherwise.
func (n *Node) Wait(ctx context.Context, d time.Duration) error {
	if n.hub.bitRate > 0 {
		n.mu.Lock()
		n.now += d
		n.mu.Unlock()
		return ctx.Err()
	}
	return sleep(ctx, d)
}

// Dropped returns how many frames this node lost to a full receive queue.
func (n *Node) Dropped() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.dropped
}

// Close disconnects the node; pending and later Receives return ErrClosed.
func (n *Node) Close() error {
	n.hub.mu.Lock()
	if _, ok := n.hub.nodes[n]; ok {
		delete(n.hub.nodes, n)
		n.hub.unindex(n)
	}
	n.hub.mu.Unlock()
	n.shut()
	return nil
}

func (n *Node) shut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.closed = true
		close(n.done)
	}
}

func (n *Node) enqueue(tf TimedFrame) {
	n.mu.Lock()
	if n.closed || len(n.queue) >= maxQueue {
		if !n.closed {
			n.dropped++
		}
		n.mu.Unlock()
		return
	}
	n.queue = append(n.queue, tf)
	n.mu.Unlock()
	select {
	case n.signal <- struct{}{}:
	default:
	}
}
