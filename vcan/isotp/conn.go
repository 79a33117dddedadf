package isotp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/shekit/shekit/vcan"
)

// Errors of the sending side.
var (
	ErrTimeoutBs    = errors.New("isotp: N_Bs timeout: no flow control received in time")
	ErrWaitLimit    = errors.New("isotp: more flow control WAIT frames than N_WFTmax")
	ErrOverflow     = errors.New("isotp: receiver answered flow control OVERFLOW")
	ErrMessageSize  = errors.New("isotp: message length not supported")
	ErrNoCANFD      = errors.New("isotp: CAN FD configured on a connection without CAN FD (not a vcan.FrameConn)")
	errClosed       = errors.New("isotp: transport closed")
	defaultTimeout  = time.Second
	defaultPadding  = byte(0xCC)
	defaultWFTmax   = 10
	defaultMaxBytes = uint32(MaxLength12)
)

// config is set through Options.
type config struct {
	txID, rxID   uint32
	extended     bool
	pad          bool
	padByte      byte
	minLength    int // padded frames are at least this long (default 8)
	blockSize    uint8
	stmin        uint8
	wftMax       int
	timeoutAs    time.Duration
	timeoutBs    time.Duration
	timeoutCr    time.Duration
	maxLength    uint32
	waitsBefore  int
	waitInterval time.Duration
	fcDelay      time.Duration
	clock        Clock
	txDL         int  // CAN FD: the longest frame sent (TX_DL); 0 for classic CAN
	brs          bool // CAN FD: frames switch to the data bit rate
	// Extended and mixed addressing (ISO 15765-2): one address byte leads every frame, txAE in
	// the frames sent, rxAE in those received.
	addrExt    bool
	txAE, rxAE byte
}

// addressBytes is how many address bytes lead each frame: 1 with an address extension, else 0.
func (c *config) addressBytes() int {
	if c.addrExt {
		return 1
	}
	return 0
}

// Option configures a Conn.
type Option func(*config)

// WithCANFD sends CAN FD frames of up to txDL data bytes (TX_DL: 8, 12, 16, 20, 24, 32, 48 or
// 64; other values count as the next valid one down), with the bit rate switch when brs is set,
// and receives CAN FD frames as well as classic ones, of any length the sender chose (RX_DL is
// learned from each first frame). The bus must be a vcan.FrameConn. Frames longer than 8 bytes
// are always padded to the next CAN FD length, with the padding byte (0xCC by default) even
// WithoutPadding, which then only leaves frames of up to 8 bytes unpadded.
func WithCANFD(txDL int, brs bool) Option {
	return func(c *config) { c.txDL, c.brs = ValidTxDL(txDL), brs }
}

// WithPadding pads every frame to 8 bytes with b (the default pads with 0xCC).
func WithPadding(b byte) Option { return func(c *config) { c.pad, c.padByte = true, b } }

// WithMinFrameLength pads frames to at least n bytes (1..64; default 8) rather than 8, when they
// are padded; on CAN FD a length above 8 rounds up to the next CAN FD length. The kernel's socket
// (DialKernel) has no such setting and ignores it.
func WithMinFrameLength(n int) Option {
	return func(c *config) { c.minLength = min(max(n, 1), vcan.MaxFDLength) }
}

// WithoutPadding sends frames only as long as their content.
func WithoutPadding() Option { return func(c *config) { c.pad = false } }

// WithExtendedIDs uses 29-bit CAN IDs.
func WithExtendedIDs() Option { return func(c *config) { c.extended = true } }

// WithAddressExtension uses extended or mixed addressing (ISO 15765-2): every frame sent, flow
// control included, starts with tx, and only frames that start with rx are received, which
// shortens each frame's payload by one byte (a single frame carries up to 6 bytes on classic
// CAN). Extended addressing puts the target's address there (tx the peer's, rx this node's);
// mixed addressing the same address extension both ways.
func WithAddressExtension(tx, rx byte) Option {
	return func(c *config) { c.addrExt, c.txAE, c.rxAE = true, tx, rx }
}

// WithFlowControl sets the block size and separation time this side asks a sender for.
func WithFlowControl(blockSize uint8, stmin time.Duration) Option {
	return func(c *config) { c.blockSize, c.stmin = blockSize, EncodeSTmin(stmin) }
}

// WithWaitFrameMax sets N_WFTmax: how many consecutive flow control WAIT frames the sender
// accepts before giving up (default 10).
func WithWaitFrameMax(n int) Option { return func(c *config) { c.wftMax = n } }

