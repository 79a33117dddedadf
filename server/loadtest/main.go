// Command loadtest measures the reference server under load, on loopback only: N concurrent
// clients send requests, bounded in number and time. Without -url it starts an in-process
// reference server on a fresh data directory (SQLite with synchronous=FULL, or -db) and serves it
// over a loopback listener.
//
//	go run ./server/loadtest [-api kms|clm-cert|clm-key] [-clients 64] [-requests 50000] [-duration 30s]
//	                         [-db postgres://…] [-clm-key rsa|ecdsa] [-pool 64] [-url http://127.0.0.1:8080]
//
// -api kms: POST supplierKeyProvisioning for distinct ECUs. clm-cert: CredInfo create, a client
// certificate for a new device each time. clm-key: KeyInfo create, an AES key for a new device.
// With -api clm-cert -clm-key rsa it first measures RSA-2048 key generation on every core, then
// waits for the server's key pool to fill, sends a burst the size of the pool, and then the load.
//
// After the load it prints the CPU time per request: with -url the server's own (its /metrics
// process_cpu_seconds_total, 10 ms resolution), in-process that of this whole process, clients
// included.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
)

// options are the command line.
type options struct {
	api, target, db, clmKeys, clmCAKeys string
	clients, requests, pool             int
	duration                            time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.api, "api", "kms", "what to load: kms, clm-cert or clm-key")
	flag.IntVar(&o.clients, "clients", 64, "concurrent clients")
	flag.IntVar(&o.requests, "requests", 50000, "requests in all (upper bound)")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "time limit")
	flag.StringVar(&o.target, "url", "", "server to load (loopback only); default: an in-process reference server")
	flag.StringVar(&o.db, "db", "", "database of the in-process server: empty for SQLite, or a postgres:// URL")
	flag.StringVar(&o.clmKeys, "clm-key", "ecdsa", "CLM client key pairs of the in-process server: rsa or ecdsa")
	flag.StringVar(&o.clmCAKeys, "clm-ca-key", "", "the in-process CLM CA's key pair: rsa or ecdsa (default: -clm-key)")
	flag.IntVar(&o.pool, "pool", 64, "RSA keys the in-process server generates ahead")
	flag.Parse()
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// request makes request i: method, path and body.
type request func(i int64) (string, string, []byte)

