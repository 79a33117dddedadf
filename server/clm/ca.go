package clm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// refillQuiet is how long no key may have been taken from the pool before the workers generate
// the next one. An RSA-2048 generation holds a core for about 140 ms and Go's scheduler preempts
// it only every 10 ms, so a refill running during a burst would add its slices to the latency of
// every request of the burst; refilling in quiet moments keeps the pool's keys for the burst and
// the cores for the requests. Under sustained load the pool stays empty and each request makes
// its own key, so no throughput is lost.
const refillQuiet = 50 * time.Millisecond

// keyGen makes key pairs: ECDSA P-256 on demand, or RSA-2048 from a bounded pool that
// background workers keep filled, so that issuing does not wait for RSA key generation.
type keyGen struct {
	algo     string // "rsa" or "ecdsa"
	workers  int
	log      *slog.Logger
	make     func() (crypto.Signer, error) // the generation the pool's workers run: generate
	retry    time.Duration                 // a worker's pause after a failed generation
	pool     chan crypto.Signer
	lastTake atomic.Int64 // unix nanoseconds of the last key taken from the pool
	start    sync.Once    // the pool fills from the first request for a key on
	stop     chan struct{}
	closed   sync.Once
	wg       sync.WaitGroup
}

func newKeyGen(algo string, poolSize, workers int, log *slog.Logger) *keyGen {
	g := &keyGen{algo: algo, workers: workers, log: log, retry: time.Second, stop: make(chan struct{})}
	g.make = g.generate
	if algo == "rsa" && poolSize > 0 {
		g.pool = make(chan crypto.Signer, poolSize)
	}
	return g
}

