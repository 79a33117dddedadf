//go:build linux

package isotp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Socket options of the kernel's CAN_ISOTP protocol (include/uapi/linux/can/isotp.h), defined here
// because golang.org/x/sys does not carry them.
const (
	solCANISOTP     = 106   // SOL_CAN_BASE + CAN_ISOTP
	canISOTPOpts    = 1     // CAN_ISOTP_OPTS: struct can_isotp_options
	canISOTPRecvFC  = 2     // CAN_ISOTP_RECV_FC: struct can_isotp_fc_options
	canISOTPLLOpts  = 5     // CAN_ISOTP_LL_OPTS: struct can_isotp_ll_options
	canFDMTU        = 72    // CANFD_MTU: sizeof(struct canfd_frame)
	canFDBRS        = 0x01  // CANFD_BRS
	canISOTPExtAddr = 0x002 // CAN_ISOTP_EXTEND_ADDR: ext_address leads every frame sent
	canISOTPTxPad   = 0x004
	canISOTPRxPad   = 0x008
	canISOTPRxExt   = 0x200 // CAN_ISOTP_RX_EXT_ADDR: rx_ext_address for frames received
	canISOTPWaitTx  = 0x400 // CAN_ISOTP_WAIT_TX_DONE: write() returns once the PDU is sent
	canEFFFlag      = 0x80000000
	kernelMaxLength = 4095 // the kernel's default buffer without a larger CONFIG_CAN_ISOTP setting
)

// isotpOptions is struct can_isotp_options.
type isotpOptions struct {
	flags        uint32
	frameTxTime  uint32
	extAddress   uint8
	txPadContent uint8
	rxPadContent uint8
	rxExtAddress uint8
}

// fcOptions is struct can_isotp_fc_options.
type fcOptions struct {
	bs, stmin, wftmax uint8
}

// llOptions is struct can_isotp_ll_options: the link layer, CAN (mtu 16) or CAN FD (72).
type llOptions struct {
	mtu, txDL, txFlags uint8
}

// KernelConn is an ISO-TP transport through the Linux kernel's CAN_ISOTP socket.
type KernelConn struct {
	f *os.File
}

var _ Transport = (*KernelConn)(nil)

// DialKernel opens a kernel ISO-TP socket on interface iface that sends with txID and receives
// rxID. It understands the same options as New: padding, 29-bit IDs, the flow control this side
// asks for (block size, STmin), N_WFTmax, an address extension (CAN_ISOTP_EXTEND_ADDR with
// CAN_ISOTP_RX_EXT_ADDR), and CAN FD (WithCANFD: CAN_ISOTP_LL_OPTS with mtu 72,
// tx_dl and the BRS flag; the interface needs the CAN FD MTU, and the kernel's socket then takes
// only CAN FD frames); the kernel applies its own timeouts. Send waits for the end of the
// transmission.
func DialKernel(iface string, txID, rxID uint32, opts ...Option) (*KernelConn, error) {
	cfg := config{pad: true, padByte: defaultPadding, wftMax: defaultWFTmax}
	for _, o := range opts {
		o(&cfg)
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("isotp: %w", err)
	}
	fd, err := unix.Socket(unix.AF_CAN, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.CAN_ISOTP)
	if err != nil {
		return nil, fmt.Errorf("isotp: kernel ISO-TP socket: %w", err)
	}
	fail := func(what string, err error) (*KernelConn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("isotp: %s: %w", what, err)
	}
	o := isotpOptions{flags: canISOTPWaitTx}
	if cfg.pad {
		o.flags |= canISOTPTxPad | canISOTPRxPad
		o.txPadContent, o.rxPadContent = cfg.padByte, cfg.padByte
	}
	if cfg.addrExt {
		o.flags |= canISOTPExtAddr | canISOTPRxExt
		o.extAddress, o.rxExtAddress = cfg.txAE, cfg.rxAE
	}
	if err := setsockopt(fd, canISOTPOpts, unsafe.Pointer(&o), unsafe.Sizeof(o)); err != nil {
		return fail("set options", err)
	}
	fc := fcOptions{bs: cfg.blockSize, stmin: cfg.stmin, wftmax: uint8(min(cfg.wftMax, 255))}
	if err := setsockopt(fd, canISOTPRecvFC, unsafe.Pointer(&fc), unsafe.Sizeof(fc)); err != nil {
		return fail("set flow control options", err)
	}
	if cfg.txDL > 0 {
		ll := llOptions{mtu: canFDMTU, txDL: uint8(cfg.txDL)}
		if cfg.brs {
			ll.txFlags = canFDBRS
		}
		if err := setsockopt(fd, canISOTPLLOpts, unsafe.Pointer(&ll), unsafe.Sizeof(ll)); err != nil {
			return fail("set CAN FD link layer options", err)
		}
	}
	if cfg.extended {
		txID, rxID = txID|canEFFFlag, rxID|canEFFFlag
	}
	if err := unix.Bind(fd, &unix.SockaddrCAN{Ifindex: ifi.Index, TxID: txID, RxID: rxID}); err != nil {
		if cfg.txDL > 0 && errors.Is(err, unix.EINVAL) {
			return fail(fmt.Sprintf("bind (CAN FD needs %s's MTU at 72, vcan/setup-vcan.sh sets it)", iface), err)
		}
		return fail("bind", err)
	}
	return &KernelConn{f: os.NewFile(uintptr(fd), "isotp:"+iface)}, nil
}