func run(o options, out io.Writer) error {
	var ref *reference.Server
	if o.target == "" {
		dir, err := os.MkdirTemp("", "kms-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if o.api == "clm-cert" && o.clmKeys == "rsa" {
			rate := rsaRate(5 * time.Second)
			fmt.Fprintf(out, "RSA-2048 key generation on %d cores: %.1f keys/s\n", runtime.GOMAXPROCS(0), rate)
		}
		ref, err = reference.New(context.Background(), reference.Config{DataDir: dir, DB: o.db, CLMKeys: o.clmKeys, CLMCAKeys: o.clmCAKeys, CLMPool: o.pool})
		if err != nil {
			return err
		}
		defer ref.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: ref.Handler()}
		go srv.Serve(ln)
		defer srv.Close()
		o.target = "http://" + ln.Addr().String()
	}
	u, err := url.Parse(o.target)
	if err != nil {
		return err
	}
	if h := u.Hostname(); h != "localhost" && !net.ParseIP(h).IsLoopback() {
		return errors.New("-url must be a loopback address")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.clients, MaxConnsPerHost: o.clients}, Timeout: 30 * time.Second}
	var req request
	switch o.api {
	case "kms":
		req = func(i int64) (string, string, []byte) {
			ecuID := fmt.Sprintf("0102030405060708010203040003000100000000000%011x", i)
			body, _ := json.Marshal(map[string]string{"ProvisioningType": "EcuMasterKey", "KeyID": "1", "EcuID": ecuID})
			return "POST", kms.PathProvisioning, body
		}
	case "clm-cert", "clm-key":
		auth, err := clmID(client, o.target)
		if err != nil {
			return err
		}
		req = func(i int64) (string, string, []byte) {
			if o.api == "clm-key" {
				return "POST", clm.PathKeyInfo, []byte(fmt.Sprintf(`{"mode":"create",%s,"devicename":"load-%d","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, auth, i))
			}
			return "POST", clm.PathCredInfo, []byte(fmt.Sprintf(`{"mode":"create",%s,"devicename":"load-%d","certmode":"client","catype":"ca1","clientsubject":"/CN=load-%d","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`, auth, i, i))
		}
	default:
		return fmt.Errorf("-api %q: want kms, clm-cert or clm-key", o.api)
	}
	var next atomic.Int64
	if ref != nil && o.api == "clm-cert" && o.clmKeys == "rsa" {
		ref.CLM.WarmUp()
		for ref.CLM.PooledKeys() < o.pool {
			time.Sleep(100 * time.Millisecond)
		}
		burst := o.pool
		r, err := load(client, o.target, req, &next, o.clients, int64(burst), time.Minute)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "burst of %d (the pool): %s\n", burst, r)
		o.requests += burst
	}
	cpu0, cpuErr := cpuSeconds(client, o.target, ref != nil)
	before := next.Load()
	r, err := load(client, o.target, req, &next, o.clients, int64(o.requests), o.duration)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s, clients %d: %s\n", o.api, o.clients, r)
	cpu1, err := cpuSeconds(client, o.target, ref != nil)
	if err = errors.Join(cpuErr, err); err != nil {
		return fmt.Errorf("CPU time: %w", err)
	}
	whose := "server process (its /metrics process_cpu_seconds_total)"
	if ref != nil {
		whose = "this process: in-process server and clients together (getrusage)"
	}
	n := min(next.Load(), before+int64(o.requests)) - before
	fmt.Fprintf(out, "CPU %.1f µs/request: %s\n", (cpu1-cpu0)*1e6/float64(n), whose)
	return nil
}

// cpuSeconds returns the CPU time the server has used: this process's when it serves in-process
// (own), else the server's process_cpu_seconds_total from its /metrics.
func cpuSeconds(client *http.Client, target string, own bool) (float64, error) {
	if own {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0, err
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), nil
	}
	body, status, err := send(client, target, "GET", "/metrics", nil)
	if err != nil || status != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %d %v", status, err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, errors.New("GET /metrics: no process_cpu_seconds_total")
}

// rsaRate measures RSA-2048 key generation on every core for d.
func rsaRate(d time.Duration) float64 {
	var n atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				rsa.GenerateKey(rand.Reader, 2048)
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}

// clmID issues an ID for the load and returns its keyid/key parameters.
func clmID(client *http.Client, target string) (string, error) {
	body, status, err := send(client, target, "POST", clm.PathIDInfo, []byte(`{"mode":"create","tenantid":"load","alias":"load"}`))
	if err != nil || status != http.StatusCreated {
		return "", fmt.Errorf("issue an ID: %v %d %s", err, status, body)
	}
	var id struct{ Keyid, Key string }
	json.Unmarshal(body, &id)
	return fmt.Sprintf(`"keyid":%q,"key":%q`, id.Keyid, id.Key), nil
}

func send(client *http.Client, target, method, path string, body []byte) ([]byte, int, error) {
	hr, _ := http.NewRequest(method, target+path, bytes.NewReader(body))
	hr.Header.Set("Content-Type", "application/json")
	hr.SetBasicAuth(clm.LicenseUser, reference.DemoLicense)
	resp, err := client.Do(hr)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

// ok reports whether an answer is a success of either API.
func ok(status int, body []byte) bool {
	if status >= 300 {
		return false
	}
	var v struct {
		ResultStatus string
		Errorcode    *int
	}
	if json.Unmarshal(body, &v) != nil {
		return false
	}
	return v.ResultStatus == "Success" || (v.Errorcode != nil && *v.Errorcode == 0)
}

// load runs clients until n more requests were sent or d passed, and summarizes.
func load(client *http.Client, target string, req request, next *atomic.Int64, clients int, n int64, d time.Duration) (string, error) {
	limit := next.Load() + n
	latencies := make([][]time.Duration, clients)
	var failures atomic.Int64
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := next.Add(1)
				if i > limit {
					return
				}
				method, path, body := req(i)
				t0 := time.Now()
				b, status, err := send(client, target, method, path, body)
				if err != nil || !ok(status, b) {
					failures.Add(1)
					continue
				}
				latencies[c] = append(latencies[c], time.Since(t0))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(latencies...)
	slices.Sort(all)
	if len(all) == 0 {
		return "", fmt.Errorf("no request succeeded (%d failures)", failures.Load())
	}
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	s := fmt.Sprintf("%d ok, %d failed, %.2fs: %.0f req/s; latency p50 %v, p99 %v, max %v", len(all), failures.Load(),
		elapsed.Seconds(), float64(len(all))/elapsed.Seconds(), pct(0.50).Round(10*time.Microsecond),
		pct(0.99).Round(10*time.Microsecond), all[len(all)-1].Round(10*time.Microsecond))
	if failures.Load() > 0 {
		return s, fmt.Errorf("%s", s)
	}
	return s, nil
}
