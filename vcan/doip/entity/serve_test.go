package entity_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan/doip/entity"
)

// failingListener hands out one connection, then fails.
type failingListener struct {
	conn net.Conn
	used bool
}

var errListener = errors.New("listener broke")

func (l *failingListener) Accept() (net.Conn, error) {
	if !l.used {
		l.used = true
		return l.conn, nil
	}
	return nil, errListener
}

func (l *failingListener) Close() error   { return nil }
func (l *failingListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestServeEndsItsSocketsWhenTheListenerFails: Serve returns the listener's error and closes the
// sockets it accepted rather than waiting on them.
func TestServeEndsItsSocketsWhenTheListenerFails(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	e := entity.New(entity.Config{Clock: newFakeClock()})
	done := make(chan error, 1)
	go func() { done <- e.Serve(context.Background(), &failingListener{conn: server}) }()
	select {
	case err := <-done:
		if !errors.Is(err, errListener) {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(patience):
		t.Fatal("Serve still waits on its socket after the listener failed")
	}
	client.SetReadDeadline(time.Now().Add(patience))
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("the socket is still open: %v", err)
	}
}
