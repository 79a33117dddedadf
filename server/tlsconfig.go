package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// aeadSuites are the TLS 1.2 cipher suites the server offers: ECDHE key exchange with AES-GCM or
// ChaCha20-Poly1305 only (no CBC, no RSA key exchange). TLS 1.3's suites are all AEAD and not
// configurable.
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// serverTLS is the server's TLS configuration: TLS 1.2 with aeadSuites or TLS 1.3; with
// clientCA, client certificates are required and verified, and with crlFile checked against
// that CRL on every handshake.
func serverTLS(certFile, keyFile, clientCA, crlFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, CipherSuites: aeadSuites}
	if clientCA == "" {
		return cfg, nil
	}
	data, err := os.ReadFile(clientCA)
	if err != nil {
		return nil, fmt.Errorf("-tls-client-ca: %w", err)
	}
	pool := x509.NewCertPool()
	var cas []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil && b.Type == "CERTIFICATE" {
			pool.AddCert(c)
			cas = append(cas, c)
		}
	}
	if len(cas) == 0 {
		return nil, errors.New("-tls-client-ca: no certificate in the file")
	}
	cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	if crlFile != "" {
		crl := &crlCheck{path: crlFile, issuers: cas}
		if err := crl.load(); err != nil {
			return nil, fmt.Errorf("-tls-client-crl: %w", err)
		}
		cfg.VerifyPeerCertificate = crl.verify
	}
	return cfg, nil
}

// crlCheck refuses client certificates a CRL file lists. The file is looked at on every
// handshake and read again when its size or modification time changed; a file that no longer
// reads, or whose CRL is not signed by a client CA, refuses every client until it is fixed.
type crlCheck struct {
	path    string
	issuers []*x509.Certificate

	mu      sync.Mutex
	size    int64
	mtime   time.Time
	revoked map[string]bool // issuer's raw subject and serial
	err     error
}

// load reads the CRL file if it changed since the last read.
func (c *crlCheck) load() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	info, err := os.Stat(c.path)
	if err != nil {
		c.err = err
		return err
	}
	if c.revoked != nil && c.err == nil && info.Size() == c.size && info.ModTime().Equal(c.mtime) {
		return nil
	}
	c.size, c.mtime = info.Size(), info.ModTime()
	c.revoked, c.err = readCRL(c.path, c.issuers)
	return c.err
}

// readCRL reads a CRL (PEM or DER) signed by one of issuers and returns its revoked serials.
func readCRL(path string, issuers []*x509.Certificate) (map[string]bool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	list, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, err
	}
	for _, ca := range issuers {
		if bytes.Equal(ca.RawSubject, list.RawIssuer) && list.CheckSignatureFrom(ca) == nil {
			revoked := map[string]bool{}
			for _, e := range list.RevokedCertificateEntries {
				revoked[string(list.RawIssuer)+"/"+e.SerialNumber.String()] = true
			}
			return revoked, nil
		}
	}
	return nil, errors.New("the CRL is not signed by a certificate of -tls-client-ca")
}

// verify is tls.Config.VerifyPeerCertificate: after the chain was verified, the client's
// certificate must not be revoked.
func (c *crlCheck) verify(_ [][]byte, chains [][]*x509.Certificate) error {
	if err := c.load(); err != nil {
		return fmt.Errorf("client certificate revocation list: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, chain := range chains {
		if len(chain) > 0 && c.revoked[string(chain[0].RawIssuer)+"/"+chain[0].SerialNumber.String()] {
			return errors.New("the client certificate is revoked")
		}
	}
	return nil
}
