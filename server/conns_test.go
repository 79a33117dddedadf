package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// raiseFileLimit raises the open-file limit to the hard one and returns it.
func raiseFileLimit(t *testing.T) int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	r.Cur = r.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r)
	return int(r.Cur)
}

// closedByServer reports whether the server has closed c (a read sees the end, not a timeout).
func closedByServer(c net.Conn, wait time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 512))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestIdleFloodDoesNotLockOutRequests: 3,000 idle connections (2,500 that never send a byte,
// 500 kept alive after a request) against -max-conns 500, with timeouts long enough that only the
// connection bound acts: requests on new connections are answered in under 2 s (the median of
// ten), and the server
// holds no more than 500 of the flood's connections open.
func TestIdleFloodDoesNotLockOutRequests(t *testing.T) {
	const flood, silent, limit = 3000, 2500, 500
	if files := raiseFileLimit(t); files < flood+limit+256 {
		t.Fatalf("the open-file limit %d is too low for %d connections", files, flood)
	}
	url := serveInProcess(t, "-listen", "127.0.0.1:0", "-data", t.TempDir(), "-max-conns", "500",
		"-read-header-timeout", "10m", "-idle-timeout", "10m", "-read-timeout", "10m", "-write-timeout", "10m")
	addr := strings.TrimPrefix(url, "http://")
	conns := make([]net.Conn, 0, flood)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range flood {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if i < flood-silent { // a keep-alive connection, idle after one request
			io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: kms\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("keep-alive connection %d: %v", i, err)
			}
			resp.Body.Close()
		}
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	var took []time.Duration
	for range 10 {
		start := time.Now()
		resp, err := client.Post(url+"/app/automotive/supplierKeyProvisioning", "application/json",
			strings.NewReader(`{"ProvisioningType":"EcuMasterKey","KeyID":"1","EcuID":"010203040506070801020304000300010000000000000000000002"}`))
		if err != nil {
			t.Fatalf("a request under the flood: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("a request under the flood: %d", resp.StatusCode)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	t.Logf("10 requests under %d idle connections: median %v, slowest %v", flood, took[4], took[9])
	if took[4] >= 2*time.Second { // the median: one request slowed by a loaded machine is no finding
		t.Errorf("requests under the flood took %v (median), want under 2 s", took[4])
	}
	deadline := time.Now().Add(30 * time.Second)
	closed := make([]bool, len(conns))
	for n := 0; ; {
		for i, c := range conns {
			if !closed[i] && closedByServer(c, time.Millisecond) {
				closed[i] = true
				n++
			}
		}
		if n >= flood-limit {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still holds %d of the flood's connections, want at most %d", flood-n, limit)
		}
	}
}

// TestTimeoutsCloseStalledConnections: a connection that sends nothing, one idle after a
// request, and one whose body stalls are closed by the server (here after 1-2 s; the audit saw
// them open after 90 s).
func TestTimeoutsCloseStalledConnections(t *testing.T) {
	url := serveInProcess(t, "-listen", "127.0.0.1:0", "-data", t.TempDir(),
		"-read-header-timeout", "1s", "-read-timeout", "2s", "-idle-timeout", "1s", "-write-timeout", "10s")
	addr := strings.TrimPrefix(url, "http://")
	dial := func(first string) net.Conn {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, first)
		return c
	}
	silent := dial("")
	keptAlive := dial("GET /healthz HTTP/1.1\r\nHost: kms\r\n\r\n")
	stalled := dial("POST /app/automotive/supplierKeyProvisioning HTTP/1.1\r\nHost: kms\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"Provisi")
	for name, c := range map[string]net.Conn{"silent": silent, "kept alive": keptAlive, "stalled body": stalled} {
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, err := io.Copy(io.Discard, c) // until the server closes it
		if err != nil {
			t.Errorf("%s connection not closed by the server within 30 s: %v", name, err)
		}
	}
}

// TestIdleTLSFloodDoesNotLockOutRequests: with TLS, connections that never send a ClientHello
// and connections idle after their handshake count against -max-conns like plain ones, and are
// the ones closed when a client with a request comes.
func TestIdleTLSFloodDoesNotLockOutRequests(t *testing.T) {
	const silent, shaken, limit = 150, 50, 50
	dir := t.TempDir()
	ca := newPKI(t)
	cert, key := ca.issue(t, "kms", x509.ExtKeyUsageServerAuth)
	url := serveInProcess(t, "-listen", "127.0.0.1:0", "-data", filepath.Join(dir, "data"), "-max-conns", "50",
		"-tls-cert", writeFile(t, dir, "c.pem", cert), "-tls-key", writeFile(t, dir, "k.pem", key),
		"-read-header-timeout", "10m", "-idle-timeout", "10m", "-read-timeout", "10m", "-write-timeout", "10m")
	addr := strings.TrimPrefix(url, "https://")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range silent + shaken {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if i >= silent { // the handshake, then nothing
			tc := tls.Client(c, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
			tc.SetDeadline(time.Now().Add(30 * time.Second))
			if err := tc.Handshake(); err != nil {
				t.Fatalf("handshake %d: %v", i, err)
			}
			tc.SetDeadline(time.Time{})
			c = tc
		}
		conns = append(conns, c)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: roots}}}
	start := time.Now()
	resp, err := client.Get(url + "/healthz")
	if err != nil {
		t.Fatalf("a request under the TLS flood: %v", err)
	}
	resp.Body.Close()
	t.Logf("a request under %d idle TLS connections: %v", silent+shaken, time.Since(start))
	if resp.StatusCode != 200 {
		t.Fatalf("a request under the TLS flood: %d", resp.StatusCode)
	}
	closed, deadline := 0, time.Now().Add(30*time.Second)
	done := make([]bool, len(conns))
	for closed < silent+shaken-limit {
		for i, c := range conns {
			if !done[i] && closedByServer(c, time.Millisecond) {
				done[i], closed = true, closed+1
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server still holds %d of the flood's connections, want at most %d", len(conns)-closed, limit)
		}
	}
}
