package clm_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shekit/shekit/server/clm"
)

// TestTenancy: a keyid sees only the devices, certificates and keys created through it.
func TestTenancy(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newRig(t, b, "ecdsa")
		w := r.world(t)
		otherID, otherKey := r.newID(t, "tenant02")
		other := `"keyid":"` + otherID + `","key":"` + otherKey + `"`
		r.mustCall(t, "POST", clm.PathKeyInfo, `{"mode":"get",`+other+`,`+w.dev()+`,"keynumber":"`+w.key1+`","filepath":"/f"}`, 404, 1706)
		// With a device of its own, the other tenant still does not find the first one's key or certificate.
		out := r.mustCall(t, "POST", clm.PathKeyInfo, `{"mode":"create",`+other+`,"devicename":"edge","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, 201, 0)
		dev := `"deviceid":"` + out["deviceid"].(string) + `","devicename":"edge"`
		r.mustCall(t, "POST", clm.PathKeyInfo, `{"mode":"get",`+other+`,`+dev+`,"keynumber":"`+w.key1+`","filepath":"/f"}`, 404, 1501)
		r.mustCall(t, "POST", clm.PathCredInfo, `{"mode":"get",`+other+`,`+dev+`,"keynumber":"`+w.cert1+`","catype":"ca1","filepath":"/k"}`, 404, 1301)
		// The same device name may exist once per tenant.
		r.mustCall(t, "POST", clm.PathKeyInfo, `{"mode":"create",`+w.auth()+`,"devicename":"edge","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, 400, 1702)
	})
}

// TestLicense: every endpoint wants the license key: without it, 401 with a Basic challenge
// and errorcode 1201.
func TestLicense(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newRig(t, b, "ecdsa")
		for _, p := range []string{clm.PathIDInfo, clm.PathSystemStatus, "/SWCLM/v10/crl/ca1"} {
			for _, pass := range []string{"", "wrong"} {
				req, _ := http.NewRequest("GET", r.URL+p, nil)
				if pass != "" {
					req.SetBasicAuth(clm.LicenseUser, pass)
				}
				resp, err := r.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				var out map[string]any
				json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if resp.StatusCode != 401 || out["errorcode"] != float64(1201) || resp.Header.Get("WWW-Authenticate") != `Basic realm="SecureWare/CLM"` {
					t.Errorf("%s with license %q: %d %v", p, pass, resp.StatusCode, out)
				}
			}
		}
	})
}

// FuzzCLMRequest sends arbitrary bodies to the CLM's POST endpoints, on every backend. It must never panic, and
// always answer errorcode 0 or a code of the document's table, with the table's HTTP status.
func FuzzCLMRequest(f *testing.F) {
	f.Add(uint8(0), []byte(`{"mode":"create","tenantid":"t","alias":"a"}`))
	f.Add(uint8(1), []byte(`{"mode":"create","keyid":"0000000001","key":"x","devicename":"d","certmode":"client","catype":"ca1","clientsubject":"/CN=a","keyfilepath":"/tmp/key","cafilepath":"/c","clientfilepath":"/k"}`))
	f.Add(uint8(2), []byte(`{"mode":"update","keyid":"0000000001","key":"x","deviceid":"d","devicename":"d","keynumber":"1","newkeynumber":"2","filepath":"/f"}`))
	f.Add(uint8(2), []byte(`{"mode":"create","ext_data":{"a":1},"keylength":"80","keytype":"TWINE"}`))
	f.Add(uint8(0), []byte(`[]`))
	f.Add(uint8(0x82), []byte(`{"mode":"create","keyid":"0000000001","key":"x","devicename":"a\u0000b","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`))
	// A rig on every backend; each input goes to each.
	type target struct {
		r          *rig
		keyid, key string
	}
	var targets []target
	for _, b := range backends(f) {
		r := newRig(f, b, "ecdsa")
		keyid, key := r.newID(f, "fuzz")
		targets = append(targets, target{r, keyid, key})
	}
	codes := clm.Codes()
	paths := []string{clm.PathIDInfo, clm.PathCredInfo, clm.PathKeyInfo}
	f.Fuzz(func(t *testing.T, which uint8, input []byte) {
		for _, tg := range targets {
			fuzzOne(t, tg.r, tg.keyid, tg.key, codes, paths[int(which&0x7F)%len(paths)], which&0x80 != 0, input)
		}
	})
}

