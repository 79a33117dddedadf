// Command loadtest measures the reference KMS under load: N concurrent clients POST
// supplierKeyProvisioning for distinct ECUs of the demo registry, bounded in requests and time,
// on loopback only. Without -url it starts an in-process reference server on a fresh data
// directory (SQLite, synchronous=FULL) and serves it over a loopback listener.
//
//	go run ./server/loadtest [-clients 64] [-requests 50000] [-duration 30s] [-db postgres://…] [-url http://127.0.0.1:8080]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
)

func main() {
	clients := flag.Int("clients", 64, "concurrent clients")
	requests := flag.Int("requests", 50000, "requests in all (upper bound)")
	duration := flag.Duration("duration", 30*time.Second, "time limit")
	target := flag.String("url", "", "server to load (loopback only); default: an in-process reference server")
	db := flag.String("db", "", "database of the in-process server: empty for SQLite, or a postgres:// URL")
	flag.Parse()
	if err := run(*clients, *requests, *duration, *target, *db, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

// run loads target (or an in-process server) and prints one line of results.
func run(clients, requests int, duration time.Duration, target, db string, out io.Writer) error {
	if target == "" {
		dir, err := os.MkdirTemp("", "kms-load-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		ref, err := reference.New(context.Background(), reference.Config{DataDir: dir, DB: db, CLMKeys: "ecdsa"})
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
		target = "http://" + ln.Addr().String()
	}
	u, err := url.Parse(target)
	if err != nil {
		return err
	}
	if h := u.Hostname(); h != "localhost" && !net.ParseIP(h).IsLoopback() {
		return errors.New("-url must be a loopback address")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var next, failures atomic.Int64
	latencies := make([][]time.Duration, clients)
	deadline := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := next.Add(1)
				if i > int64(requests) {
					return
				}
				// A distinct ECU of EcuType 0003, supplier 0001, for each request.
				ecuID := fmt.Sprintf("0102030405060708010203040003000100000000000%011x", i)
				body, _ := json.Marshal(map[string]string{"ProvisioningType": "EcuMasterKey", "KeyID": "1", "EcuID": ecuID})
				t0 := time.Now()
				resp, err := client.Post(target+kms.PathProvisioning, "application/json", bytes.NewReader(body))
				if err != nil {
					failures.Add(1)
					continue
				}
				var env kms.Envelope
				derr := json.NewDecoder(resp.Body).Decode(&env)
				resp.Body.Close()
				if derr != nil || resp.StatusCode != 200 || env.ResultStatus != "Success" {
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
		return fmt.Errorf("no request succeeded (%d failures)", failures.Load())
	}
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(p*float64(len(all))))] }
	fmt.Fprintf(out, "clients %d, requests %d ok, %d failed, %.2fs: %.0f req/s; latency p50 %v, p99 %v, max %v\n",
		clients, len(all), failures.Load(), elapsed.Seconds(), float64(len(all))/elapsed.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), all[len(all)-1].Round(10*time.Microsecond))
	if failures.Load() > 0 {
		return fmt.Errorf("%d requests failed", failures.Load())
	}
	return nil
}
