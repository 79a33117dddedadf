package conformance_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/conformance/report"
	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newTestCA makes a CA.
func newTestCA(t *testing.T) testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert: cert, key: key}
}

// issue makes a certificate for cn with usage (and 127.0.0.1 for a server) and returns it and its
// key as PEM.
func (ca testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// TestKMSCertificationOverMutualTLS: a certification of target kms against a KMS that takes
// only TLS clients with a certificate of its CA (the reference with -auth mtls: the certificate's
// CommonName is the supplier) passes with the declaration's kms.auth mtls, client certificate and
// CA file; without the client certificate it fails.
func TestKMSCertificationOverMutualTLS(t *testing.T) {
	skipUnderRace(t)
	t.Parallel()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ca := newTestCA(t)
	caFile := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}))
	srvCert, srvKey := ca.issue(t, "kms", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.issue(t, "001D", x509.ExtKeyUsageClientAuth)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := reference.New(context.Background(), reference.Config{DataDir: t.TempDir(), Auth: kms.AuthMTLS, CLMKeys: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes of the run without a certificate
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	ts.StartTLS()
	t.Cleanup(ts.Close)

	decl := []string{"CONF_TARGETS=kms", "CONF_KMS_URL=" + ts.URL, "CONF_KMS_CA_FILE=" + caFile, "CONF_SUPPLIER_ID=001D", "CONF_ECU_TYPE=0001",
		"CONF_SUPPLIER_SECRET_KEY=1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d", "CONF_INITIAL_MASTER_KEY=00000000000000000000000000000000"}
	res, out, err := runSuites(t, append(decl, "CONF_KMS_AUTH=mtls", "CONF_KMS_CLIENT_CERT="+write("client.pem", cliCert),
		"CONF_KMS_CLIENT_KEY="+write("client.key", cliKey))...)
	if err != nil || len(res.Verdicts) != 1 || !res.Verdicts[0].Certified || res.Verdicts[0].Passed < 40 {
		t.Fatalf("over mTLS: %v, verdicts %+v\n%s", err, res.Verdicts, out)
	}
	res, out, err = runSuites(t, decl...)
	if err == nil || len(res.Verdicts) != 1 || res.Verdicts[0].Certified || !strings.Contains(string(out), "kms: not certified") {
		t.Errorf("without the client certificate: %v, verdicts %+v\n%s", err, res.Verdicts, out)
	}
	for _, tr := range res.Tests {
		if tr.Outcome == report.Pass {
			t.Errorf("without the client certificate, %q passed", tr.Name)
			break
		}
	}
}