// fuzzOne sends one fuzzed body to path (with the rig's real ID when withID) and checks the
// answer.
func fuzzOne(t *testing.T, r *rig, keyid, key string, codes map[int]int, path string, withID bool, body []byte) {
	// Half the time, with a real ID so that the checks after authentication are reached.
	if withID {
		body = bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("0000000001"), []byte(keyid)), []byte(`"key":"x"`), []byte(`"key":"`+key+`"`))
	}
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	req.SetBasicAuth(clm.LicenseUser, license)
	req.Header.Set("Content-Type", "application/json")
	in, contractErr := r.spec.CheckRequest(req, body)
	rec := httptest.NewRecorder()
	r.svc.Handler().ServeHTTP(rec, req)
	if err := r.spec.CheckResponse(in, rec.Code, rec.Header(), rec.Body.Bytes()); err != nil {
		t.Fatalf("%s: answer %d %s breaks openapi/clm.yaml: %v", r.backend.name, rec.Code, rec.Body, err)
	}
	if rec.Code < 300 && contractErr != nil {
		t.Fatalf("%s: accepted %q, which breaks openapi/clm.yaml: %v", r.backend.name, body, contractErr)
	}
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: answer is not JSON: %q", r.backend.name, rec.Body.String())
	}
	code, ok := out["errorcode"].(float64)
	switch {
	case !ok:
		t.Fatalf("%s: no errorcode: %v", r.backend.name, out)
	case code == 0 && rec.Code >= 300:
		t.Fatalf("%s: errorcode 0 with status %d", r.backend.name, rec.Code)
	case code != 0 && codes[int(code)] != rec.Code:
		t.Fatalf("%s: errorcode %v with status %d, the table says %d", r.backend.name, code, rec.Code, codes[int(code)])
	case code >= 1600 && code < 1700, code == 2003:
		t.Fatalf("%s: internal errorcode %v for a client's request %q", r.backend.name, code, body)
	}
}

// TestDeviceNames: any device name of the document's length works on every store, one with a
// slash or non-ASCII text included, and stays unique per ID; U+0000 in a parameter is refused
// (1103), and a keyid query holding it finds nothing.
func TestDeviceNames(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newRig(t, b, "ecdsa")
		keyid, key := r.newID(t, "t")
		auth := `"keyid":"` + keyid + `","key":"` + key + `"`
		for _, name := range []string{"edge", "edge/01", "車載-ECU", "0000000001/edge"} {
			body := `{"mode":"create",` + auth + `,"devicename":"` + name + `","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`
			r.mustCall(t, "POST", clm.PathKeyInfo, body, 201, 0)
			r.mustCall(t, "POST", clm.PathKeyInfo, body, 400, 1702)
		}
		r.mustCall(t, "POST", clm.PathKeyInfo, `{"mode":"create",`+auth+`,"devicename":"a\u0000b","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, 400, 1103)
		r.mustCall(t, "POST", clm.PathIDInfo, `{"mode":"create","tenantid":"t\u0000","alias":"a"}`, 400, 1103)
		out := r.mustCall(t, "GET", clm.PathIDInfo+"?keyid=%00"+keyid, "", 200, 0)
		if n := len(out["keyinfo"].([]any)); n != 0 {
			t.Fatalf("keyid with U+0000 found %d IDs", n)
		}
		out = r.mustCall(t, "GET", clm.PathIDInfo+"?keyid=%FF", "", 200, 0)
		if n := len(out["keyinfo"].([]any)); n != 0 {
			t.Fatalf("keyid that is not UTF-8 found %d IDs", n)
		}
	})
}

// TestKeyLength: a keylength that is a number the key type does not allow is 1104 (a
// parameter's specification); one that is not a number is 1103.
func TestKeyLength(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newRig(t, b, "ecdsa")
		keyid, key := r.newID(t, "t")
		for _, c := range []struct {
			typ, length string
			status      int
			code        float64
		}{{"AES", "100", 400, 1104}, {"TWINE", "256", 400, 1104}, {"AES", "0", 400, 1104}, {"AES", "12x", 400, 1103}, {"AES", "256", 201, 0}, {"TWINE", "80", 201, 0}} {
			r.mustCall(t, "POST", clm.PathKeyInfo, `{"mode":"create","keyid":"`+keyid+`","key":"`+key+`","devicename":"d`+c.typ+c.length+
				`","alias":"k","keytype":"`+c.typ+`","keylength":"`+c.length+`","keyfilepath":"/tmp/key","commonkeyfilepath":"/f"}`, c.status, c.code)
		}
	})
}

