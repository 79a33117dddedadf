package reference

import (
	"bytes"
	"context"

	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shekit/shekit/server/internal/proccpu"
	"github.com/shekit/shekit/server/kms"
)

// benchServer is a reference server as the server command assembles it by default: SQLite in a
// fresh data directory, a 5 s request deadline, the JSON request log at level info (written to
// nowhere, but built).
func benchServer(b *testing.B) *Server {
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := New(context.Background(), Config{DataDir: b.TempDir(), CLMKeys: "ecdsa", CLMPool: -1, RequestTimeout: 5 * time.Second, Log: log})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// provisionBody is a supplierKeyProvisioning body for EcuMasterKey of the ECU numbered i, as the
// load command sends it.
func provisionBody(dst []byte, i int64) []byte {
	dst = append(dst[:0], `{"EcuID":"0102030405060708010203040003000100000000000`...)
	n := strconv.AppendInt(nil, i, 16)
	for range 11 - len(n) {
		dst = append(dst, '0')
	}
	dst = append(dst, n...)
	return append(dst, `","KeyID":"1","ProvisioningType":"EcuMasterKey"}`...)
}

// loadClients is how many clients the load command runs by default.
const loadClients = 64

// reportServerCPU runs the benchmark's loop on loadClients goroutines (rounded to a multiple of
// the CPUs; the store commits what they send together, as under load) and reports the process's
// CPU per operation.
func reportServerCPU(b *testing.B, parallel func(pb *testing.PB)) {
	b.SetParallelism(max(1, loadClients/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	start := proccpu.Used(b)
	b.ResetTimer()
	b.RunParallel(parallel)
	b.StopTimer()
	b.ReportMetric(proccpu.PerOp(b, proccpu.Used(b)-start), "cpu-µs/op")
}

// answerSink is a ResponseWriter that keeps the status and counts the body.
type answerSink struct {
	header http.Header
	status int
	n      int
}

func (a *answerSink) Header() http.Header { return a.header }
func (a *answerSink) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
}
func (a *answerSink) Write(p []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	a.n += len(p)
	return len(p), nil
}

// BenchmarkKMSProvision measures one supplierKeyProvisioning POST (EcuMasterKey, a new ECU each
// time) through the server's whole handler (the deadline, the mux, the KMS, SQLite's writer with
// synchronous=FULL): "handler" calls the handler directly (allocs/op and cpu-µs/op are then the
// server path's own, net/http's connection work aside); "loopback" sends the requests over
// keep-alive loopback connections (cpu-µs/op then counts the client too). The figure the issue's
// bar is about is the server process's CPU per request: the load command measures it (see
// BENCHMARKS.md).
func BenchmarkKMSProvision(b *testing.B) {
	var ecu atomic.Int64
	b.Run("handler", func(b *testing.B) {
		h := benchServer(b).Handler()
		reportServerCPU(b, func(pb *testing.PB) {
			var body []byte
			rd := bytes.NewReader(nil)
			r, _ := http.NewRequest("POST", kms.PathProvisioning, nil)
			r.Header.Set("Content-Type", "application/json")
			w := &answerSink{header: http.Header{}}
			for pb.Next() {
				body = provisionBody(body, ecu.Add(1))
				rd.Reset(body)
				r.Body, r.ContentLength = io.NopCloser(rd), int64(len(body))
				clear(w.header)
				w.status, w.n = 0, 0
				h.ServeHTTP(w, r)
				if w.status != http.StatusOK || w.n < 100 {
					b.Errorf("answer: %d, %d bytes", w.status, w.n)
				}
			}
		})
	})
	b.Run("loopback", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := &http.Server{Handler: benchServer(b).Handler()}
		go srv.Serve(ln)
		b.Cleanup(func() { srv.Close() })
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		url := "http://" + ln.Addr().String() + kms.PathProvisioning
		reportServerCPU(b, func(pb *testing.PB) {
			var body []byte
			buf := make([]byte, 4096)
			for pb.Next() {
				body = provisionBody(body, ecu.Add(1))
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				n, _ := io.ReadFull(resp.Body, buf)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || n < 100 {
					b.Errorf("answer: %d %s", resp.StatusCode, buf[:n])
				}
			}
		})
	})
}
