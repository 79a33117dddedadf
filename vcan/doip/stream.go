package doip

import (
	"fmt"
	"io"
)

// ReadMessage reads one message from a TCP stream, by its header's length (never by parsing the
// payload, so that messages arriving in one segment stay apart). A payload longer than
// maxPayload, or of a type this package does not know, is read, discarded and reported with
// ErrMessageTooLarge or ErrUnknownPayloadType: the stream stays in step and the caller may go on.
// After ErrIncorrectPattern or ErrInvalidPayloadLength, and after any other error, it is out of
// step and the socket must be closed. The payload does not alias any buffer.
func ReadMessage(r io.Reader, maxPayload uint32) (Message, error) {
	var hb [HeaderLength]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return Message{}, err
	}
	h, err := ParseHeader(hb[:])
	if err != nil {
		return Message{}, err
	}
	if !h.Type.Known() || h.Length > maxPayload {
		if _, derr := io.CopyN(io.Discard, r, int64(h.Length)); derr != nil {
			return Message{}, derr
		}
		if !h.Type.Known() {
			return Message{}, fmt.Errorf("%w: %#04x", ErrUnknownPayloadType, uint16(h.Type))
		}
		return Message{}, fmt.Errorf("%w: %d bytes (at most %d)", ErrMessageTooLarge, h.Length, maxPayload)
	}
	if err := CheckLength(h); err != nil {
		return Message{}, err
	}
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(r, payload); err != nil {
		return Message{}, unexpected(err)
	}
	p, err := ParsePayload(h, payload)
	if err != nil {
		return Message{}, err
	}
	return Message{Version: h.Version, Payload: p}, nil
}

// unexpected turns the end of the stream in the middle of a message into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
