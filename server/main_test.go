package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
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
}

func TestServerRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-listen", "0.0.0.0:8080"},
		{"-listen", ":8080"},
		{"-auth", "basic"},
		{"-auth", "mtls", "-listen", "127.0.0.1:0"},
		{"-registry", "/nonexistent.yaml"},
		{"-bogus"},
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
