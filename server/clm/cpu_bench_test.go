package clm_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/internal/proccpu"
	"github.com/shekit/shekit/server/kek"
	"github.com/shekit/shekit/server/store"
)

// serveEnv makes the test binary serve a benchmark's CLM (on SQLite in the directory it names)
// instead of running the tests, so that the server's CPU is measured apart from its client's.
// With profileEnv set (a file name), the server writes its CPU profile there (each server of a
// run overwrites the last one's: profile one sub-benchmark at a time).
const (
	serveEnv   = "SHEKIT_CLM_BENCH_SERVE"
	profileEnv = "SHEKIT_CLM_BENCH_CPUPROFILE"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(serveEnv); dir != "" {
		if err := serveBenchCLM(dir, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveBenchCLM serves a CLM with P-256 client and CA keys on SQLite in dir on a loopback port:
// it writes "listening on URL", serves until stop ends, then writes "commits N changes M" (the
// store's commits and the changes they carried).
func serveBenchCLM(dir string, stop io.Reader, out io.Writer) error {
	if name := os.Getenv(profileEnv); name != "" {
		f, err := os.Create(name)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	st, err := store.OpenSQLite(filepath.Join(dir, "kms.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	var commits, changes atomic.Int64
	st.OnCommit = func(n int, _ time.Duration) { commits.Add(1); changes.Add(int64(n)) }
	svc, err := clm.New(context.Background(), st, kek.New([32]byte{7}), clm.Config{License: license, KeyAlgorithm: "ecdsa", PoolSize: -1}, nil)
	if err != nil {
		return err
	}
	defer svc.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	fmt.Fprintf(out, "listening on http://%s\n", ln.Addr())
	io.Copy(io.Discard, stop)
	srv.Close()
	_, err = fmt.Fprintf(out, "commits %d changes %d\n", commits.Load(), changes.Load())
	return err
}

// benchServer is a CLM serving in a child process, and the keyid/key parameters of one ID.
type benchServer struct {
	url, auth string
	client    *http.Client
	cmd       *exec.Cmd
	stop      io.Closer
	out       *bufio.Reader
}

// startBenchServer starts a CLM (serveBenchCLM) in a child process and creates an ID on it.
func startBenchServer(b *testing.B) *benchServer {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serveEnv+"="+b.TempDir())
	cmd.Stderr = os.Stderr
	stop, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	s := &benchServer{cmd: cmd, stop: stop, out: bufio.NewReader(stdout),
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	b.Cleanup(func() { stop.Close(); cmd.Wait() })
	line, err := s.out.ReadString('\n')
	if !strings.HasPrefix(line, "listening on ") {
		b.Fatalf("the CLM did not start: %q %v", line, err)
	}
	s.url = strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	status, body := s.post(b, clm.PathIDInfo, `{"mode":"create","tenantid":"bench","alias":"bench"}`)
	var id struct{ Keyid, Key string }
	if json.Unmarshal(body, &id) != nil || status != http.StatusCreated {
		b.Fatalf("IDInfo create: %d %s", status, body)
	}
	s.auth = fmt.Sprintf(`"keyid":%q,"key":%q`, id.Keyid, id.Key)
	return s
}

func (s *benchServer) post(b *testing.B, path, body string) (int, []byte) {
	req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(body))
	req.SetBasicAuth(clm.LicenseUser, license)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		b.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// cpu returns the CPU time the server's process has used (user and system, in clock ticks of
// 10 ms: a run should last seconds).
func (s *benchServer) cpu(b *testing.B) time.Duration {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command's name, "(...)": utime and stime are the 12th and 13th.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// changesPerCommit stops the server and returns the changes its store's commits carried on
// average (each commit is one fsync, shared by its changes).
func (s *benchServer) changesPerCommit(b *testing.B) float64 {
	s.stop.Close()
	line, _ := s.out.ReadString('\n')
	var commits, changes float64
	if _, err := fmt.Sscanf(line, "commits %g changes %g", &commits, &changes); err != nil || commits == 0 {
		b.Fatalf("the CLM's commits: %q %v", line, err)
	}
	return changes / commits
}

// benchClients is how many goroutines send the CLM's requests (the concurrent clients).
const benchClients = 16

// runCPU runs parallel as the benchmark's loop (on benchClients goroutines, rounded to a
// multiple of the CPUs) and returns the CPU that this process and, if srv is not nil, the
// server's process used meanwhile.
func runCPU(b *testing.B, srv *benchServer, parallel func(pb *testing.PB)) (client, server time.Duration) {
	b.SetParallelism(max(1, benchClients/runtime.GOMAXPROCS(0)))
	var serverStart time.Duration
	if srv != nil {
		serverStart = srv.cpu(b)
	}
	start := proccpu.Used(b)
	b.ResetTimer()
	b.StartTimer()
	b.RunParallel(parallel)
	b.StopTimer()
	client = proccpu.Used(b) - start
	if srv != nil {
		server = srv.cpu(b) - serverStart
	}
	return client, server
}

// reportServerCPU reports the server's CPU per request (server-cpu-µs/op: the CLM, its HTTP
// server and its store), the client's (client-cpu-µs/op: building requests, the HTTP client) and
// the changes per commit of the server's store.
func reportServerCPU(b *testing.B, srv *benchServer, client, server time.Duration) float64 {
	b.ReportMetric(proccpu.PerOp(b, server), "server-cpu-µs/op")
	b.ReportMetric(proccpu.PerOp(b, client), "client-cpu-µs/op")
	b.ReportMetric(srv.changesPerCommit(b), "changes/commit")
	return proccpu.PerOp(b, server)
}

// certFloor is a certificate's crypto floor: a P-256 key generation and a P-256 CA's signature
// of a client certificate (x509.CreateCertificate, which also verifies the signature it made).
type certFloor struct {
	caKey *ecdsa.PrivateKey
	ca    *x509.Certificate
}

func newCertFloor(b *testing.B) certFloor {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		b.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	return certFloor{caKey, ca}
}

// issue makes one certificate's key pair and signs it.
func (f certFloor) issue(b *testing.B, serial int64) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Error(err)
		return
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "b"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	if _, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca, key.Public(), f.caKey); err != nil {
		b.Error(err)
	}
}

// BenchmarkCLMCPU: the CPU of one CredInfo create (a P-256 client certificate for a new device)
// and of one KeyInfo create (an AES key for a new device), with the CLM (P-256 client and CA
// keys, SQLite) in a process of its own and benchClients concurrent clients in this one. server-cpu-µs/op
// is the CLM's process (its HTTP server, the CLM, its store); client-cpu-µs/op this process.
// credinfo-create also measures, right before its requests and in the same way (benchClients goroutines,
// CPU of the process), the crypto floor of as many certificates (floor-cpu-µs/op) and reports
// floor-ratio: the CLM's CPU per certificate ÷ its floor. cert-crypto-floor is the floor alone.
// Run with -count 3 or more: the sub-benchmarks alternate.
func BenchmarkCLMCPU(b *testing.B) {
	var device atomic.Int64
	b.Run("credinfo-create", func(b *testing.B) {
		f := newCertFloor(b)
		floor, _ := runCPU(b, nil, func(pb *testing.PB) {
			for pb.Next() {
				f.issue(b, device.Add(1))
			}
		})
		srv := startBenchServer(b)
		client, server := runCPU(b, srv, func(pb *testing.PB) { // its time is ns/op
			for pb.Next() {
				i := device.Add(1)
				body := fmt.Sprintf(`{"mode":"create",%s,"devicename":"b-%d","certmode":"client","catype":"ca1","clientsubject":"/CN=b-%d","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`, srv.auth, i, i)
				if status, out := srv.post(b, clm.PathCredInfo, body); status != http.StatusCreated {
					b.Errorf("CredInfo create: %d %s", status, out)
				}
			}
		})
		perCert := reportServerCPU(b, srv, client, server)
		b.ReportMetric(proccpu.PerOp(b, floor), "floor-cpu-µs/op")
		b.ReportMetric(perCert/proccpu.PerOp(b, floor), "floor-ratio")
	})
	b.Run("keyinfo-create", func(b *testing.B) {
		srv := startBenchServer(b)
		client, server := runCPU(b, srv, func(pb *testing.PB) {
			for pb.Next() {
				i := device.Add(1)
				body := fmt.Sprintf(`{"mode":"create",%s,"devicename":"b-%d","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, srv.auth, i)
				if status, out := srv.post(b, clm.PathKeyInfo, body); status != http.StatusCreated {
					b.Errorf("KeyInfo create: %d %s", status, out)
				}
			}
		})
		reportServerCPU(b, srv, client, server)
	})
	b.Run("cert-crypto-floor", func(b *testing.B) {
		f := newCertFloor(b)
		floor, _ := runCPU(b, nil, func(pb *testing.PB) {
			for pb.Next() {
				f.issue(b, device.Add(1))
			}
		})
		b.ReportMetric(proccpu.PerOp(b, floor), "cpu-µs/op")
	})
}
