// Command floor is the floor of the load command's server CPU per request: a net/http server
// that does no work. It answers every POST with the bytes of a supplierKeyProvisioning answer
// (an EcuMasterKey's M1–M5 envelope, 352 bytes) after reading the request's body, and reports
// its process CPU at /metrics as the reference server does (process_cpu_seconds_total). What the
// load command measures against it is what HTTP/1.1 on loopback costs the server on this
// machine; the reference server's figure less this one is the cost of its work, which here
// includes what its HTTP server adds to net/http's defaults (timeouts, connection tracking, the
// request deadline, the request log, its metrics).
//
//	go run ./server/loadtest/floor -listen 127.0.0.1:18090 &
//	go run ./server/loadtest -url http://127.0.0.1:18090 -clients 64 -requests 30000
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// answer is a supplierKeyProvisioning answer of the reference server, byte for byte.
const answer = `{"ResultStatus":"Success","ResultReason":"","ResultMessage":"","Records":{"KeyID":"1",` +
	`"M1":"00030001000000000000000000000111","M2":"83a6957a7c21c35c9bf9083c09c728faf7a2118f6d20906e3ab51d108523bb79",` +
	`"M3":"4cd55d17c71e7a7654cc56fb0e2e43dd","M4":"0003000100000000000000000000011199a9f35b16a25ac14e5eefa6a0a92a71",` +
	`"M5":"7fb029c2d9388a79b2ebb9f4bb3b92a2"}}` + "\n"

func main() {
	listen := flag.String("listen", "127.0.0.1:18090", "loopback address to listen on")
	flag.Parse()
	if err := serve(*listen); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func serve(addr string) error {
	if err := loopbackOnly(addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Printf("floor: listening on http://%s", ln.Addr())
	return http.Serve(ln, handler())
}

// loopbackOnly refuses an address that is not a loopback IP and port (a name such as localhost
// is refused too: what it resolves to is not this command's to check).
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s: a loopback IP address only (127.0.0.1, ::1; not a name)", addr)
	}
	return nil
}

// handler answers every POST with answer and GET /metrics with the process's CPU.
func handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer)
	})
	return mux
}
