package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/simulator/station"
)

// demoSecrets are the demo registry's SupplierSecretKeys (registered in every test server).
var demoSecrets = []string{"1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d", "01010101010101010101010101010101"}

// TestConsoleInChromium drives the console in Chromium through whole flows: sign in; add a
// supplier (a refused one first, with the admin API's message) and an ECU type; provision a
// simulated fleet through the station; find an ECU and see its injected slots; the audit log and
// the numbers; rotate the supplier's token and see the old one refused by the API; a change
// without the CSRF token refused; and no known secret in any page's HTML.
func TestConsoleInChromium(t *testing.T) {
	adminToken := randomHex(32)
	_, ts := consoleServer(t, adminToken)
	secret, tokenA, tokenB, master := randomHex(16), randomHex(24), randomHex(24), randomHex(16)
	b := newBrowser(t, ts.URL, 1280)
	b.secrets = append([]string{adminToken, secret, tokenA, tokenB, master}, demoSecrets...)

	b.visit("/console/login")
	b.shot("login")
	b.run("sign in with a wrong token", chromedp.SendKeys(chromedp.CSS("#token"), "wrong"), chromedp.Click(chromedp.CSS("#signin")))
	if got := b.text("#error"); got != "the admin token is missing or wrong" {
		t.Fatalf("wrong token: %q", got)
	}
	b.run("sign in", chromedp.SendKeys(chromedp.CSS("#token"), adminToken), chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#add-supplier")))
	if html := b.page("suppliers"); !strings.Contains(html, "001D") || !strings.Contains(html, "Demo supplier 0001") {
		t.Fatal("the suppliers page lacks the demo suppliers")
	}

	// A supplier the admin API refuses (a secret key too short: its message quotes the value,
	// which the page leaves out), then the same corrected.
	b.run("add a supplier", chromedp.Click(chromedp.CSS("#add-supplier")), chromedp.WaitVisible(chromedp.CSS("#supplier-form")),
		chromedp.SendKeys(chromedp.CSS("#id"), "0abc"), chromedp.SendKeys(chromedp.CSS("#name"), "Plant supplier"),
		chromedp.SendKeys(chromedp.CSS("#secretKey"), "00ff"), chromedp.SendKeys(chromedp.CSS("#token"), tokenA),
		chromedp.Click(chromedp.CSS("#save")))
	if got, want := b.text("#error"), `supplier: supplier 0ABC: secretKey: key "(the value given)": want 32 hex digits`; got != want {
		t.Fatalf("refused supplier: %q, want the admin API's %q with the typed value left out", got, want)
	}
	b.run("correct the supplier", chromedp.SendKeys(chromedp.CSS("#secretKey"), secret), chromedp.SendKeys(chromedp.CSS("#token"), tokenA),
		chromedp.Click(chromedp.CSS("#save")), chromedp.WaitVisible(chromedp.CSS("#done")))
	if html := b.page("supplier 0ABC"); !strings.Contains(html, "SupplierSecretKey: set") || !strings.Contains(html, "Bearer token: set") {
		t.Fatal("the supplier page does not say its secret key and token are set")
	}
	b.run("add an ECU type", chromedp.Click(chromedp.CSS("#add-type")), chromedp.WaitVisible(chromedp.CSS("#type-form")),
		chromedp.SendKeys(chromedp.CSS("#type"), "0007"), chromedp.Click(chromedp.CSS("#key-1")), chromedp.Click(chromedp.CSS("#key-4")),
		chromedp.SendKeys(chromedp.CSS("#clusters"), "*"), chromedp.SendKeys(chromedp.CSS("#initialMasterKey"), master),
		chromedp.Click(chromedp.CSS("#save")), chromedp.WaitVisible(chromedp.CSS("#done")))
	html := b.page("supplier 0ABC with its type")
	if !strings.Contains(html, ">0007<") || !strings.Contains(html, "1, 4") {
		t.Fatal("the supplier page lacks ECU type 0007 with KeyIDs 1, 4")
	}
	b.shot("supplier")

	// The station provisions three ECUs of the new type; the master key slot starts with the
	// type's initial master key, as the simulated ECUs' does not: set it to all zero again.
	b.visit("/console/suppliers/0ABC/types/0007")
	b.shot("ecutype")
	base := she.UID{0x00, 0x07, 0x0a, 0xbc, 14: 0x01}
	failed := provision(t, ts.URL, tokenA, secret, base, 1)
	if failed.Totals.Keys[station.Injected] != 0 {
		t.Fatalf("an ECU with an empty master key slot took a key made for the type's initial master key: %+v", failed.Totals)
	}
	b.run("clear the initial master key", chromedp.Navigate(ts.URL+"/console/suppliers/0ABC/types/0007"),
		chromedp.SendKeys(chromedp.CSS("#initialMasterKey"), strings.Repeat("0", 32)), chromedp.Click(chromedp.CSS("#save")),
		chromedp.WaitVisible(chromedp.CSS("#done")))
	base[10] = 0x02
	sum := provision(t, ts.URL, tokenA, secret, base, 3)
	if sum.Totals.Keys[station.Injected] != 6 {
		t.Fatalf("the station injected %d keys, want 6: %+v", sum.Totals.Keys[station.Injected], sum.Totals)
	}

	// Find the second ECU by its UID's prefix and see both its slots injected.
	b.run("search ECUs", chromedp.Navigate(ts.URL+"/console/ecus"), chromedp.SendKeys(chromedp.CSS("#q"), "00070abc"),
		chromedp.Click(chromedp.CSS("#search")), chromedp.WaitVisible(chromedp.CSS(`#ecu-list[data-q="00070abc"] a`)))
	list := b.text("#ecu-list")
	for i := 1; i <= 3; i++ {
		want := strings.ToLower(hexUID(base, i))
		if !strings.Contains(list, want) {
			t.Fatalf("the search lists %q, lacking %s", list, want)
		}
	}
	b.shot("ecus")
	second := hexUID(base, 2)
	b.visit("/console/ecus/" + second)
	slots := b.text("#slots")
	if strings.Count(slots, "injected") != 2 || !strings.Contains(slots, "supplier:0ABC") {
		t.Fatalf("ECU %s: slots %q, want two injected by supplier:0ABC", second, slots)
	}
	b.shot("ecu")
	html = b.visit("/console/audit?uid=" + second)
	if strings.Count(html, "result:EcuMasterKey") != 1 || strings.Count(html, "result:SecOCKey") != 1 {
		t.Fatal("the audit page filtered by the ECU's UID lacks its two results")
	}
	b.visit("/console/audit")
	b.shot("audit")
	html = b.visit("/console/numbers")
	if issued := b.text("#issued"); issued != "8" { // 6 injected, and the 2 the first ECU refused
		t.Fatalf("counters issued: %q, want 8", issued)
	}
	b.shot("numbers")

	// Rotate the token: the old one is refused by the KMS API from then on, the new one works.
	b.run("rotate the token", chromedp.Navigate(ts.URL+"/console/suppliers/0ABC"), chromedp.SendKeys(chromedp.CSS("#token"), tokenB),
		chromedp.Click(chromedp.CSS("#save")), chromedp.WaitVisible(chromedp.CSS("#done")))
	b.page("supplier after the rotation")
	base[10] = 0x03
	if sum := provision(t, ts.URL, tokenA, secret, base, 1); sum.Totals.Keys[station.Injected] != 0 || !strings.Contains(sum.ECUs[0].Keys[0].Message, "(UNAUTHORIZED)") {
		t.Fatalf("the old token was not refused: %+v", sum.ECUs[0].Keys)
	}
	if sum := provision(t, ts.URL, tokenB, secret, base, 1); sum.Totals.Keys[station.Injected] != 2 {
		t.Fatalf("the new token: %+v", sum.ECUs[0].Keys)
	}

	csrfRefused(t, b, ts.URL)

	// Delete the ECU type, with a confirmation first.
	b.run("ask to delete the type", chromedp.Navigate(ts.URL+"/console/suppliers/0ABC/types/0007"),
		chromedp.Click(chromedp.CSS("#delete-type")), chromedp.WaitVisible(chromedp.CSS("#question")))
	b.page("delete confirmation")
	b.shot("confirm")
	b.run("confirm", chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#done")))
	if html := b.page("supplier without its type"); strings.Contains(html, ">0007<") {
		t.Fatal("ECU type 0007 is still listed after its deletion")
	}
}

// hexUID is the UID of the fleet's ECU i (1-based), as the console writes it.
func hexUID(base she.UID, i int) string {
	u := base
	u[11], u[12], u[13], u[14] = 0, 0, 0, byte(i) // ecu.FleetUID's numbering
	return u.String()
}

// csrfRefused posts a change with the browser's own session cookie but no CSRF token (and with
// a wrong one): 403, and the supplier is still there.
func csrfRefused(t *testing.T, b *browser, base string) {
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/console/"}})
	if err != nil {
		t.Fatalf("read the session cookie: %v", err)
	}
	var session *network.Cookie
	for _, c := range res.Cookies {
		if c.Name == "shekit_console" {
			session = c
		}
	}
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie: %+v, want HttpOnly and SameSite=Strict", session)
	}
	for _, form := range []url.Values{{}, {"csrf": {"forged"}}} {
		req, _ := http.NewRequest(http.MethodPost, base+"/console/suppliers/0ABC/delete", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: session.Name, Value: session.Value})
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a delete with csrf=%q: %s, want 403", form.Get("csrf"), resp.Status)
		}
	}
	if html := b.visit("/console/suppliers"); !strings.Contains(html, "0ABC") {
		t.Fatal("supplier 0ABC is gone after refused deletes")
	}
}
