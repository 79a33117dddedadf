package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofServer serves net/http/pprof on a listener of its own, never on the API's.
type pprofServer struct {
	srv *http.Server
	ln  net.Listener
}

// startPprof listens on addr, which must be a loopback address (a profile shows the server's
// memory and the command line), and serves the profiles until close.
func startPprof(addr string, stderr io.Writer) (*pprofServer, error) {
	if !isLoopback(addr) {
		return nil, fmt.Errorf("-pprof %s: want a loopback address (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or trace answers after the seconds it was asked for.
	p := &pprofServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln: ln}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(stderr, "server: pprof: %v\n", err)
		}
	}()
	return p, nil
}

// url is where the profiles are.
func (p *pprofServer) url() string { return "http://" + p.ln.Addr().String() + "/debug/pprof/" }

// close stops serving profiles.
func (p *pprofServer) close() error { return p.srv.Close() }
