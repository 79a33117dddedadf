package conformance_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
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
