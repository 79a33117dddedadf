//go:build !linux

package isotp

import (
	"context"
	"errors"
)

// ErrKernelNotSupported is returned by DialKernel where there is no Linux CAN_ISOTP socket.
var ErrKernelNotSupported = errors.New("isotp: the kernel ISO-TP socket needs Linux")

// KernelConn is an ISO-TP transport through the Linux kernel's CAN_ISOTP socket.
type KernelConn struct{}

// DialKernel is only supported on Linux.
func DialKernel(iface string, txID, rxID uint32, opts ...Option) (*KernelConn, error) {
	return nil, ErrKernelNotSupported
}

// Send is only supported on Linux.
func (*KernelConn) Send(context.Context, []byte) error { return ErrKernelNotSupported }

// Receive is only supported on Linux.
func (*KernelConn) Receive(context.Context) ([]byte, error) { return nil, ErrKernelNotSupported }

// Close is only supported on Linux.
func (*KernelConn) Close() error { return nil }
