package console_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/simulator/station"
	"github.com/shekit/shekit/vcan"
)

// chromiumPath returns Debian's chromium (or another Chromium or Chrome on PATH). Without one
// the test skips, or fails when SHEKIT_REQUIRE_CHROMIUM=1 (make test-host sets it).
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SHEKIT_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("no chromium on PATH: install Debian's chromium (vcan/vm-test-deps.sh does, as root)")
	}
	t.Skip("no chromium on PATH (set SHEKIT_REQUIRE_CHROMIUM=1 to fail instead)")
	return ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// browser is a headless Chromium at 1280 px driven through the console of srv.
type browser struct {
	t       *testing.T
	ctx     context.Context
	base    string
	secrets []string // no page may contain any of them
	shots   string   // the directory screenshots go to ("" for none)
}

func newBrowser(t *testing.T, base string, width int) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(width, 900))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, without a deadline (it would stop it)
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{t: t, ctx: ctx, base: base, shots: os.Getenv("SHEKIT_CONSOLE_SCREENSHOTS")}
}

// actionTimeout bounds one step in the browser: generous, for a loaded 2-core machine.
const actionTimeout = 2 * time.Minute

// run runs browser steps, failing the test with what was being done.
func (b *browser) run(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// get runs one browser action that returns a value.
func get[T any](b *browser, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, actionTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// page returns the current page's HTML after checking that no known secret is in it.
func (b *browser) page(what string) string {
	b.t.Helper()
	b.run(what+": wait for the page", chromedp.WaitReady(chromedp.CSS("main")))
	html := get(b, what+": read the page", chromedp.OuterHTML(chromedp.CSS("html")))
	loc := get(b, what+": read the location", chromedp.Location())
	for _, s := range b.secrets {
		if strings.Contains(strings.ToLower(html), strings.ToLower(s)) {
			b.t.Fatalf("%s: page %s shows a secret", what, loc)
		}
	}
	return html
}

// visit opens a console path and returns its HTML (checked for secrets).
func (b *browser) visit(path string) string {
	b.t.Helper()
	b.run("open "+path, chromedp.Navigate(b.base+path))
	return b.page(path)
}

// shot saves a full-page screenshot (PNG: quality 100) of the current page as name.png into
// $SHEKIT_CONSOLE_SCREENSHOTS, when set (README's pictures: docs/console).
func (b *browser) shot(name string) {
	b.t.Helper()
	if b.shots == "" {
		return
	}
	png := get(b, "screenshot "+name, chromedp.FullScreenshot(100))
	if err := os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// text returns the text of the first element sel matches, once visible.
func (b *browser) text(sel string) string {
	b.t.Helper()
	b.run("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
	return get(b, "read "+sel, chromedp.Text(chromedp.CSS(sel)))
}

// consoleServer starts a reference server with bearer authentication and the console.
func consoleServer(t testing.TB, adminToken string) (*reference.Server, *httptest.Server) {
	srv, err := reference.New(context.Background(), reference.Config{DataDir: t.TempDir(), Auth: kms.AuthBearer,
		AdminToken: adminToken, Console: true, CLMKeys: "ecdsa", RequestTimeout: time.Minute}) // deadline as the server command has one
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Close() })
	return srv, ts
}

// provision runs the station against n simulated ECUs (UIDs from base) on an in-memory bus.
func provision(t *testing.T, kmsURL, token, secret string, base she.UID, n int) *station.Summary {
	hub := vcan.NewHub()
	fleet, err := ecu.StartFleet(context.Background(), ecu.HubDialer(hub), ecu.Config{UID: base}, n)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { fleet.Stop(); hub.Close() }()
	var targets []station.Target
	for i := range n {
		req, resp, _ := ecu.FleetIDs(i, n)
		c, err := ecu.Dial(ecu.HubDialer(hub), req, resp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		targets = append(targets, station.Target{Name: fmt.Sprintf("%#x:%#x", req, resp), Client: c})
	}
	keys, err := station.ParseKeys("master,secoc:4")
	if err != nil {
		t.Fatal(err)
	}
	cfg := station.Config{KMS: &station.KMS{URL: kmsURL, Token: token}, Keys: keys, SupplierSecretKey: secret,
		ClusterID: [8]byte{0xc1}, Model: [4]byte{0x4d}, StepTimeout: 30 * time.Second, Retries: -1}
	return station.Run(context.Background(), cfg, targets)
}

// httpServer serves a reference server's handler on a loopback port.
func httpServer(srv *reference.Server) *httptest.Server { return httptest.NewServer(srv.Handler()) }