func setsockopt(fd int, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, errno := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), solCANISOTP, uintptr(opt), uintptr(p), size, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// deadline maps ctx's deadline onto the file for the duration of one call. stop waits for the
// watcher to end: a cancellation that races with the end of the call may still set a past
// deadline, but never after stop returned, where it would fail the next call at once.
func (k *KernelConn) deadline(ctx context.Context, set func(time.Time) error) (stop func(), err error) {
	d, _ := ctx.Deadline()
	if err := set(d); err != nil {
		return nil, err
	}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-ctx.Done():
			set(time.Unix(1, 0)) // wake the blocked call
		case <-done:
		}
	}()
	return func() { close(done); <-exited }, nil
}

// Send writes one message; the kernel segments it. Send returns once the kernel has put the last
// frame on the bus (CAN_ISOTP_WAIT_TX_DONE), so that a UDS client counts P2 from the end of the
// transmission, and returns the transmission's error (ECOMM: no flow control within N_Bs). While
// the kernel sends, ctx cannot cut the call short: the kernel's N_Bs (1 s) bounds it.
func (k *KernelConn) Send(ctx context.Context, msg []byte) error {
	stop, err := k.deadline(ctx, k.f.SetWriteDeadline)
	if err != nil {
		return err
	}
	defer stop()
	if _, err := k.f.Write(msg); err != nil {
		return k.wrap(ctx, "send", err)
	}
	return nil
}

// Receive reads one message.
func (k *KernelConn) Receive(ctx context.Context) ([]byte, error) {
	stop, err := k.deadline(ctx, k.f.SetReadDeadline)
	if err != nil {
		return nil, err
	}
	defer stop()
	buf := make([]byte, kernelMaxLength+1)
	n, err := k.f.Read(buf)
	switch {
	case errors.Is(err, unix.EILSEQ): // the kernel's receiver saw a wrong sequence number
		return nil, fmt.Errorf("isotp: kernel receive: %w (%w)", ErrSequence, err)
	case errors.Is(err, unix.ETIMEDOUT): // its N_Cr ran out
		return nil, fmt.Errorf("isotp: kernel receive: %w (%w)", ErrTimeoutCr, err)
	case err != nil:
		return nil, k.wrap(ctx, "receive", err)
	}
	return buf[:n], nil
}

func (k *KernelConn) wrap(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return ctx.Err()
	}
	return fmt.Errorf("isotp: kernel %s: %w", op, err)
}

// Close closes the socket.
func (k *KernelConn) Close() error { return k.f.Close() }
