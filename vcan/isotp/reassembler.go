package isotp

import (
	"errors"
	"fmt"
)

// Errors a receiver reports when it abandons a message.
var (
	ErrSequence    = errors.New("isotp: wrong sequence number")
	ErrInterrupted = errors.New("isotp: message interrupted by a new single or first frame")
	ErrTooLong     = errors.New("isotp: message longer than the receiver accepts (flow control OVERFLOW sent)")
	ErrTimeoutCr   = errors.New("isotp: N_Cr timeout: consecutive frame not received in time")
)

// Abandoned reports whether a receive error is a message the receiver gave up on (one of the
// errors above, from either transport): the transport still works and the next message may
// arrive.
func Abandoned(err error) bool {
	return errors.Is(err, ErrSequence) || errors.Is(err, ErrInterrupted) || errors.Is(err, ErrTooLong) ||
		errors.Is(err, ErrTimeoutCr)
}

// Reassembler is the receiving side of ISO-TP as a pure state machine: it is fed the frames that
// arrive and answers with completed messages, the flow control frames to send, and errors for
// messages it abandons (ISO 15765-2 9.8: unexpected arrival of N_PDUs). It takes classic CAN and
// CAN FD frames alike: a first frame's length is the sender's TX_DL, which becomes RX_DL for the
// message; a consecutive frame longer than RX_DL, or shorter while more than it could carry
// remains (only the last may be shorter), is ignored (ISO 15765-2:2016; Linux's CAN_ISOTP does
// the same).
type Reassembler struct {
	MaxLength    uint32 // longest message accepted; longer first frames get FC OVERFLOW, longer single frames are dropped
	BlockSize    uint8  // BS advertised in flow control (0: no further flow control)
	STmin        uint8  // STmin advertised in flow control
	AddressBytes int    // 1 when every frame starts with an address byte (extended, mixed addressing)

	active  bool
	length  uint32
	rxDL    int // the first frame's CAN_DL
	buf     []byte
	nextSN  uint8
	inBlock int
}

// Step is what one fed frame results in. Any combination may be set: a single frame that
// interrupts a message yields both Err and Message.
type Step struct {
	Message     []byte // a message completed
	FlowControl *PDU   // a flow control frame to send
	Err         error  // a message was abandoned
}

// Active reports whether a multi-frame message is being received.
func (r *Reassembler) Active() bool { return r.active }

// Abort abandons the message being received (on an N_Cr timeout) and reports whether there was
// one.
func (r *Reassembler) Abort() bool {
	was := r.active
	r.reset()
	return was
}

func (r *Reassembler) reset() {
	r.active, r.length, r.rxDL, r.buf, r.nextSN, r.inBlock = false, 0, 0, nil, 0, 0
}

// Feed processes the data of one received frame. Flow control frames and invalid frames are
// ignored (a flow control belongs to the sending side).
func (r *Reassembler) Feed(data []byte) Step {
	p, _, err := ParsePDUAt(data, r.AddressBytes)
	if err != nil {
		return Step{}
	}
	var st Step
	switch p.Type {
	case SingleFrame:
		if r.active {
			st.Err = ErrInterrupted
			r.reset()
		}
		if p.Length > r.MaxLength {
			if st.Err == nil { // a single frame cannot be refused with flow control: it is dropped
				st.Err = fmt.Errorf("%w: %d > %d bytes", ErrTooLong, p.Length, r.MaxLength)
			}
			return st
		}
		st.Message = append([]byte(nil), p.Data...)
	case FirstFrame:
		if r.active {
			st.Err = ErrInterrupted
			r.reset()
		}
		if p.Length > r.MaxLength {
			st.FlowControl = &PDU{Type: FlowControl, Status: Overflow}
			if st.Err == nil {
				st.Err = fmt.Errorf("%w: %d > %d bytes", ErrTooLong, p.Length, r.MaxLength)
			}
			return st
		}
		r.active, r.length, r.rxDL, r.nextSN, r.inBlock = true, p.Length, len(data), 1, 0
		r.buf = make([]byte, 0, p.Length)
		r.buf = append(r.buf, p.Data...)
		st.FlowControl = r.clearToSend()
	case ConsecutiveFrame:
		if !r.active || !r.fitsRxDL(len(data)) {
			return st // not expected, or not of the message's frame length: ignored
		}
		if p.SN != r.nextSN {
			st.Err = fmt.Errorf("%w: got %d, want %d", ErrSequence, p.SN, r.nextSN)
			r.reset()
			return st
		}
		r.nextSN = (r.nextSN + 1) & 0xF
		need := int(r.length) - len(r.buf)
		r.buf = append(r.buf, p.Data[:min(need, len(p.Data))]...)
		if len(r.buf) == int(r.length) {
			st.Message = r.buf
			r.reset()
			return st
		}
		r.inBlock++
		if r.BlockSize > 0 && r.inBlock == int(r.BlockSize) {
			r.inBlock = 0
			st.FlowControl = r.clearToSend()
		}
	}
	return st
}

// fitsRxDL reports whether a consecutive frame of canDL bytes belongs to the message: RX_DL long,
// or shorter when it is the last.
func (r *Reassembler) fitsRxDL(canDL int) bool {
	remaining := int(r.length) - len(r.buf)
	return canDL == r.rxDL || canDL < r.rxDL && remaining <= canDL-1-r.AddressBytes
}

func (r *Reassembler) clearToSend() *PDU {
	return &PDU{Type: FlowControl, Status: ContinueToSend, BlockSize: r.BlockSize, STmin: r.STmin}
}
