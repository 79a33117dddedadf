package profile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/shekit/shekit/vcan/uds"
)

// Values holds an operation's field values by field name (M1, ERC, KeyID…).
type Values map[string][]byte

// ERC returns the ERC field, if present.
func (v Values) ERC() (ERC, bool) {
	b, ok := v["ERC"]
	if !ok || len(b) != 1 {
		return 0, false
	}
	return ERC(b[0]), true
}

// Errors of the codec; each is wrapped with what went wrong.
var (
	// ErrLength: a message is shorter or longer than its layout, or a value has the wrong size.
	ErrLength = errors.New("wrong length")
	// ErrContent: a header, constant, length field or CRC differs from what the layout says.
	ErrContent = errors.New("wrong content")
	// ErrMissing: a value the layout needs was not given.
	ErrMissing = errors.New("missing value")
)

func sid(s Service) byte {
	switch s {
	case RoutineStart, RoutineResults:
		return sidRoutineControl
	case WriteDID:
		return sidWriteDID
	case ReadDID:
		return sidReadDID
	case RequestDownload:
		return sidRequestDownload
	case TransferData:
		return sidTransferData
	}
	return sidRequestTransferExit
}

// SID returns the step's UDS service identifier.
func (s *Step) SID() byte { return sid(s.Service) }

// requestHeader is what precedes the request's layout.
func (s *Step) requestHeader() []byte {
	h := []byte{s.SID()}
	switch s.Service {
	case RoutineStart:
		h = append(h, 0x01, byte(s.ID>>8), byte(s.ID))
	case RoutineResults:
		h = append(h, 0x03, byte(s.ID>>8), byte(s.ID))
	case WriteDID, ReadDID:
		h = append(h, byte(s.ID>>8), byte(s.ID))
	case RequestDownload:
		h = append(h, s.DataFormat, byte(s.SizeBytes<<4|s.AddressBytes))
		h = appendUint(h, uint64(s.Address), s.AddressBytes)
		h = appendUint(h, uint64(s.MemorySize), s.SizeBytes)
	case TransferData:
		h = append(h, 0x01) // blockSequenceCounter: the record is one block
	}
	return h
}

// responseHeader is what precedes the answer's layout (request-download: the whole answer).
func (s *Step) responseHeader() []byte {
	h := s.requestHeader()
	h[0] += 0x40
	switch s.Service {
	case RequestDownload:
		// lengthFormatIdentifier 0x20: a 2-byte maxNumberOfBlockLength, which counts the
		// TransferData's SID and block counter too.
		n := s.MemorySize + 2
		return []byte{h[0], 0x20, byte(n >> 8), byte(n)}
	case RequestTransferExit:
		return h[:1]
	}
	return h
}

