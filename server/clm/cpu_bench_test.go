package clm_test

import (
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
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shekit/shekit/server/clm"
	"github.com/shekit/shekit/server/kek"
	"github.com/shekit/shekit/server/store"
)

// processCPU returns the CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU runs the benchmark's loop and reports the process's CPU per operation (cpu-µs/op):
// on two cores under parallel load, less sensitive to other processes than ns/op.
func reportCPU(b *testing.B, parallel func(pb *testing.PB)) {
	b.SetParallelism(8)
	start := processCPU(b)
	b.ResetTimer()
	b.RunParallel(parallel)
	b.StopTimer()
	b.ReportMetric(float64(processCPU(b)-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
}

// clmServer is a CLM with P-256 client and CA keys on SQLite behind a loopback HTTP server, and
// the keyid/key parameters of one ID. The benchmark reports how many changes the store's commits
// carried on average (changes/commit: each commit is one fsync, shared by its changes).
func clmServer(b *testing.B) (*httptest.Server, string) {
	st, err := store.OpenSQLite(filepath.Join(b.TempDir(), "kms.db"))
	if err != nil {
		b.Fatal(err)
	}
	var commits, changes atomic.Int64
	st.OnCommit = func(n int, _ time.Duration) { commits.Add(1); changes.Add(int64(n)) }
	b.Cleanup(func() {
		if c := commits.Load(); c > 0 {
			b.ReportMetric(float64(changes.Load())/float64(c), "changes/commit")
		}
	})
	svc, err := clm.New(context.Background(), st, kek.New([32]byte{7}), clm.Config{License: license, KeyAlgorithm: "ecdsa", PoolSize: -1}, nil)
	if err != nil {
		b.Fatal(err)
	}
	mux := http.NewServeMux()
	svc.Register(mux)
	srv := httptest.NewServer(mux)
	b.Cleanup(func() { srv.Close(); svc.Close(); st.Close() })
	srv.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	status, body := clmPost(b, srv, clm.PathIDInfo, `{"mode":"create","tenantid":"bench","alias":"bench"}`)
	var id struct{ Keyid, Key string }
	if json.Unmarshal(body, &id) != nil || status != http.StatusCreated {
		b.Fatalf("IDInfo create: %d %s", status, body)
	}
	return srv, fmt.Sprintf(`"keyid":%q,"key":%q`, id.Keyid, id.Key)
}

func clmPost(b *testing.B, srv *httptest.Server, path, body string) (int, []byte) {
	req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
	req.SetBasicAuth(clm.LicenseUser, license)
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		b.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// BenchmarkCLMCPU: the process CPU (server and its HTTP client) of one CredInfo create (a P-256
// client certificate for a new device), one KeyInfo create (an AES key for a new device), and
// the crypto floor of a certificate: a P-256 key generation and a P-256 CA's signature of a
// client certificate. Run with -count 5: the sub-benchmarks alternate.
func BenchmarkCLMCPU(b *testing.B) {
	var device atomic.Int64
	b.Run("credinfo-create", func(b *testing.B) {
		srv, auth := clmServer(b)
		reportCPU(b, func(pb *testing.PB) {
			for pb.Next() {
				i := device.Add(1)
				body := fmt.Sprintf(`{"mode":"create",%s,"devicename":"b-%d","certmode":"client","catype":"ca1","clientsubject":"/CN=b-%d","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`, auth, i, i)
				if status, out := clmPost(b, srv, clm.PathCredInfo, body); status != http.StatusCreated && status != http.StatusOK {
					b.Errorf("CredInfo create: %d %s", status, out)
				}
			}
		})
	})
	b.Run("keyinfo-create", func(b *testing.B) {
		srv, auth := clmServer(b)
		reportCPU(b, func(pb *testing.PB) {
			for pb.Next() {
				i := device.Add(1)
				body := fmt.Sprintf(`{"mode":"create",%s,"devicename":"b-%d","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, auth, i)
				if status, out := clmPost(b, srv, clm.PathKeyInfo, body); status != http.StatusCreated && status != http.StatusOK {
					b.Errorf("KeyInfo create: %d %s", status, out)
				}
			}
		})
	})
	b.Run("cert-crypto-floor", func(b *testing.B) {
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
		reportCPU(b, func(pb *testing.PB) {
			for pb.Next() {
				key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
				if err != nil {
					b.Error(err)
					return
				}
				tmpl := &x509.Certificate{SerialNumber: big.NewInt(device.Add(1)), Subject: pkix.Name{CommonName: "b"},
					KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
					NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
				if _, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey); err != nil {
					b.Error(err)
				}
			}
		})
	})
}