// WithTimeouts sets N_As (a frame sent), N_Bs (flow control awaited) and N_Cr (consecutive
// frame awaited); each defaults to 1000 ms.
func WithTimeouts(as, bs, cr time.Duration) Option {
	return func(c *config) { c.timeoutAs, c.timeoutBs, c.timeoutCr = as, bs, cr }
}

// WithMaxLength sets the longest message received (default 4095; up to 2^32-1 with first frame
// escapes). Longer first frames are answered with flow control OVERFLOW.
func WithMaxLength(n uint32) Option { return func(c *config) { c.maxLength = n } }

// WithWaitFrames makes the receiving side answer every first frame with n flow control WAIT
// frames, interval apart, before it clears the sender (to exercise a peer's N_WFTmax).
func WithWaitFrames(n int, interval time.Duration) Option {
	return func(c *config) { c.waitsBefore, c.waitInterval = n, interval }
}

// WithFlowControlDelay makes the receiving side wait d before each flow control frame (within
// N_Br, ISO 15765-2's time for the receiver to send it). Some senders need the pause: Linux 6.1's
// CAN_ISOTP socket ignores a flow control that arrives before it has seen the echo of its own
// last consecutive frame, and then stalls until N_Bs.
func WithFlowControlDelay(d time.Duration) Option { return func(c *config) { c.fcDelay = d } }

// WithClock makes the transport measure N_As, N_Bs and N_Cr, and pause STmin and flow control
// delays, on clk (default: the system clock). A bus that keeps simulated time (a Hub with a bit
// rate) still paces frames in its own time.
func WithClock(clk Clock) Option { return func(c *config) { c.clock = clk } }

// Conn is a user-space ISO-TP transport between txID (frames sent) and rxID (frames received)
// over a CAN connection, which it owns: classic CAN, or CAN FD (WithCANFD).
type Conn struct {
	bus vcan.Conn
	cfg config

	sendMu sync.Mutex    // one message in flight at a time
	fc     chan PDU      // flow control frames for the sender
	inbox  chan received // completed messages and receive errors
	done   chan struct{}
	once   sync.Once
	loop   sync.WaitGroup
}

type received struct {
	msg []byte
	err error
}

var _ Transport = (*Conn)(nil)

// New starts an ISO-TP transport on bus that sends with txID and receives frames with rxID.
func New(bus vcan.Conn, txID, rxID uint32, opts ...Option) *Conn {
	c := &Conn{bus: bus, cfg: config{txID: txID, rxID: rxID, pad: true, padByte: defaultPadding,
		minLength: 8, wftMax: defaultWFTmax, timeoutAs: defaultTimeout, timeoutBs: defaultTimeout,
		timeoutCr: defaultTimeout, maxLength: defaultMaxBytes, clock: SystemClock},
		fc: make(chan PDU, 4), inbox: make(chan received, 64), done: make(chan struct{})}
	for _, o := range opts {
		o(&c.cfg)
	}
	c.loop.Add(1)
	go c.readLoop()
	return c
}

// Close stops the transport and closes the CAN connection.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		err = c.bus.Close()
		c.loop.Wait()
	})
	return err
}

// frame builds a CAN frame carrying data, padded as configured; on CAN FD, beyond 8 bytes, to the
// next CAN FD length.
func (c *Conn) frame(data []byte) vcan.Frame {
	f := vcan.Frame{ID: c.cfg.txID, Extended: c.cfg.extended, FD: c.cfg.txDL > 0, BRS: c.cfg.brs && c.cfg.txDL > 0}
	n := copy(f.Data[:], data)
	length := n
	if c.cfg.pad {
		length = max(n, min(c.cfg.minLength, max(c.cfg.txDL, 8))) // never beyond TX_DL
	}
	f.Length = uint8(length)
	if length > 8 {
		f.Length = uint8(vcan.PadFDLength(length))
	}
	for i := n; i < int(f.Length); i++ {
		f.Data[i] = c.cfg.padByte
	}
	return f
}

// send puts f on the bus: through SendFrame on CAN FD, Send on classic CAN.
func (c *Conn) send(ctx context.Context, f vcan.Frame) error {
	if !f.FD {
		cf, _ := f.Classic()
		return c.bus.Send(ctx, cf)
	}
	fc, ok := c.bus.(vcan.FrameConn)
	if !ok {
		return ErrNoCANFD
	}
	return fc.SendFrame(ctx, f)
}

