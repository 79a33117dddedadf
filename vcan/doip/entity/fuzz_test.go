package entity

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shekit/shekit/vcan/doip"
)

// stoppedClock never fires: the fuzz target exercises parsing, not timers.
type stoppedClock struct{}

func (stoppedClock) Now() time.Time { return time.Time{} }

func (stoppedClock) AfterFunc(time.Duration, func()) func() bool { return func() bool { return true } }

// FuzzEntityInput feeds arbitrary bytes to a TCP socket of the entity and to its UDP side: it
// never panics, and everything it sends back is a well-formed DoIP message.
func FuzzEntityInput(f *testing.F) {
	for _, seed := range []string{
		"02fd0005000000070e000000000000" + "02fd8001000000060e0010013e00",
		"02fd0005000000070e000000000000" + "02fd8001000000060e0e0110013e00",
		"02fc000100000000", "ff00000100000000", "02fd999900000003010203",
		"02fd00050000000b0e00e000000000deadbeef", "02fd8001ffffffff0e00",
		"02fd400100000000" + "02fd400300000000" + "02fd000800000002" + "0e00",
	} {
		b, _ := hexDecode(seed)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		e := New(Config{MaxDataSize: 256, MemoryBudget: 512, Clock: stoppedClock{},
			CentralSecurity: func(uint16, []byte) doip.ActivationCode { return doip.ActivationMissingAuthentication }})
		e.Register(0x1001, Handler(func(req []byte, pending func()) []byte { pending(); return req }))
		if m, ok := e.answerUDP(in); ok {
			if _, _, err := doip.Parse(doip.Append(nil, m)); err != nil {
				t.Fatalf("UDP answer %#v does not parse: %v", m, err)
			}
		}
		server, client := net.Pipe()
		c := e.admit(context.Background(), server)
		served := make(chan struct{})
		go func() { c.serve(); close(served) }()
		out := make(chan error, 1)
		go func() { out <- readAll(client) }()
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(in) // the entity may close the socket before it has read everything
		client.Close()
		<-served
		if err := <-out; err != nil {
			t.Fatal(err)
		}
	})
}

// readAll reads messages until the socket ends and reports the first that is not well formed.
func readAll(r io.Reader) error {
	for {
		_, err := doip.ReadMessage(r, 1<<20)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrClosedPipe), errors.Is(err, io.ErrUnexpectedEOF):
			return nil // the end, possibly in a message the closing socket cut short
		default:
			return err
		}
	}
}

func hexDecode(s string) ([]byte, error) {
	var b bytes.Buffer
	for i := 0; i+1 < len(s); i += 2 {
		var v byte
		for _, ch := range s[i : i+2] {
			v <<= 4
			switch {
			case ch >= '0' && ch <= '9':
				v |= byte(ch - '0')
			case ch >= 'a' && ch <= 'f':
				v |= byte(ch - 'a' + 10)
			}
		}
		b.WriteByte(v)
	}
	return b.Bytes(), nil
}
