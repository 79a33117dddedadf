package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/shekit/shekit/openapi/kmswire"
	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
)

// suiteRegistryJSON is the registry of the in-process reference KMS: the demo registry (the same
// suppliers, EcuTypes and secrets), each supplier with a bearer token, and EcuType 0002 of 001D,
// which allows only KeyIDs 1, D and 4, for the registry-restriction test. EcuType 0001 of 001D
// belongs to two SecOC clusters only (suiteClusterIDs, for the cluster-restriction test); the
// other EcuTypes take SecOC keys of any cluster. The demo registry of `go run ./server` is
// unchanged.
const suiteRegistryJSON = `{"suppliers": [
 {"id": "001D", "name": "Demo supplier 001D", "phase": "Dev", "secretKey": "1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d",
  "token": "suite-token-001d", "ecuTypes": [
   {"type": "0001", "keyIds": ["1", "D", "4", "5", "6", "7", "8", "9", "A", "B", "C"], "clusters": ["5EC0C1A5E0000001", "5EC0C1A5E0000002"]},
   {"type": "0002", "keyIds": ["1", "D", "4"], "clusters": ["*"]}]},
 {"id": "0001", "name": "Demo supplier 0001", "phase": "Dev", "secretKey": "01010101010101010101010101010101",
  "token": "suite-token-0001", "ecuTypes": [
   {"type": "0003", "keyIds": ["1", "D", "4", "5", "6", "7", "8", "9", "A", "B", "C"], "clusters": ["*"]}]}]}`

// The in-process settings that match suiteRegistryJSON (supplier 001D); reference.yaml, the
// reference's declaration, gives the same (TestReferenceDeclaration).
const (
	suiteToken         = "suite-token-001d"
	suiteRestricted    = "0002"
	suiteRefusedKeyIDs = "5,6,7,8,9,A,B,C"
	suiteOtherSupplier = "0001"
	suiteOtherEcuType  = "0003"
	suiteClusterIDs    = "5EC0C1A5E0000001,5EC0C1A5E0000002"
)

// suiteRegistry parses suiteRegistryJSON.
func suiteRegistry() (*kms.Registry, error) {
	return kms.ParseRegistry([]byte(suiteRegistryJSON), "json")
}

// restartableReference is a reference server that can be restarted on the same store while its
// HTTP listener stays: a restart closes the server (store included) and opens a new one with the
// same configuration, as a process restart would.
type restartableReference struct {
	mu  sync.RWMutex
	cfg reference.Config
	srv *reference.Server
}

// newRestartableReference starts a reference server with cfg.
func newRestartableReference(cfg reference.Config) (*restartableReference, error) {
	srv, err := reference.New(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	return &restartableReference{cfg: cfg, srv: srv}, nil
}

// ServeHTTP serves a request with the current server; a restart waits for it.
func (r *restartableReference) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	r.srv.Handler().ServeHTTP(w, req)
}

// restart closes the server and opens it again on its store.
func (r *restartableReference) restart() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.srv.Close(); err != nil {
		return fmt.Errorf("restart: closing: %w", err)
	}
	srv, err := reference.New(context.Background(), r.cfg)
	if err != nil {
		return fmt.Errorf("restart: opening: %w", err)
	}
	r.srv = srv
	return nil
}

// Close closes the current server.
func (r *restartableReference) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.srv.Close()
}

// serveLoopback serves h on a loopback port until the suite ends and returns its URL.
func serveLoopback(h http.Handler) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		harnessFail("listening on loopback: %v", err)
	}
	ts := &httptest.Server{Listener: l, Config: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	ts.Start()
	DeferCleanup(ts.Close)
	return ts.URL
}

// startSecuredKMS starts, for the in-process default, a second reference KMS with bearer
// authentication and the suite registry: the target of the authentication tests.
func startSecuredKMS() {
	reg, err := suiteRegistry()
	if err != nil {
		harnessFail("suite registry: %v", err)
	}
	srv, err := reference.New(context.Background(), reference.Config{DataDir: GinkgoT().TempDir(), Registry: reg,
		Auth: kms.AuthBearer, CLMKeys: "ecdsa"})
	if err != nil {
		harnessFail("starting the reference server with bearer authentication: %v", err)
	}
	DeferCleanup(srv.Close)
	targets.securedKMSURL, targets.securedToken = serveLoopback(srv.Handler()), suiteToken
}

// Bounds of a KMS restart: the command's run, then the wait for the KMS to answer again.
const (
	restartCommandBound = 2 * time.Minute
	restartAnswerBound  = time.Minute
)

// restartKMS restarts the KMS under test: the in-process reference on its store, or an external
// KMS with CONF_KMS_RESTART (a shell command), after which it waits, bounded, until the KMS
// answers again. Without a way to restart, the test is not-applicable, naming the field.
func restartKMS() {
	switch {
	case conf.KMSURL == "" && targets.reference != nil:
		if err := targets.reference.restart(); err != nil {
			harnessFail("%v", err)
		}
		return
	case conf.KMSRestart == "":
		notApplicable("kms.restart (CONF_KMS_RESTART), a command that restarts the KMS, is not declared")
	}
	runRestart("KMS", "CONF_KMS_RESTART", conf.KMSRestart, func(client *http.Client) bool {
		req, _ := http.NewRequest(http.MethodPost, targets.kmsURL+kmswire.PathProvisioning, strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/json")
		if conf.KMSToken != "" {
			req.Header.Set("Authorization", "Bearer "+conf.KMSToken)
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
}

// runRestart runs a target's declared restart command (sh -c, bounded), then polls up (every
// 250 ms, bounded) until the target answers again; a command that fails, or a target that does
// not come back, is a harness error naming the variable.
func runRestart(target, variable, command string, up func(*http.Client) bool) {
	ctx, cancel := context.WithTimeout(context.Background(), restartCommandBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
	cmd.WaitDelay = time.Second // a server started in the background may keep the output open
	if err := cmd.Run(); err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		harnessFail("%s: %v", variable, err)
	}
	deadline := time.Now().Add(restartAnswerBound)
	client := &http.Client{Timeout: 5 * time.Second}
	for !up(client) {
		if time.Now().After(deadline) {
			harnessFail("the %s did not answer within %v of %s", target, restartAnswerBound, variable)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// server is the current server (a restart replaces it).
func (r *restartableReference) server() *reference.Server {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.srv
}
