package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/server/kms"
)

// serveInProcess runs the server command with args until the test ends and returns its URL.
func serveInProcess(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, pw, &stderr); pw.Close() }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on ") {
		cancel()
		<-done
		t.Fatalf("server did not start: %q %v %s", line, err, stderr.String())
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	})
	return strings.Fields(strings.TrimPrefix(line, "listening on "))[0]
}

// writeFile writes data to name in dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestBearerNeedsTLSOffLoopback: bearer tokens travel in the clear without TLS, so off loopback
// -auth bearer needs -tls-cert; with it the server starts.
func TestBearerNeedsTLSOffLoopback(t *testing.T) {
	args := []string{"-auth", "bearer", "-listen", "0.0.0.0:0", "-clm-license", "a-license-key", "-data", t.TempDir()}
	var stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a server that starts stops then
	defer cancel()
	if code := run(ctx, args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "-tls-cert") {
		t.Fatalf("bearer over plain HTTP off loopback: exit %d, want 2 and a word about -tls-cert: %s", code, stderr.String())
	}
	dir := t.TempDir()
	ca := newPKI(t)
	cert, key := ca.issue(t, "kms", x509.ExtKeyUsageServerAuth)
	if url := serveInProcess(t, append(args, "-tls-cert", writeFile(t, dir, "c.pem", cert), "-tls-key", writeFile(t, dir, "k.pem", key))...); !strings.HasPrefix(url, "https://") {
		t.Fatalf("with TLS: %s", url)
	}
}

// TestAdminTokenMustBeStrong: an admin token shorter than 32 characters, or of too few distinct
// characters, stops the start with a clear message; a random one is accepted.
func TestAdminTokenMustBeStrong(t *testing.T) {
	for _, token := range []string{"x", strings.Repeat("ab", 15) + "c", strings.Repeat("abc", 20)} {
		var stderr bytes.Buffer
		args := []string{"-listen", "127.0.0.1:0", "-data", t.TempDir(), "-admin-token", token}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a server that starts stops then
		code := run(ctx, args, io.Discard, &stderr)
		cancel()
		if code != 2 || !strings.Contains(stderr.String(), "at least 32 random characters") {
			t.Errorf("admin token of %d characters: exit %d (%s)", len(token), code, stderr.String())
		}
	}
	serveInProcess(t, "-listen", "127.0.0.1:0", "-data", t.TempDir(), "-admin-token", "3f9a0c7d51e2b84a6f0d93c2e7b15a48")
}

// TestTLSOffersOnlyAEADSuites: TLS 1.2 with a CBC suite (or RSA key exchange) is refused; TLS
// 1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305, and TLS 1.3, are accepted.
func TestTLSOffersOnlyAEADSuites(t *testing.T) {
	dir := t.TempDir()
	ca := newPKI(t)
	cert, key := ca.issue(t, "kms", x509.ExtKeyUsageServerAuth)
	url := serveInProcess(t, "-listen", "127.0.0.1:0", "-data", filepath.Join(dir, "data"),
		"-tls-cert", writeFile(t, dir, "c.pem", cert), "-tls-key", writeFile(t, dir, "k.pem", key))
	addr := strings.TrimPrefix(url, "https://")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	handshake := func(version uint16, suite uint16) error {
		cfg := &tls.Config{RootCAs: roots, MinVersion: version, MaxVersion: version}
		if suite != 0 {
			cfg.CipherSuites = []uint16{suite}
		}
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	for _, suite := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_GCM_SHA256} {
		if err := handshake(tls.VersionTLS12, suite); err == nil {
			t.Errorf("TLS 1.2 with %s was accepted", tls.CipherSuiteName(suite))
		}
	}
	for _, suite := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256} {
		if err := handshake(tls.VersionTLS12, suite); err != nil {
			t.Errorf("TLS 1.2 with %s: %v", tls.CipherSuiteName(suite), err)
		}
	}
	if err := handshake(tls.VersionTLS13, 0); err != nil {
		t.Errorf("TLS 1.3: %v", err)
	}
	if err := handshake(tls.VersionTLS11, 0); err == nil {
		t.Error("TLS 1.1 was accepted")
	}
}

