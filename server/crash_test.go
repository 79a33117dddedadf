package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/store"
	"github.com/shekit/shekit/simulator/she"
)

// serveEnv makes the test binary run the server (with these arguments) instead of the tests, so
// that a test can start, and kill, the server as a process of its own.
const serveEnv = "SHEKIT_TEST_SERVE_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(serveEnv); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		os.Exit(run(ctx, strings.Fields(args), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// startServer runs the server on dir (with extra arguments) as a child process and returns it
// with its URL.
func startServer(t *testing.T, dir string, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd, out, stderr := launchServer(t, dir, extra...)
	return cmd, serverURL(t, cmd, out, stderr)
}

// launchServer starts the server on dir (with extra arguments) as a child process, without
// waiting for it to listen: its standard output and error are returned for serverURL.
func launchServer(t *testing.T, dir string, extra ...string) (*exec.Cmd, io.Reader, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"=-listen 127.0.0.1:0 -data "+dir+" "+strings.Join(extra, " "))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out, stderr
}

// serverURL waits for a launched server's "listening on" line and returns its URL; a server
// that exits first fails the test with what it said.
func serverURL(t *testing.T, cmd *exec.Cmd, out io.Reader, stderr *bytes.Buffer) string {
	t.Helper()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		t.Fatalf("server did not start: %v\n%s", err, stderr.String())
	}
	return strings.Fields(strings.TrimPrefix(line, "listening on "))[0]
}

// answered is one counter a client received.
type answered struct {
	uid     she.UID
	counter uint32
}

// hammer POSTs master key requests for ECUs until the server dies, and returns the counters the
// answers carried (opened with the all-zero initial master key: nothing is ever reported injected).
func hammer(t *testing.T, url string, ecuIDs []string, progress *atomic.Int64) []answered {
	return hammerFor(t, url, ecuIDs, time.Time{}, progress)
}

