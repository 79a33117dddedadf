package vcan

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"go.einride.tech/can"
)

func frame(id uint32, data ...byte) can.Frame {
	f := can.Frame{ID: id, Length: uint8(len(data))}
	copy(f.Data[:], data)
	return f
}

func receiveWithin(t *testing.T, n *Node, d time.Duration) (can.Frame, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return n.Receive(ctx)
}

func TestHubDeliversToOthersInOrderThroughFilters(t *testing.T) {
	h := NewHub()
	defer h.Close()
	a := h.Connect()
	b := h.Connect(ExactID(0x7E0, false))
	c := h.Connect(Filter{ID: 0x700, Mask: 0x700})
	ctx := context.Background()
	for i := range 100 {
		if err := a.Send(ctx, frame(0x7E0, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Send(ctx, frame(0x123, 0xAA)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{b, c} {
		for i := range 100 {
			f, err := receiveWithin(t, n, time.Second)
			if err != nil || f.Data[0] != byte(i) {
				t.Fatalf("frame %d: %v %v", i, f, err)
			}
		}
	}
	if f, err := receiveWithin(t, b, 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("filtered node got %v", f)
	}
	if f, err := receiveWithin(t, a, 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sender received its own frame %v", f)
	}
	if err := a.Send(ctx, can.Frame{ID: 0x800}); err == nil {
		t.Fatal("sent an 11-bit frame with a 12-bit ID")
	}
	if err := b.Send(ctx, frame(0x29, 1)); err != nil {
		t.Fatal(err)
	}
	if f, err := receiveWithin(t, a, time.Second); err != nil || f.ID != 0x29 {
		t.Fatalf("unfiltered node: %v %v", f, err)
	}
}

func TestHubCloseUnblocksReceive(t *testing.T) {
	h := NewHub()
	n := h.Connect()
	errc := make(chan error)
	go func() {
		_, err := n.Receive(context.Background())
		errc <- err
	}()
	time.Sleep(10 * time.Millisecond)
	n.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive after Close: %v", err)
	}
	if err := n.Send(context.Background(), frame(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	m := h.Connect()
	h.Close()
	if _, err := m.Receive(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Receive after hub Close: %v", err)
	}
	if late := h.Connect(); late.Send(context.Background(), frame(1)) == nil {
		t.Fatal("a node of a closed hub could send")
	}
}

func TestHubFaults(t *testing.T) {
	h := NewHub()
	defer h.Close()
	a, b := h.Connect(), h.Connect()
	ctx := context.Background()
	match := ExactID(0x7E8, false)
	h.Inject(Fault{Match: match, Nth: 2, Action: Drop})
	h.Inject(Fault{Match: match, Nth: 3, Action: Corrupt}) // counts frames from its own injection
	h.Inject(Fault{Match: match, Nth: 4, Action: Duplicate})
	h.Inject(Fault{Match: match, Nth: 5, Action: Delay, Delay: 50 * time.Millisecond})
	for i := 1; i <= 6; i++ {
		a.Send(ctx, frame(0x7E8, byte(i)))
	}
	a.Send(ctx, frame(0x7E0, 0x99)) // matches no fault
	var got []byte
	for range 6 {
		f, err := receiveWithin(t, b, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Data[0])
	}
	// 1; 2 dropped; 3 corrupted (0x83); 4 twice; 5 delayed past 6 and 0x99.
	want := []byte{1, 0x83, 4, 4, 6, 0x99}
	if string(got) != string(want) {
		t.Fatalf("received % x, want % x", got, want)
	}
	if f, err := receiveWithin(t, b, time.Second); err != nil || f.Data[0] != 5 {
		t.Fatalf("delayed frame: %v %v", f, err)
	}
}

func TestHubBitRateKeepsSimulatedTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := NewHub(WithBitRate(500000, WorstCaseStuffing))
		defer h.Close()
		a, b := h.Connect(), h.Connect()
		ctx := context.Background()
		full := frame(0x7E0, 1, 2, 3, 4, 5, 6, 7, 8) // 135 bits: 270 µs
		if err := a.Send(ctx, full); err != nil {
			t.Fatal(err)
		}
		if err := a.Send(ctx, full); err != nil {
			t.Fatal(err)
		}
		tf, err := b.ReceiveTimed(ctx)
		if err != nil || tf.Time != 270*time.Microsecond {
			t.Fatalf("first frame ends at %v (%v), want 270µs", tf.Time, err)
		}
		// b answers after receiving the first frame, but the bus is busy with the second until 540 µs.
		if err := b.Send(ctx, full); err != nil {
			t.Fatal(err)
		}
		if got := h.BusTime(); got != 810*time.Microsecond {
			t.Fatalf("bus time %v, want 810µs", got)
		}
		// A wait moves only the waiting node's time: a's next frame starts 1 ms after its last.
		if err := a.Wait(ctx, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		a.Send(ctx, full)
		if got := h.BusTime(); got != 540*time.Microsecond+time.Millisecond+270*time.Microsecond {
			t.Fatalf("bus time after a wait: %v", got)
		}
		if time.Since(start) != 0 { // the bubble's clock moves only when a goroutine sleeps
			t.Fatal("a simulated wait slept")
		}
	})
}

func TestHubQueueOverflowDrops(t *testing.T) {
	h := NewHub()
	defer h.Close()
	a, b := h.Connect(), h.Connect()
	for range maxQueue + 10 {
		a.Send(context.Background(), frame(1))
	}
	if d := b.Dropped(); d != 10 {
		t.Fatalf("dropped %d, want 10", d)
	}
}

func TestReceiveHonoursContext(t *testing.T) {
	h := NewHub()
	defer h.Close()
	n := h.Connect()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := n.Receive(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Receive with a canceled context: %v", err)
	}
	if err := n.Send(ctx, frame(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send with a canceled context: %v", err)
	}
}

// TestHubCarriesCANFD: a CAN FD frame reaches the nodes whose filters match, through ReceiveFrame;
// Receive, the classic interface, skips it (as a SocketCAN socket without CAN_RAW_FD_FRAMES);
// with 500 kbit/s nominal and 2 Mbit/s data the 64-byte frame takes 405.5 µs (33 nominal and 679
// data bit times at worst, TestFDWorstCaseFrameBits) and a classic 8-byte frame after it 270 µs.
func TestHubCarriesCANFD(t *testing.T) {
	h := NewHub(WithBitRate(500000, WorstCaseStuffing), WithDataBitRate(2000000))
	defer h.Close()
	a, b, c := h.Connect(), h.Connect(ExactID(0x7E0, false)), h.Connect(ExactID(0x7E8, false))
	ctx := context.Background()
	fd := Frame{ID: 0x7E0, FD: true, BRS: true, Length: 64}
	for i := range fd.Data {
		fd.Data[i] = byte(i)
	}
	if err := a.SendFrame(ctx, fd); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(ctx, frame(0x7E0, 1, 2, 3, 4, 5, 6, 7, 8)); err != nil {
		t.Fatal(err)
	}
	if err := a.SendFrame(ctx, Frame{ID: 0x7E0, FD: true, Length: 13}); err == nil {
		t.Fatal("sent a CAN FD frame of 13 bytes")
	}
	tf, err := b.ReceiveTimed(ctx)
	if err != nil || tf.Wire != fd || tf.Time != 405500*time.Nanosecond || tf.Frame != (can.Frame{}) {
		t.Fatalf("FD frame: %+v at %v, %v", tf.Wire, tf.Time, err)
	}
	tf, err = b.ReceiveTimed(ctx)
	if err != nil || tf.Frame != frame(0x7E0, 1, 2, 3, 4, 5, 6, 7, 8) || tf.Wire.FD || tf.Time != 675500*time.Nanosecond {
		t.Fatalf("classic frame: %+v at %v, %v", tf.Frame, tf.Time, err)
	}
	if f, err := receiveWithin(t, c, 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("filtered node got %v", f)
	}
	// The classic interface skips the FD frame.
	d := h.Connect()
	a.SendFrame(ctx, fd)
	a.Send(ctx, frame(0x123, 9))
	if f, err := receiveWithin(t, d, time.Second); err != nil || f != frame(0x123, 9) {
		t.Fatalf("classic Receive: %v %v", f, err)
	}
	e := h.Connect()
	a.SendFrame(ctx, fd)
	if f, err := e.ReceiveFrame(ctx); err != nil || f != fd {
		t.Fatalf("ReceiveFrame: %+v %v", f, err)
	}
}
