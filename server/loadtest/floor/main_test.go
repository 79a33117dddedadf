package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
)

// request is the load command's supplierKeyProvisioning request for an ECU.
const request = `{"ProvisioningType":"EcuMasterKey","KeyID":"1","EcuID":"010203040506070801020304000300010000000000000000000001"}`

func post(t *testing.T, h http.Handler) (string, http.Header) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Post(srv.URL+kms.PathProvisioning, "application/json", strings.NewReader(request))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %v %s", resp.StatusCode, err, b)
	}
	return string(b), resp.Header
}

// shape is a KMS answer with its values' lengths in place of its values.
func shape(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	return lengths(m)
}

func lengths(m map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		switch v := v.(type) {
		case string:
			out[k] = len(v)
		case map[string]any:
			out[k] = lengths(v)
		default:
			out[k] = v
		}
	}
	return out
}

// TestFloorAnswersAsTheReferenceServer: the floor's answer to the load command's request has the
// reference server's size, fields and value lengths (its M1–M5 differ: the server's root keys are
// its own), and its Content-Type.
func TestFloorAnswersAsTheReferenceServer(t *testing.T) {
	ref, err := reference.New(context.Background(), reference.Config{DataDir: t.TempDir(), CLMKeys: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	want, wantHeader := post(t, ref.Handler())
	got, gotHeader := post(t, handler())
	if !strings.Contains(want, `"ResultStatus":"Success"`) || !strings.Contains(got, `"ResultStatus":"Success"`) {
		t.Fatalf("want two successes:\n%s\n%s", got, want)
	}
	if len(got) != len(want) {
		t.Errorf("answer of %d bytes, the reference server's %d:\n%s\n%s", len(got), len(want), got, want)
	}
	if g, w := shape(t, got), shape(t, want); !jsonEqual(g, w) {
		t.Errorf("answer %v, the reference server's %v", g, w)
	}
	if g, w := gotHeader.Get("Content-Type"), wantHeader.Get("Content-Type"); g != w {
		t.Errorf("Content-Type %q, the reference server's %q", g, w)
	}
}

func jsonEqual(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// TestFloorReportsItsCPU: /metrics has the process_cpu_seconds_total the load command reads.
func TestFloorReportsItsCPU(t *testing.T) {
	srv := httptest.NewServer(handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !slices.ContainsFunc(strings.Split(string(b), "\n"), func(l string) bool {
		return strings.HasPrefix(l, "process_cpu_seconds_total ")
	}) {
		t.Fatalf("no process_cpu_seconds_total in /metrics:\n%s", b)
	}
}

// TestFloorListensOnLoopbackOnly: a non-loopback address is refused.
func TestFloorListensOnLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:18090", ":18090", "example.com:80", "192.0.2.1:80", "nonsense",
		"localhost:18090", "[::1%lo]:18090", "127.0.0.1"} {
		if loopbackOnly(addr) == nil {
			t.Errorf("%s: taken", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:18090", "[::1]:18090", "[::ffff:127.0.0.1]:18090"} {
		if err := loopbackOnly(addr); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}
