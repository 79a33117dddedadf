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

// pki makes a CA and certificates it signs.
type pki struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	der  []byte
}

func newPKI(t *testing.T) *pki {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &pki{key: key, cert: cert, der: der}
}

// issue returns a certificate for cn (and 127.0.0.1 as its IP address) and its key, in PEM.
func (p *pki) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{usage}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestMutualTLS: the client certificate's CN is the SupplierID; a supplier acts on its own ECUs
// only, and a client without a certificate is not let in.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newPKI(t)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o600)
		return p
	}
	caFile := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der}))
	srvCert, srvKey := ca.issue(t, "kms", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.issue(t, "001D", x509.ExtKeyUsageClientAuth)
	args := []string{"-listen", "127.0.0.1:0", "-data", filepath.Join(dir, "data"), "-auth", "mtls",
		"-tls-cert", write("srv.pem", srvCert), "-tls-key", write("srv.key", srvKey), "-tls-client-ca", caFile}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int)
	go func() { done <- run(ctx, args, pw, &stderr) }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on https://") {
		t.Fatalf("%q %v %s", line, err, stderr.String())
	}
	url := strings.Fields(strings.TrimPrefix(line, "listening on "))[0]

	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	pair, _ := tls.X509KeyPair(cliCert, cliKey)
	client, tr := validatingClient(t)
	tr.Base = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}
	post := func(c *http.Client, ecuID string) (kms.Envelope, error) {
		body := `{"ProvisioningType":"SupplierSymmKey","KeyID":"D","EcuID":"` + ecuID + `"}`
		resp, err := c.Post(url+kms.PathProvisioning, "application/json", strings.NewReader(body))
		if err != nil {
			return kms.Envelope{}, err
		}
		defer resp.Body.Close()
		var env kms.Envelope
		return env, json.NewDecoder(resp.Body).Decode(&env)
	}
	if env, err := post(client, "0102030405060708010203040001001D0102030405060708090A0B"); err != nil || env.ResultStatus != "Success" {
		t.Fatalf("own ECU: %+v %v", env, err)
	}
	if env, err := post(client, "010203040506070801020304000300010000000000000000000002"); err != nil || env.ResultReason != "FORBIDDEN" {
		t.Fatalf("another supplier's ECU: %+v %v", env, err)
	}
	anonymous := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	if _, err := post(anonymous, "0102030405060708010203040001001D0102030405060708090A0B"); err == nil {
		t.Fatal("a client without a certificate got an answer")
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}