// sendFrame sends one frame within N_As.
func (c *Conn) sendFrame(ctx context.Context, p PDU) error {
	var buf [vcan.MaxFDLength]byte
	ctx, cancel := withTimeout(ctx, c.cfg.clock, c.cfg.timeoutAs)
	defer cancel()
	b := buf[:0]
	if c.cfg.addrExt {
		b = append(b, c.cfg.txAE)
	}
	if err := c.send(ctx, c.frame(AppendPDU(b, p))); err != nil {
		if timerFired(ctx) {
			err = fmt.Errorf("N_As %v: %w", c.cfg.timeoutAs, context.DeadlineExceeded)
		}
		return fmt.Errorf("isotp: send %v frame: %w", p.Type, err)
	}
	return nil
}

// Send transmits msg as one ISO-TP message: a single frame, or a first frame and consecutive
// frames paced by the receiver's flow control.
func (c *Conn) Send(ctx context.Context, msg []byte) error {
	if len(msg) == 0 || uint64(len(msg)) > 1<<32-1 {
		return fmt.Errorf("%w: %d bytes", ErrMessageSize, len(msg))
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	pdus := SegmentFD(msg, max(c.cfg.txDL, 8), c.cfg.addressBytes())
	if len(pdus) == 1 {
		// A frame padded beyond 8 bytes carries its single frame with the SF_DL escape.
		pdus[0].Escape = pdus[0].Escape || c.cfg.pad && c.cfg.txDL > 8 && c.cfg.minLength > 8
		return c.sendFrame(ctx, pdus[0])
	}
	for len(c.fc) > 0 { // flow control left over from an abandoned exchange
		<-c.fc
	}
	if err := c.sendFrame(ctx, pdus[0]); err != nil {
		return err
	}
	for cfs := pdus[1:]; len(cfs) > 0; {
		fc, err := c.awaitClearToSend(ctx)
		if err != nil {
			return err
		}
		stmin := STminDuration(fc.STmin)
		for i := 0; len(cfs) > 0 && (fc.BlockSize == 0 || i < int(fc.BlockSize)); i++ {
			if i > 0 && stmin > 0 {
				if err := wait(ctx, c.bus, c.cfg.clock, stmin); err != nil {
					return err
				}
			}
			if err := c.sendFrame(ctx, cfs[0]); err != nil {
				return err
			}
			cfs = cfs[1:]
		}
	}
	return nil
}

// awaitClearToSend waits for flow control CTS, accepting up to N_WFTmax WAIT frames, each
// within N_Bs.
func (c *Conn) awaitClearToSend(ctx context.Context) (PDU, error) {
	for waits := 0; ; {
		fc, err := c.awaitFlowControl(ctx)
		switch {
		case err != nil:
			return PDU{}, err
		case fc.Status == ContinueToSend:
			return fc, nil
		case fc.Status == Overflow:
			return PDU{}, ErrOverflow
		}
		if waits++; waits > c.cfg.wftMax {
			return PDU{}, fmt.Errorf("%w (%d)", ErrWaitLimit, c.cfg.wftMax)
		}
	}
}

// starvationTolerance is how late a timer may fire before the sender takes the lateness for its
// own starvation (its process was not scheduled) rather than the receiver's silence.
const starvationTolerance = 2 * time.Millisecond

// maxGraces bounds the grace periods of one N_Bs or N_Cr wait.
const maxGraces = 16

// awaitFlowControl waits N_Bs for the next flow control frame. When the N_Bs timer fires late (the
// clock is past the deadline by more than starvationTolerance: the sender was starved), the frame
// may already be waiting: it listens again for as long as the timer was late, at most N_Bs, and
// again while that grace itself ends late. On an on-time timer the wait ends at N_Bs. (N_Cr, in
// readLoop, does the same.)
func (c *Conn) awaitFlowControl(ctx context.Context) (PDU, error) {
	clk, d := c.cfg.clock, c.cfg.timeoutBs
	deadline := clk.Now().Add(d)
	for graces := 0; ; graces++ {
		tctx, cancel := withTimeout(ctx, clk, d)
		select {
		case fc := <-c.fc:
			cancel()
			return fc, nil
		case <-tctx.Done():
		case <-c.done:
			cancel()
			return PDU{}, errClosed
		}
		cancel()
		if !timerFired(tctx) {
			return PDU{}, ctx.Err()
		}
		now := clk.Now()
		next, ok := graceAfter(now, deadline, c.cfg.timeoutBs, graces)
		if !ok {
			return PDU{}, ErrTimeoutBs
		}
		d, deadline = next.Sub(now), next
	}
}

// graceAfter is the end of a grace after a timer due at deadline that fired at now: as long as
// the timer was late, at most limit. ok is false, and the wait over, when the timer was within
// starvationTolerance or graces (those granted so far) reached maxGraces.
func graceAfter(now, deadline time.Time, limit time.Duration, graces int) (end time.Time, ok bool) {
	late := now.Sub(deadline)
	if late <= starvationTolerance || graces >= maxGraces {
		return time.Time{}, false
	}
	return now.Add(min(late, limit)), true
}

// Receive returns the next message, or the error of a message the receiver abandoned
// (ErrSequence, ErrTimeoutCr, ErrInterrupted, ErrTooLong).
func (c *Conn) Receive(ctx context.Context) ([]byte, error) {
	select {
	case r := <-c.inbox:
		return r.msg, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, errClosed
	}
}

// readLoop routes received frames: flow control to the sender, the rest through the reassembler.
func (c *Conn) readLoop() {
	defer c.loop.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.done
		cancel()
	}()
	ae := c.cfg.addressBytes()
	r := Reassembler{MaxLength: c.cfg.maxLength, BlockSize: c.cfg.blockSize, STmin: c.cfg.stmin, AddressBytes: ae}
	clk := c.cfg.clock
	receive := c.receiver()
	var crDeadline time.Time // N_Cr runs from the last frame the reassembler accepted
	crGraces := 0            // graces granted since (a late N_Cr timer: the receiver was starved)
	for {
		rctx, rcancel := ctx, context.CancelFunc(func() {})
		if r.Active() {
			rctx, rcancel = withTimeout(ctx, clk, crDeadline.Sub(clk.Now()))
		}
		f, err := receive(rctx)
		rcancel()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, vcan.ErrClosed) {
				return
			}
			if !timerFired(rctx) {
				continue
			}
			if next, ok := graceAfter(clk.Now(), crDeadline, c.cfg.timeoutCr, crGraces); ok {
				crDeadline, crGraces = next, crGraces+1 // the next frame may be waiting already
			} else if r.Abort() {
				c.deliver(received{err: ErrTimeoutCr})
			}
			continue
		}
		if f.ID != c.cfg.rxID || f.Extended != c.cfg.extended || f.Remote {
			continue
		}
		data := f.Payload()
		if len(data) <= ae || ae == 1 && data[0] != c.cfg.rxAE {
			continue // empty, or addressed to another node
		}
		if PDUType(data[ae]>>4) == FlowControl {
			if p, _, err := ParsePDUAt(data, ae); err == nil {
				select {
				case c.fc <- p:
				default: // nobody is sending: unexpected flow control is ignored
				}
			}
			continue
		}
		st := r.Feed(data)
		crDeadline, crGraces = clk.Now().Add(c.cfg.timeoutCr), 0
		if st.Err != nil {
			c.deliver(received{err: st.Err})
		}
		if st.FlowControl != nil {
			c.sendFlowControl(ctx, *st.FlowControl, PDUType(data[ae]>>4) == FirstFrame)
		}
		if st.Message != nil {
			c.deliver(received{msg: st.Message})
		}
	}
}

