package conformance_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// useTLS configures the suites' HTTP client (http.DefaultTransport, the base of every exchange's
// transport) for the declaration's TLS: the client certificate of kms.auth mtls, and kms.ca_file
// beside the system's roots. Without them it changes nothing.
func (c *Config) useTLS() error {
	if c.KMSAuth != "mtls" && c.CAFile == "" {
		return nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.KMSAuth == "mtls" {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return fmt.Errorf("kms.client_cert, kms.client_key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return fmt.Errorf("kms.ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("kms.ca_file %s: no PEM certificate in it", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	t, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return errors.New("kms.auth mtls: http.DefaultTransport is not an *http.Transport")
	}
	t.TLSClientConfig = cfg
	return nil
}

// TestUseTLS: kms.auth mtls loads the client certificate into the suites' HTTP client, kms.ca_file
// adds a root; a missing or bad file is an error naming the field.
func TestUseTLS(t *testing.T) {
	tr := http.DefaultTransport.(*http.Transport)
	saved := tr.TLSClientConfig
	t.Cleanup(func() { tr.TLSClientConfig = saved })
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "supplier 001D"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)

	c := Config{KMSAuth: "mtls", ClientCert: certFile, ClientKey: keyFile, CAFile: certFile}
	if err := c.useTLS(); err != nil {
		t.Fatal(err)
	}
	got := tr.TLSClientConfig
	if got == nil || len(got.Certificates) != 1 || got.RootCAs == nil {
		t.Fatalf("TLS client config %+v", got)
	}
	leaf, err := x509.ParseCertificate(got.Certificates[0].Certificate[0])
	if err != nil || leaf.Subject.CommonName != "supplier 001D" {
		t.Errorf("client certificate %v, %v", leaf, err)
	}
	for _, bad := range []struct {
		c    Config
		want string
	}{
		{Config{KMSAuth: "mtls", ClientCert: filepath.Join(dir, "none.pem"), ClientKey: keyFile}, "kms.client_cert"},
		{Config{KMSAuth: "mtls", ClientCert: certFile, ClientKey: certFile}, "kms.client_cert"},
		{Config{CAFile: filepath.Join(dir, "none.pem")}, "kms.ca_file"},
		{Config{CAFile: keyFile}, "kms.ca_file"},
	} {
		if err := bad.c.useTLS(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: %v, want an error naming %s", bad.c, err, bad.want)
		}
	}
}