// hammerFor is hammer, stopping at deadline when it is not zero, counting the answers in progress
// when it is not nil. Its exchanges are checked against the contract (an answer cut off by a kill
// is a transport error, not a violation).
func hammerFor(t *testing.T, url string, ecuIDs []string, deadline time.Time, progress *atomic.Int64) []answered {
	var mu sync.Mutex
	var got []answered
	var wg sync.WaitGroup
	client, _ := validatingClient(t)
	client.Timeout = 2 * time.Second
	for c := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; deadline.IsZero() || time.Now().Before(deadline); i++ {
				ecuID := ecuIDs[(c+i)%len(ecuIDs)]
				body := fmt.Sprintf(`{"ProvisioningType":"EcuMasterKey","KeyID":"1","EcuID":%q}`, ecuID)
				resp, err := client.Post(url+kms.PathProvisioning, "application/json", strings.NewReader(body))
				if err != nil {
					return // the server is gone
				}
				var env kms.Envelope
				err = json.NewDecoder(resp.Body).Decode(&env)
				resp.Body.Close()
				if err != nil || env.Records == nil {
					continue // cut off mid-answer: not an answer
				}
				h := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
				o := she.OpenM1M3([16]byte{}, [16]byte(h(env.Records.M1)), [32]byte(h(env.Records.M2)), [16]byte(h(env.Records.M3)))
				mu.Lock()
				got = append(got, answered{o.UID, o.Counter})
				mu.Unlock()
				if progress != nil {
					progress.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return got
}

// TestCrashDuringLoad kills the server (SIGKILL) during load, restarts it on the same data, four
// times. No counter may have been answered twice, the audit log must show strictly increasing
// counters for every slot, and every answered counter must be in it (it was committed before it
// was answered).
func TestCrashDuringLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills servers: not in -short")
	}
	dir := t.TempDir()
	var ecuIDs []string
	for i := range 8 {
		ecuIDs = append(ecuIDs, fmt.Sprintf("0102030405060708"+"01020304"+"00030001000000000000000000%04x", i))
	}
	var all []answered
	for round := range 4 {
		cmd, url := startServer(t, dir)
		done := make(chan []answered)
		var progress atomic.Int64
		go func() { done <- hammer(t, url, ecuIDs, &progress) }()
		// Kill once the load is under way, however slow the machine: after some answers and a
		// random pause, so that the kill lands at a random point of a commit.
		if !waitFor(func() bool { return progress.Load() >= 20 }, time.Minute) {
			cmd.Process.Kill()
			t.Fatalf("round %d: fewer than 20 answers in a minute", round)
		}
		time.Sleep(time.Duration(rand.IntN(250)) * time.Millisecond)
		cmd.Process.Kill() // SIGKILL: no shutdown, no flush
		cmd.Wait()
		got := <-done
		if len(got) == 0 {
			t.Fatalf("round %d: no answers before the kill", round)
		}
		all = append(all, got...)
	}
	seen := map[answered]bool{}
	for _, a := range all {
		if seen[a] {
			t.Fatalf("counter %d of %v answered twice", a.counter, a.uid)
		}
		seen[a] = true
	}
	st, err := store.OpenSQLite(filepath.Join(dir, "kms.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, err := st.Audit(context.Background(), 0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	logged := map[answered]bool{}
	for _, e := range entries {
		if e.Action != "issue:EcuMasterKey" {
			continue
		}
		if *e.Counter <= last[e.UID] {
			t.Fatalf("audit: counter %d of %s after %d", *e.Counter, e.UID, last[e.UID])
		}
		last[e.UID] = *e.Counter
		uid, _ := she.ParseUID(e.UID)
		logged[answered{uid, uint32(*e.Counter)}] = true
	}
	for a := range seen {
		if !logged[a] {
			t.Fatalf("counter %d of %v was answered but is not in the store after the crash", a.counter, a.uid)
		}
	}
	t.Logf("%d counters answered over 4 crashes, %d issues committed", len(seen), len(logged))
}

// TestTwoServersOnePostgres: two server processes share one PostgreSQL (and one key-encryption
// key); under load on both, no counter is handed out twice.
func TestTwoServersOnePostgres(t *testing.T) {
	url := os.Getenv("SHEKIT_TEST_POSTGRES")
	if url == "" {
		t.Skip("SHEKIT_TEST_POSTGRES is not set (.ci/run starts a PostgreSQL and sets it)")
	}
	db := freshPostgresDatabase(t, url)
	dir := t.TempDir()
	a, urlA := startServer(t, dir, "-db", db)
	b, urlB := startServer(t, dir, "-db", db)
	defer func() { a.Process.Kill(); b.Process.Kill(); a.Wait(); b.Wait() }()
	var ecuIDs []string
	for i := range 4 {
		ecuIDs = append(ecuIDs, fmt.Sprintf("0102030405060708"+"01020304"+"00030001000000000000000000%04x", i))
	}
	// Rounds of a second on both servers at once until 100 counters are in: a slow machine takes
	// more rounds, not a failure; two minutes without 100 answers is one.
	var all []answered
	for end := time.Now().Add(2 * time.Minute); len(all) < 100; {
		if time.Now().After(end) {
			t.Fatalf("only %d answers in two minutes", len(all))
		}
		deadline := time.Now().Add(time.Second)
		results := make(chan []answered, 2)
		for _, u := range []string{urlA, urlB} {
			go func() { results <- hammerFor(t, u, ecuIDs, deadline, nil) }()
		}
		all = append(all, <-results...)
		all = append(all, <-results...)
	}
	seen := map[answered]bool{}
	for _, x := range all {
		if seen[x] {
			t.Fatalf("counter %d of %v handed out twice", x.counter, x.uid)
		}
		seen[x] = true
	}
	t.Logf("%d distinct counters from two servers", len(all))
}

// waitFor polls cond every 10 ms until it holds (true) or limit has passed (false).
func waitFor(cond func() bool, limit time.Duration) bool {
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
