package console_test

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestNarrowAndKeyboard: at 390 px wide no page is wider than the screen (wide tables scroll in
// their own box); the keyboard alone signs in (the token field has the focus, Enter submits);
// the skip link takes the focus.
func TestNarrowAndKeyboard(t *testing.T) {
	adminToken := randomHex(32)
	srv, ts := consoleServer(t, adminToken)
	seedAudit(t, srv, 3)
	b := newBrowser(t, ts.URL, 390)
	b.secrets = append([]string{adminToken}, demoSecrets...)
	b.run("emulate a phone's screen", chromedp.EmulateViewport(390, 800))
	b.visit("/console/login")
	b.run("sign in with the keyboard", chromedp.KeyEvent(adminToken),
		chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#add-supplier")))
	focused := get(b, "focus the skip link", chromedp.Evaluate[string](
		`(() => { document.querySelector('.skip').focus(); return document.activeElement.textContent; })()`))
	if focused != "Skip to content" {
		t.Fatalf("focused %q, want the skip link", focused)
	}
	for _, p := range []string{"/console/suppliers", "/console/suppliers/001D", "/console/ecus", "/console/ecus/000100010000000000000000000001",
		"/console/audit", "/console/numbers", "/console/clm", "/console/clm/certs"} {
		b.visit(p)
		if wide := get(b, "measure "+p, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); wide {
			t.Errorf("%s is wider than a 390 px screen", p)
		}
	}
	b.visit("/console/audit")
	b.shot("audit-narrow")
}
