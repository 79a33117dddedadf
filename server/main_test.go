package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/openapi"
	"github.com/shekit/shekit/openapi/openapitest"
)

func TestServerServesUntilStopped(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan int)
	go func() { done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-data", t.TempDir()}, pw, &stderr) }()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	url := strings.Fields(strings.TrimPrefix(line, "listening on "))[0]
	client, _ := validatingClient(t)
	resp, err := client.Post(url+"/app/automotive/supplierKeyProvisioning", "application/json",
		strings.NewReader(`{"ProvisioningType":"EcuMasterKey","KeyID":"1","EcuID":"010203040506070801020304000300010000000000000000000002"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ResultStatus":"Success"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if r, err := client.Get(url + "/healthz"); err != nil || r.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", r, err)
	}
	// The CLM on the same listener, with the demo license key.
	clmSpec, err := openapi.CLM()
	if err != nil {
		t.Fatal(err)
	}
	clmClient, _ := openapitest.NewClient(t, clmSpec, false)
	req, _ := http.NewRequest("POST", url+"/SWCLM/v10/IDInfo", strings.NewReader(`{"mode":"create","tenantid":"tenant01","alias":"DemoKey1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("secureware-clm", "demo-license")
	resp, err = clmClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var id struct{ Key string }
	json.NewDecoder(resp.Body).Decode(&id)
	resp.Body.Close()
	if resp.StatusCode != 201 || id.Key == "" {
		t.Fatalf("CLM IDInfo create with the demo license: %d", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
	if !strings.Contains(stderr.String(), `"msg":"kms request"`) || strings.Contains(stderr.String(), "EcuMasterKey\",\"KeyID") {
		t.Fatalf("log: %s", stderr.String())
	}
	if !strings.Contains(stderr.String(), `"msg":"clm request"`) || strings.Contains(stderr.String(), id.Key) {
		t.Fatalf("log (no CLM request, or the password in it): %s", stderr.String())
	}
}

// TestDemoCLMLicenseOnlyOnLoopback: off loopback the server needs a license key of its own.
func TestDemoCLMLicenseOnlyOnLoopback(t *testing.T) {
	var stderr bytes.Buffer
	dir := t.TempDir()
	ca := newPKI(t)
	cert, key := ca.issue(t, "kms", x509.ExtKeyUsageServerAuth)
	args := []string{"-auth", "bearer", "-listen", "0.0.0.0:0", "-data", t.TempDir(),
		"-tls-cert", writeFile(t, dir, "c.pem", cert), "-tls-key", writeFile(t, dir, "k.pem", key)}
	if code := run(context.Background(), args, io.Discard, &stderr); code != 2 || !strings.Contains(stderr.String(), "-clm-license") {
		t.Fatalf("exit %d, want 2 and a word about -clm-license: %s", code, stderr.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() { done <- run(ctx, append(args, "-clm-license", "a-license-key"), pw, io.Discard) }()
	if line, err := bufio.NewReader(pr).ReadString('\n'); err != nil || !strings.HasPrefix(line, "listening on ") {
		t.Fatalf("with -clm-license: %q %v", line, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestServerRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-listen", "0.0.0.0:8080"},
		{"-listen", ":8080"},
		{"-auth", "basic"},
		{"-auth", "mtls", "-listen", "127.0.0.1:0"},
		{"-registry", "/nonexistent.yaml"},
		{"-bogus"},
		{"-clm-key", "dsa"},
		{"-clm-ca-key", "ed25519"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), append(args, "-data", t.TempDir()), io.Discard, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:8080", "")
	token := fs.String("admin-token", "", "")
	fs.Parse([]string{"-listen", "127.0.0.1:9"})
	env := map[string]string{"SHEKIT_LISTEN": "0.0.0.0:1", "SHEKIT_ADMIN_TOKEN": "from-env"}
	if err := flagsFromEnv(fs, func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if *listen != "127.0.0.1:9" || *token != "from-env" {
		t.Fatalf("listen %q (the command line wins), token %q (from the environment)", *listen, *token)
	}
}
