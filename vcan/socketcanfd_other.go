//go:build !linux

package vcan

import (
	"context"
	"errors"

	"go.einride.tech/can"
)

// ErrNoSocketCAN is returned by DialSocketCANFD where there is no SocketCAN.
var ErrNoSocketCAN = errors.New("vcan: SocketCAN needs Linux")

// FDSocketConn is a node on a SocketCAN interface that carries CAN FD frames (Linux only).
type FDSocketConn struct{}

var _ FrameConn = (*FDSocketConn)(nil)

// DialSocketCANFD is only supported on Linux.
func DialSocketCANFD(ctx context.Context, iface string, filters ...Filter) (*FDSocketConn, error) {
	return nil, ErrNoSocketCAN
}

// Send is only supported on Linux.
func (*FDSocketConn) Send(context.Context, can.Frame) error { return ErrNoSocketCAN }

// SendFrame is only supported on Linux.
func (*FDSocketConn) SendFrame(context.Context, Frame) error { return ErrNoSocketCAN }

// Receive is only supported on Linux.
func (*FDSocketConn) Receive(context.Context) (can.Frame, error) { return can.Frame{}, ErrNoSocketCAN }

// ReceiveFrame is only supported on Linux.
func (*FDSocketConn) ReceiveFrame(context.Context) (Frame, error) { return Frame{}, ErrNoSocketCAN }

// Close is only supported on Linux.
func (*FDSocketConn) Close() error { return nil }