// TestRequestBounds: ext_data of more than 32 items or 8 KiB, and a body over 64 KiB, are 1104
// and change nothing; ext_data within the bounds is accepted.
func TestRequestBounds(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newRig(t, b, "ecdsa")
		keyid, key := r.newID(t, "t")
		create := func(name, ext string) string {
			return `{"mode":"create","keyid":"` + keyid + `","key":"` + key + `","devicename":"` + name +
				`","alias":"k","keytype":"AES","keyfilepath":"/tmp/key","commonkeyfilepath":"/f","ext_data":{` + ext + `}}`
		}
		items := func(n, size int) string {
			var parts []string
			for i := range n {
				parts = append(parts, fmt.Sprintf(`"n%03d":"%s"`, i, strings.Repeat("v", size)))
			}
			return strings.Join(parts, ",")
		}
		r.mustCall(t, "POST", clm.PathKeyInfo, create("many", items(33, 1)), 400, 1104)
		r.mustCall(t, "POST", clm.PathKeyInfo, create("large", items(32, 256)), 400, 1104) // 32 × 260 bytes
		r.mustCall(t, "POST", clm.PathKeyInfo, create("huge", `"a":"b"`)+strings.Repeat(" ", 64<<10), 400, 1104)
		before := len(r.auditLog(t))
		r.mustCall(t, "POST", clm.PathKeyInfo, create("fits", items(32, 200)), 201, 0) // 32 × 204 bytes
		for _, name := range []string{"many", "large", "huge"} {
			r.mustCall(t, "POST", clm.PathKeyInfo, create(name, ""), 201, 0) // the names were not taken
		}
		if got := len(r.auditLog(t)) - before; got != 8 {
			t.Fatalf("%d audit entries for four accepted creates, want 8", got)
		}
	})
}

// TestIDListInPages: GET IDInfo lists every ID, in keyid order, with its password, read from the
// store a page at a time (here 2), whatever the number of IDs relative to the page.
func TestIDListInPages(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newRig(t, b, "ecdsa", func(c *clm.Config) { c.IDPage = 2 })
		want := map[string]string{}
		var order []string
		for n := range 5 {
			out := r.mustCall(t, "GET", clm.PathIDInfo, "", 200, 0)
			infos := out["keyinfo"].([]any)
			if len(infos) != n || len(out) != 2 {
				t.Fatalf("%d IDs: answer %v", n, out)
			}
			for i, info := range infos {
				m := info.(map[string]any)
				if m["keyid"] != order[i] || m["key"] != want[order[i]] || m["tenantid"] != "t"+order[i] {
					t.Fatalf("%d IDs: entry %d is %v, want keyid %s", n, i, m, order[i])
				}
			}
			keyid, key := r.newID(t, "t"+fmt.Sprintf("%010d", n+1))
			want[keyid] = key
			order = append(order, keyid)
		}
	})
}

// TestIDListCutOff: when the store fails after the first page of GET IDInfo, the answer is cut
// off: the client never gets a short list that looks whole (an answer cut off before any byte
// was sent is retried by Go's client, and then refused with 1602, since the store is down).
func TestIDListCutOff(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		r := newRig(t, b, "ecdsa", func(c *clm.Config) { c.IDPage = 2 })
		for i := range 60 {
			r.newID(t, fmt.Sprint("t", i))
		}
		// 25 pages (50 IDs, more than the 4 KiB net/http buffers: the answer has begun) are
		// read; the next read fails.
		r.store.viewsLeft.Store(25)
		req, _ := http.NewRequest("GET", r.URL+clm.PathIDInfo, nil)
		req.SetBasicAuth(clm.LicenseUser, license)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return // cut off before the headers came: no answer at all
		}
		defer resp.Body.Close()
		var out map[string]any
		body, readErr := io.ReadAll(resp.Body)
		complete := readErr == nil && json.Unmarshal(body, &out) == nil
		if resp.StatusCode == 200 && complete {
			t.Fatalf("a failed listing answered 200 with complete JSON of %d bytes", len(body))
		}
		if resp.StatusCode == 200 && !strings.HasPrefix(string(body), `{"errorcode":0,"keyinfo":[{`) {
			t.Fatalf("a cut-off listing does not begin as the answer: %.100s", body)
		}
		if resp.StatusCode != 200 && (resp.StatusCode != 500 || out["errorcode"] != float64(1602)) {
			t.Fatalf("a failed listing answered %d %s", resp.StatusCode, body)
		}
	})
}