// receiver returns how readLoop receives frames: CAN FD frames too when the transport is configured
// for CAN FD and the bus carries them, classic frames only otherwise.
func (c *Conn) receiver() func(context.Context) (vcan.Frame, error) {
	if fc, ok := c.bus.(vcan.FrameConn); ok && c.cfg.txDL > 0 {
		return fc.ReceiveFrame
	}
	return func(ctx context.Context) (vcan.Frame, error) {
		f, err := c.bus.Receive(ctx)
		return vcan.FromClassic(f), err
	}
}

// sendFlowControl sends fc after the configured delay, preceded by the configured WAIT frames when
// it answers a first frame.
func (c *Conn) sendFlowControl(ctx context.Context, fc PDU, first bool) {
	if c.cfg.fcDelay > 0 && wait(ctx, c.bus, c.cfg.clock, c.cfg.fcDelay) != nil {
		return
	}
	if fc.Status == ContinueToSend && first {
		for range c.cfg.waitsBefore {
			if c.sendFrame(ctx, PDU{Type: FlowControl, Status: Wait}) != nil {
				return
			}
			if wait(ctx, c.bus, c.cfg.clock, c.cfg.waitInterval) != nil {
				return
			}
		}
	}
	c.sendFrame(ctx, fc)
}

// deliver queues a receive result; when the application has stopped reading and the queue is
// full, the oldest result is dropped.
func (c *Conn) deliver(r received) {
	for {
		select {
		case c.inbox <- r:
			return
		default:
		}
		select {
		case <-c.inbox:
		default:
		}
	}
}
