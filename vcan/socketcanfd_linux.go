//go:build linux

package vcan

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"go.einride.tech/can"
	"golang.org/x/sys/unix"
)

// Sizes and flags of SocketCAN frames (linux/can.h).
const (
	canMTU       = 16 // sizeof(struct can_frame)
	canFDMTU     = 72 // sizeof(struct canfd_frame): CANFD_MTU
	canEFFFlag   = 0x80000000
	canRTRFlag   = 0x40000000
	canErrFlag   = 0x20000000
	canFDFlagBRS = 0x01 // CANFD_BRS
	canFDFlagESI = 0x02 // CANFD_ESI
)

// FDSocketConn is a node on a SocketCAN interface that carries CAN FD frames as well as classic
// ones: a raw CAN socket with CAN_RAW_FD_FRAMES. It implements FrameConn. The interface must
// have the CAN FD MTU (72) for CAN FD frames to be sent (vcan/setup-vcan.sh sets it).
type FDSocketConn struct {
	f       *os.File
	filters []Filter
	frames  chan Frame
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	err     error // why the reader stopped
}

var _ FrameConn = (*FDSocketConn)(nil)

// DialSocketCANFD opens a raw CAN socket with CAN FD frames enabled on iface that receives the
// frames matching any of filters (all frames when there are none). It needs Linux with CAN.
func DialSocketCANFD(ctx context.Context, iface string, filters ...Filter) (*FDSocketConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("vcan: dial CAN FD %s: %w", iface, err)
	}
	fd, err := unix.Socket(unix.AF_CAN, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.CAN_RAW)
	if err != nil {
		return nil, fmt.Errorf("vcan: dial CAN FD %s: raw socket: %w", iface, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_CAN_RAW, unix.CAN_RAW_FD_FRAMES, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vcan: dial CAN FD %s: CAN_RAW_FD_FRAMES: %w", iface, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrCAN{Ifindex: ifi.Index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vcan: dial CAN FD %s: bind: %w", iface, err)
	}
	s := &FDSocketConn{f: os.NewFile(uintptr(fd), "canfd:"+iface), filters: filters,
		frames: make(chan Frame, 1024), done: make(chan struct{})}
	go s.read()
	return s, nil
}

// read moves received frames into s.frames until the socket closes.
func (s *FDSocketConn) read() {
	defer close(s.frames)
	var buf [canFDMTU]byte
	for {
		n, err := s.f.Read(buf[:])
		if err != nil {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			return
		}
		f, ok := decodeSocketFrame(buf[:n])
		if !ok || !matchAny(s.filters, f) {
			continue
		}
		select {
		case s.frames <- f:
		case <-s.done:
			return
		}
	}
}

// decodeSocketFrame reads a struct can_frame (16 bytes) or struct canfd_frame (72 bytes); error
// frames and anything else are refused.
func decodeSocketFrame(b []byte) (Frame, bool) {
	if len(b) != canMTU && len(b) != canFDMTU {
		return Frame{}, false
	}
	id := binary.NativeEndian.Uint32(b[0:4])
	if id&canErrFlag != 0 {
		return Frame{}, false
	}
	f := Frame{Extended: id&canEFFFlag != 0, Length: b[4]}
	if f.Extended {
		f.ID = id & can.MaxExtendedID
	} else {
		f.ID = id & can.MaxID
	}
	if len(b) == canFDMTU {
		f.FD, f.BRS, f.ESI = true, b[5]&canFDFlagBRS != 0, b[5]&canFDFlagESI != 0
	} else {
		f.Remote = id&canRTRFlag != 0
	}
	if int(f.Length) > len(b)-8 {
		return Frame{}, false
	}
	copy(f.Data[:], b[8:8+int(f.Length)])
	return f, f.Validate() == nil
}

// encodeSocketFrame writes f as a struct can_frame or, for CAN FD, a struct canfd_frame.
func encodeSocketFrame(f Frame) []byte {
	size := canMTU
	if f.FD {
		size = canFDMTU
	}
	b := make([]byte, size)
	id := f.ID
	if f.Extended {
		id |= canEFFFlag
	}
	if f.Remote {
		id |= canRTRFlag
	}
	binary.NativeEndian.PutUint32(b[0:4], id)
	b[4] = f.Length
	if f.BRS {
		b[5] |= canFDFlagBRS
	}
	if f.ESI {
		b[5] |= canFDFlagESI
	}
	if !f.Remote {
		copy(b[8:], f.Data[:f.Length])
	}
	return b
}

// Send transmits the classic frame f.
func (s *FDSocketConn) Send(ctx context.Context, f can.Frame) error {
	if err := f.Validate(); err != nil {
		return err
	}
	return s.SendFrame(ctx, FromClassic(f))
}

// SendFrame transmits f, classic or CAN FD; the context's deadline bounds the write.
func (s *FDSocketConn) SendFrame(ctx context.Context, f Frame) error {
	if err := f.Validate(); err != nil {
		return err
	}
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	d, _ := ctx.Deadline()
	if err := s.f.SetWriteDeadline(d); err != nil {
		return fmt.Errorf("vcan: transmit frame: %w", err)
	}
	if _, err := s.f.Write(encodeSocketFrame(f)); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("vcan: transmit frame: %w", err)
	}
	return nil
}

// Receive returns the next classic frame that matches the filters; CAN FD frames are skipped.
func (s *FDSocketConn) Receive(ctx context.Context) (can.Frame, error) {
	for {
		f, err := s.ReceiveFrame(ctx)
		if err != nil {
			return can.Frame{}, err
		}
		if c, ok := f.Classic(); ok {
			return c, nil
		}
	}
}

// ReceiveFrame returns the next frame, classic or CAN FD, that matches the filters.
func (s *FDSocketConn) ReceiveFrame(ctx context.Context) (Frame, error) {
	select {
	case f, ok := <-s.frames:
		if ok {
			return f, nil
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.err != nil && !errors.Is(s.err, os.ErrClosed) {
			return Frame{}, fmt.Errorf("vcan: receive: %w", s.err)
		}
		return Frame{}, ErrClosed
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	case <-s.done:
		return Frame{}, ErrClosed
	}
}

// Close closes the socket; pending and later receives return ErrClosed.
func (s *FDSocketConn) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		err = s.f.Close()
	})
	return err
}