func appendUint(b []byte, v uint64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// EncodeRequest builds the step's request from the values its layout names (tester side).
func (s *Step) EncodeRequest(v Values) ([]byte, error) {
	out, err := s.Request.encode(s.requestHeader(), v, encodeAll)
	if err != nil {
		return nil, fmt.Errorf("profile: encode %s request: %w", s.Service, err)
	}
	return out, nil
}

// DecodeRequest reads a request to this step (server side): header, layout, constants, length
// fields and CRCs checked.
func (s *Step) DecodeRequest(req []byte) (Values, error) {
	v, err := s.Request.decode(req, s.requestHeader(), nil)
	if err != nil {
		return nil, fmt.Errorf("profile: decode %s request: %w", s.Service, err)
	}
	return v, nil
}

// MatchesRequest reports whether req carries this step's request header.
func (s *Step) MatchesRequest(req []byte) bool { return bytes.HasPrefix(req, s.requestHeader()) }

// EncodeResponse builds the step's answer from values (server side). With a non-zero ERC the
// answer is the NRC errors.nrc gives it; else, when the layout has an ERC field, the answer ends
// right after it (or keeps its length with zero data under errors.on_error: zero-fill); else it
// is errors.other_nrc.
func (s *Step) EncodeResponse(v Values) ([]byte, error) {
	erc, _ := v.ERC()
	if erc != 0 {
		if nrc, ok := s.errs.NRC[erc]; ok {
			return uds.Negative(s.SID(), uds.NRC(nrc)), nil
		}
		if !s.Response.has("ERC") {
			if s.errs.OtherNRC == 0 {
				return nil, fmt.Errorf("profile: encode %s answer: %v has no way back in this step", s.Service, erc)
			}
			return uds.Negative(s.SID(), uds.NRC(s.errs.OtherNRC)), nil
		}
	}
	if s.Service == RequestDownload {
		return s.responseHeader(), nil
	}
	mode := encodeAll
	if erc != 0 {
		mode = encodeUpToERC
		if s.errs.ZeroFill {
			mode = encodeZeroFill
		}
	}
	out, err := s.Response.encode(s.responseHeader(), v, mode)
	if err != nil {
		return nil, fmt.Errorf("profile: encode %s answer: %w", s.Service, err)
	}
	return out, nil
}

// DecodeResponse reads the answer to this step (tester side). A negative answer whose NRC
// errors.nrc maps to an ERC comes back as that ERC, one that is errors.other_nrc as
// ERC_GENERAL_ERROR; any other negative answer is a *uds.NegativeResponseError. An answer whose
// ERC is not zero holds only the ERC.
func (s *Step) DecodeResponse(resp []byte) (Values, error) {
	if rsid, nrc, ok := uds.ParseNegative(resp); ok && rsid == s.SID() {
		for erc, n := range s.errs.NRC {
			if n == byte(nrc) {
				return Values{"ERC": {byte(erc)}}, nil
			}
		}
		if s.errs.OtherNRC != 0 && byte(nrc) == s.errs.OtherNRC {
			return Values{"ERC": {byte(generalError)}}, nil
		}
		return nil, &uds.NegativeResponseError{SID: rsid, NRC: nrc}
	}
	var v Values
	var err error
	if s.Service == RequestDownload {
		err = s.decodeDownloadAnswer(resp)
		v = Values{}
	} else {
		v, err = s.Response.decode(resp, s.responseHeader(), s.errs)
	}
	if err != nil {
		return nil, fmt.Errorf("profile: decode %s answer: %w", s.Service, err)
	}
	return v, nil
}

const generalError ERC = 0x0C

// decodeDownloadAnswer checks RequestDownload's answer: 74, lengthFormatIdentifier, and a
// maxNumberOfBlockLength that fits the record in one TransferData.
func (s *Step) decodeDownloadAnswer(resp []byte) error {
	if len(resp) < 3 || resp[0] != sidRequestDownload+0x40 {
		return fmt.Errorf("% X: %w: want 74 LFID maxNumberOfBlockLength", resp, ErrContent)
	}
	n := int(resp[1] >> 4)
	if n == 0 || n > 8 || len(resp) != 2+n {
		return fmt.Errorf("% X: %w: lengthFormatIdentifier %#02x", resp, ErrLength, resp[1])
	}
	var max uint64
	for _, b := range resp[2:] {
		max = max<<8 | uint64(b)
	}
	if max < uint64(s.MemorySize)+2 {
		return fmt.Errorf("%w: blocks of %d bytes cannot carry the %d-byte record in one TransferData", ErrContent, max, s.MemorySize)
	}
	return nil
}

func (l Layout) has(field string) bool {
	for _, it := range l {
		if it.Kind == FieldItem && it.Field == field {
			return true
		}
	}
	return false
}

type encodeMode int

const (
	encodeAll      encodeMode = iota
	encodeUpToERC             // a SHE error: the answer ends after the ERC
	encodeZeroFill            // a SHE error: data fields other than the ERC are zero
)

func (l Layout) encode(header []byte, v Values, mode encodeMode) ([]byte, error) {
	if mode == encodeUpToERC {
		l = l[:slices.IndexFunc(l, func(it Item) bool { return it.Kind == FieldItem && it.Field == "ERC" })+1]
	}
	vals := map[string][]byte{}
	for _, it := range l {
		if it.Kind != FieldItem {
			continue
		}
		size := it.size()
		if mode == encodeZeroFill && it.Field != "ERC" {
			vals[it.Field] = make([]byte, size)
			continue
		}
		b, ok := v[it.Field]
		if !ok {
			return nil, fmt.Errorf("%s: %w", it.Field, ErrMissing)
		}
		if len(b) != size {
			return nil, fmt.Errorf("%s: %d bytes, want %d: %w", it.Field, len(b), size, ErrLength)
		}
		vals[it.Field] = b
	}
	out := bytes.Clone(header)
	for _, it := range l {
		out = append(out, it.bytes(vals)...)
	}
	return out, nil
}

// bytes is the item's encoding, given every field's value.
func (it Item) bytes(vals map[string][]byte) []byte {
	switch it.Kind {
	case FieldItem:
		return vals[it.Field]
	case ConstItem:
		return it.Const
	case LengthItem:
		return appendUint(nil, it.count, it.Size)
	}
	var over [][]byte
	for _, f := range it.Over {
		over = append(over, vals[f])
	}
	return binary.BigEndian.AppendUint16(nil, CRC16(over...))
}

// decode reads msg: header, then the layout. errs, on the tester side, says how an answer with a
// SHE error is shaped.
func (l Layout) decode(msg, header []byte, errs *Errors) (Values, error) {
	if !bytes.HasPrefix(msg, header) {
		return nil, fmt.Errorf("starts % X, want % X: %w", msg[:min(len(msg), len(header))], header, ErrContent)
	}
	b := msg[len(header):]
	v, vals := Values{}, map[string][]byte{}
	pos := 0
	for _, it := range l {
		n := it.size()
		if pos+n > len(b) {
			return nil, fmt.Errorf("%d bytes after the header, want %d: %w", len(b), l.Size(), ErrLength)
		}
		chunk := b[pos : pos+n]
		pos += n
		switch it.Kind {
		case FieldItem:
			vals[it.Field] = chunk
			v[it.Field] = bytes.Clone(chunk)
			if it.Field == "ERC" && errs != nil && chunk[0] != 0 {
				return ercAnswer(chunk[0], len(b)-pos, errs.ZeroFill, l.Size()-pos)
			}
		case ConstItem:
			if !bytes.Equal(chunk, it.Const) {
				return nil, fmt.Errorf("% X where the layout has % X: %w", chunk, it.Const, ErrContent)
			}
		}
	}
	if pos != len(b) {
		return nil, fmt.Errorf("%d bytes after the header, want %d: %w", len(b), l.Size(), ErrLength)
	}
	return v, l.check(b, vals)
}

// ercAnswer is the values of an answer with a non-zero ERC: nothing may follow it, or, zero-filled,
// exactly the rest of the layout.
func ercAnswer(erc byte, rest int, zeroFill bool, layoutRest int) (Values, error) {
	switch {
	case !zeroFill && rest != 0:
		return nil, fmt.Errorf("%d bytes after ERC %v, want none: %w", rest, ERC(erc), ErrLength)
	case zeroFill && rest != layoutRest:
		return nil, fmt.Errorf("%d bytes after ERC %v, want %d: %w", rest, ERC(erc), layoutRest, ErrLength)
	}
	return Values{"ERC": {erc}}, nil
}

// check verifies the length fields and CRCs of a decoded layout.
func (l Layout) check(b []byte, vals map[string][]byte) error {
	pos := 0
	for _, it := range l {
		n := it.size()
		chunk := b[pos : pos+n]
		pos += n
		if it.Kind != LengthItem && it.Kind != CRCItem {
			continue
		}
		if want := it.bytes(vals); !bytes.Equal(chunk, want) {
			return fmt.Errorf("%s over %v is % X, want % X: %w", it.kindName(), it.Over, chunk, want, ErrContent)
		}
	}
	return nil
}

// StepFor returns the operation and step whose request header req carries (server side); steps
// that several operations share are found under the first in OpNames order. TransferData and
// RequestTransferExit belong to the download in progress, which the server keeps track of: for
// them StepFor returns the first operation that has such a step.
func (p *Profile) StepFor(req []byte) (*Operation, *Step, bool) {
	for _, name := range OpNames {
		op := p.Operations[name]
		if op == nil {
			continue
		}
		for _, st := range op.Steps {
			if st.MatchesRequest(req) {
				return op, st, true
			}
		}
	}
	return nil, nil, false
}