// clientCert is a client certificate with its key and its parsed form.
type clientCert struct {
	pair tls.Certificate
	cert *x509.Certificate
}

// issueSubject returns a client certificate for subject, signed by the CA.
func (p *pki) issueSubject(t *testing.T, subject pkix.Name) clientCert {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: subject, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return clientCert{pair: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, cert: cert}
}

// crl writes a CRL of the CA revoking certs to path.
func (p *pki) crl(t *testing.T, path string, number int64, certs ...*x509.Certificate) {
	t.Helper()
	tmpl := &x509.RevocationList{Number: big.NewInt(number), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
	for _, c := range certs {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, p.cert, p.key)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".new"
	writeFile(t, filepath.Dir(tmp), filepath.Base(tmp), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestMutualTLSNamesAndRevocation: the CN must be exactly 4 hex digits (either case) and the only
// CN of the subject; a certificate on the -tls-client-crl CRL is refused at the handshake, and a
// CRL replaced while the server runs (a new size and modification time) applies to the next
// handshake.
func TestMutualTLSNamesAndRevocation(t *testing.T) {
	dir := t.TempDir()
	ca := newPKI(t)
	srvCert, srvKey := ca.issue(t, "kms", x509.ExtKeyUsageServerAuth)
	crlPath := filepath.Join(dir, "clients.crl")
	revoked := ca.issueSubject(t, pkix.Name{CommonName: "001D"})
	ca.crl(t, crlPath, 1, revoked.cert)
	url := serveInProcess(t, "-listen", "127.0.0.1:0", "-data", filepath.Join(dir, "data"), "-auth", "mtls",
		"-tls-cert", writeFile(t, dir, "srv.pem", srvCert), "-tls-key", writeFile(t, dir, "srv.key", srvKey),
		"-tls-client-ca", writeFile(t, dir, "ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der})),
		"-tls-client-crl", crlPath)
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	post := func(c clientCert) (int, kms.Envelope, error) {
		client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{c.pair}}}}
		body := `{"ProvisioningType":"SupplierSymmKey","KeyID":"D","EcuID":"0102030405060708010203040001001D0102030405060708090A0B"}`
		resp, err := client.Post(url+kms.PathProvisioning, "application/json", strings.NewReader(body))
		if err != nil {
			return 0, kms.Envelope{}, err
		}
		defer resp.Body.Close()
		var env kms.Envelope
		return resp.StatusCode, env, json.NewDecoder(resp.Body).Decode(&env)
	}
	cn := asn1.ObjectIdentifier{2, 5, 4, 3}
	for _, tc := range []struct {
		subject pkix.Name
		want    int
	}{
		{pkix.Name{CommonName: "001D"}, 200},
		{pkix.Name{CommonName: "001d"}, 200},
		{pkix.Name{CommonName: "1d"}, 401},
		{pkix.Name{CommonName: "1D"}, 401},
		{pkix.Name{CommonName: "0001D"}, 401},
		{pkix.Name{CommonName: "+01D"}, 401},
		{pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: cn, Value: "0001"}, {Type: cn, Value: "001D"}}}, 401},
		{pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: cn, Value: "001D"}, {Type: cn, Value: "001D"}}}, 401},
	} {
		status, env, err := post(ca.issueSubject(t, tc.subject))
		if err != nil || status != tc.want || (tc.want == 401 && env.ResultReason != "UNAUTHORIZED") {
			t.Errorf("subject %v: %d %+v %v, want %d", tc.subject.ToRDNSequence(), status, env, err, tc.want)
		}
	}
	if _, _, err := post(revoked); err == nil {
		t.Error("a revoked client certificate was let in")
	}
	good := ca.issueSubject(t, pkix.Name{CommonName: "001D"})
	if status, _, err := post(good); err != nil || status != 200 {
		t.Fatalf("before its revocation: %d %v", status, err)
	}
	ca.crl(t, crlPath, 2, revoked.cert, good.cert)
	if _, _, err := post(good); err == nil {
		t.Error("a certificate revoked by a CRL replaced while the server runs was let in")
	}
}
