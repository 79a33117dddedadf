package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/doip"
	"github.com/shekit/shekit/vcan/doip/tester"
	"github.com/shekit/shekit/vcan/uds"
)

// lockedBuffer is an output a command writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var doipLine = regexp.MustCompile(`DoIP entity (0x[0-9a-f]+) on (\S+) \(TCP and UDP\)`)

// startDoIPCommand runs the command until the test ends and returns the entity's address once
// it is printed.
func startDoIPCommand(t *testing.T, args ...string) (entityAddr, hostPort string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan int)
	go func() { done <- run(ctx, args, &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := doipLine.FindStringSubmatch(stdout.String()); m != nil {
			return m[1], m[2]
		}
		select {
		case code := <-done:
			t.Fatalf("exit %d before the entity started: %s%s", code, stdout.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no entity: %s%s", stdout.String(), stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestFleetOverDoIP: `fleet --doip` is a gateway at 0x1000 that vehicle identification finds;
// each of three ECUs behind it, at 0x1001-0x1003, is unlocked, gives its UID and stores a key
// whose M4/M5 prove it; an unknown address gets NACK 0x03.
func TestFleetOverDoIP(t *testing.T) {
	const base = "0001001d0000000000000000000000"
	entityAddr, addr := startDoIPCommand(t, "fleet", "--can", "mem", "--count", "3", "--uid", base, "--doip", "127.0.0.1:0")
	if entityAddr != "0x1000" {
		t.Fatalf("gateway at %s", entityAddr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	found, err := tester.Identify(ctx, addr, nil, 20*time.Second, 1)
	if err != nil || len(found) != 1 || found[0].Announcement.LogicalAddress != 0x1000 {
		t.Fatalf("vehicle identification: %+v, %v", found, err)
	}
	conn, err := tester.Dial(ctx, addr, tester.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	baseUID, _ := she.ParseUID(base)
	for i := range 3 {
		client := ecu.NewClient(conn.Transport(0x1001+uint16(i)), uds.WithTiming(uds.DefaultP2, uds.DefaultP2Star, 5*time.Second))
		if err := client.Prepare(ctx, &ecu.DefaultSecurityKey); err != nil {
			t.Fatalf("ECU %d: Prepare: %v", i, err)
		}
		uid, err := client.UID(ctx)
		if err != nil || uid != ecu.FleetUID(baseUID, i) {
			t.Fatalf("ECU %d: UID %v, %v", i, uid, err)
		}
		newKey := [16]byte{0x4B, byte(i)}
		m, err := she.BuildMessages(she.KeyUpdate{UID: uid, KeyID: she.Key1, AuthID: she.MasterECUKey, NewKey: newKey, Counter: 1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := client.LoadKey(ctx, m.M1, m.M2, m.M3)
		if err != nil || res.ERC != she.NoError || res.M4 != m.M4 || res.M5 != m.M5 {
			t.Fatalf("ECU %d: LoadKey %+v, %v", i, res, err)
		}
	}
	var ne *tester.NACKError
	if err := conn.Transport(0x2000).Send(ctx, []byte{0x3E, 0x00}); !errors.As(err, &ne) || ne.Code != doip.DiagnosticUnknownTarget {
		t.Fatalf("unknown target: %v", err)
	}
}

// TestECUOverDoIP: `ecu --doip` is an entity at its own logical address.
func TestECUOverDoIP(t *testing.T) {
	entityAddr, addr := startDoIPCommand(t, "ecu", "--can", "mem", "--doip", "127.0.0.1:0", "--logical-address", "0x1234")
	if entityAddr != "0x1234" {
		t.Fatalf("entity at %s", entityAddr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := tester.Dial(ctx, addr, tester.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if conn.EntityAddress() != 0x1234 {
		t.Fatalf("routing activation names %#04x", conn.EntityAddress())
	}
	client := uds.NewClient(conn.Transport(0x1234), uds.WithTiming(uds.DefaultP2, uds.DefaultP2Star, 5*time.Second))
	if err := client.StartSession(ctx, uds.ExtendedSession); err != nil {
		t.Fatal(err)
	}
}

func TestDoIPFlagsBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ecu", "--can", "mem", "--doip", "127.0.0.1:0", "--logical-address", "0x10000"}, 2, "--logical-address"},
		{[]string{"ecu", "--can", "mem", "--doip", "not an address"}, 1, "--doip"},
		{[]string{"fleet", "--can", "mem", "--doip", "127.0.0.1:0", "--announce", "no:port:here"}, 1, "--announce"},
	} {
		out, errOut, code := runFor(t, 5*time.Second, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit %d mentioning %s", tc.args, code, errOut, out, tc.code, tc.want)
		}
	}
}