// generate makes a key pair of the configured algorithm now.
func (g *keyGen) generate() (crypto.Signer, error) {
	if g.algo == "ecdsa" {
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return rsa.GenerateKey(rand.Reader, 2048)
}

func (g *keyGen) fill() {
	defer g.wg.Done()
	for {
		if wait := refillQuiet - time.Since(time.Unix(0, g.lastTake.Load())); wait > 0 {
			select {
			case <-time.After(wait):
				continue
			case <-g.stop:
				return
			}
		}
		k, err := g.make()
		if err != nil {
			// A worker that stopped would leave the pool empty for good: it logs, pauses
			// and goes on.
			g.log.Error("clm: key pool: generation failed, retrying", "err", err, "retry", g.retry)
			select {
			case <-time.After(g.retry):
				continue
			case <-g.stop:
				return
			}
		}
		select {
		case g.pool <- k:
		case <-g.stop:
			return
		}
	}
}

// startPool starts the workers that keep the pool filled (once).
func (g *keyGen) startPool() {
	if g.pool == nil {
		return
	}
	g.start.Do(func() {
		for range g.workers {
			g.wg.Add(1)
			go g.fill()
		}
	})
}

// key returns a fresh key pair: from the pool when one is ready.
func (g *keyGen) key() (crypto.Signer, error) {
	if g.pool == nil {
		return g.generate()
	}
	g.startPool()
	g.lastTake.Store(time.Now().UnixNano())
	select {
	case k := <-g.pool:
		return k, nil
	default:
		return g.generate()
	}
}

// Ready returns how many pre-generated keys wait in the pool.
func (g *keyGen) ready() int { return len(g.pool) }

func (g *keyGen) close() {
	g.closed.Do(func() {
		close(g.stop)
		g.wg.Wait()
	})
}

// caRecord is the stored CA.
type caRecord struct {
	DER       []byte `json:"der"`
	KeyPKCS8  []byte `json:"key"`
	KeyNumber int64  `json:"keynumber"`
	Serial    string `json:"serial"`
}

// authority is the CLM's CA, named ca1 (and returned for catype CA).
type authority struct {
	key    crypto.Signer
	cert   *x509.Certificate
	der    []byte
	number int64
	serial string
	// pem and base64 are the certificate as answers carry it (cacerttype pem and der), encoded
	// once.
	pem, base64 string
}

// randomSerial returns a positive 64-bit serial number and its 16 hex digits.
func randomSerial() (*big.Int, string) {
	b := make([]byte, 8)
	rand.Read(b)
	b[0] &= 0x7F
	if b[0] == 0 {
		b[0] = 0x10 // keep 16 significant hex digits
	}
	return new(big.Int).SetBytes(b), strings.ToUpper(hex.EncodeToString(b))
}

// loadCA returns the stored CA, creating it (key of the configured algorithm, self-signed,
// valid 20 years) on the first start. Creating it is one decision of the store: the CA is
// inserted only if none is stored, and every replica uses the one stored, whichever made it.
func (s *Service) loadCA(ctx context.Context) (*authority, error) {
	var rec caRecord
	found := false
	err := s.st.View(ctx, func(tx Tx) error {
		o, ok, err := tx.Get(kindCA, "ca1")
		if err != nil || !ok {
			return err
		}
		found = true
		return s.seal.open(o, &rec)
	})
	if err == nil && !found {
		err = s.createCA(ctx, &rec)
	}
	if err != nil {
		return nil, fmt.Errorf("clm: CA: %w", err)
	}
	cert, err := x509.ParseCertificate(rec.DER)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(rec.KeyPKCS8)
	if err != nil {
		return nil, err
	}
	return &authority{key: key.(crypto.Signer), cert: cert, der: rec.DER, number: rec.KeyNumber, serial: rec.Serial,
		pem: pemCert(rec.DER), base64: base64.StdEncoding.EncodeToString(rec.DER)}, nil
}

// createCA makes a CA (outside any transaction: key generation is slow) and stores it unless
// another one was stored meanwhile; rec is then the stored one.
func (s *Service) createCA(ctx context.Context, rec *caRecord) error {
	key, err := (&keyGen{algo: s.cfg.CAAlgorithm}).generate()
	if err != nil {
		return err
	}
	serial, serialHex := randomSerial()
	now := s.cfg.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{Organization: []string{"SecureWare/CLM reference"}, CommonName: "ca1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(20, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return s.st.CLM(ctx, func(tx Tx) error {
		if o, ok, err := tx.Get(kindCA, "ca1"); err != nil || ok {
			if ok {
				return s.seal.open(o, rec)
			}
			return err
		}
		number, err := tx.Next("keynumber")
		if err != nil {
			return err
		}
		mine := caRecord{DER: der, KeyPKCS8: pkcs8, KeyNumber: number, Serial: serialHex}
		sealed, err := s.seal.seal(kindCA, "ca1", mine)
		if err != nil {
			return err
		}
		inserted, err := tx.Insert(Object{Kind: kindCA, ID: "ca1", Alt: serialHex, Owner: "", Value: sealed})
		if err != nil {
			return err
		}
		if inserted {
			*rec = mine
			return nil
		}
		// Another replica's insert committed first (PostgreSQL: this transaction waited for it,
		// and its next statement sees it).
		o, ok, err := tx.Get(kindCA, "ca1")
		if err == nil && !ok {
			err = errors.New("the CA is neither stored nor insertable")
		}
		if err != nil {
			return err
		}
		return s.seal.open(o, rec)
	})
}

// issue signs a certificate for pub with subject, usable by servers and clients.
func (a *authority) issue(pub crypto.PublicKey, subject pkix.Name, serial *big.Int, now time.Time, validity time.Duration) ([]byte, error) {
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: subject, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	return x509.CreateCertificate(rand.Reader, tmpl, a.cert, pub, a.key)
}

// pemCert writes a certificate in PEM.
func pemCert(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// pemKey writes a PKCS#8 private key in PEM.
func pemKey(pkcs8 []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
}

// parseSubject reads "/C=JP/ST=…/L=Tokyo/O=NEC/OU=…/CN=AP1"; CN is required.
func parseSubject(s string) (pkix.Name, bool) {
	var n pkix.Name
	if !strings.HasPrefix(s, "/") {
		return n, false
	}
	for _, part := range strings.Split(s[1:], "/") {
		k, v, ok := strings.Cut(part, "=")
		if !ok || v == "" {
			return n, false
		}
		switch k {
		case "C":
			n.Country = append(n.Country, v)
		case "ST":
			n.Province = append(n.Province, v)
		case "L":
			n.Locality = append(n.Locality, v)
		case "O":
			n.Organization = append(n.Organization, v)
		case "OU":
			n.OrganizationalUnit = append(n.OrganizationalUnit, v)
		case "CN":
			n.CommonName = v
		default:
			return n, false
		}
	}
	return n, n.CommonName != ""
}

// CACert returns the certificate of the CA the CLM signs with.
func (s *Service) CACert() *x509.Certificate { return s.ca.cert }
