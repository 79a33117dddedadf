package report

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/onsi/ginkgo/v2/types"
	"go.yaml.in/yaml/v3"
)

func spec(containers []string, text string, labels []string, state types.SpecState, msg string) types.SpecReport {
	return types.SpecReport{
		LeafNodeType:            types.NodeTypeIt,
		ContainerHierarchyTexts: containers,
		LeafNodeText:            text,
		LeafNodeLabels:          labels,
		State:                   state,
		RunTime:                 1500 * time.Millisecond,
		Failure: types.Failure{
			Message:  msg,
			Location: types.CodeLocation{FileName: "/src/kms_test.go", LineNumber: 42},
		},
	}
}

func exchange(v any) types.ReportEntry {
	return types.ReportEntry{Name: ExchangeEntry, Value: types.WrapEntryValue(v)}
}

func testReport() types.Report {
	failed := spec([]string{"KMS", "keys"}, "rejects bad MAC", []string{"kms", "target-kms"}, types.SpecStateFailed, "Expected 1 to equal 2")
	failed.ReportEntries = types.ReportEntries{
		exchange("POST /v1/keys\nAuthorization: Bearer t0ken\n{\"password\":\"x\",\"KeyID\":\"1\"}"),
		{Name: "other", Value: types.WrapEntryValue("not an exchange")},
	}
	passed := spec([]string{"KMS"}, "loads a key", []string{"slow", "kms", "target-kms"}, types.SpecStatePassed, "")
	passed.ReportEntries = types.ReportEntries{exchange("GET /v1/keys -> 200")}
	harness := spec([]string{"ECU"}, "talks CAN", []string{"ecu", "target-ecu"}, types.SpecStateFailed, HarnessPrefix+"no interface vcan0")
	harness.ReportEntries = types.ReportEntries{exchange("candump vcan0")}
	return types.Report{
		SuiteDescription: "SHE kit conformance",
		StartTime:        time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC),
		RunTime:          90 * time.Second,
		SpecReports: types.SpecReports{
			{LeafNodeType: types.NodeTypeBeforeSuite, State: types.SpecStatePassed},
			passed,
			failed,
			harness,
			spec(nil, "skipped one", []string{"clm", "target-clm"}, types.SpecStateSkipped, "no CLM server"),
			spec(nil, "pending one", []string{"vectors", "self-test"}, types.SpecStatePending, ""),
			spec(nil, "absent feature", []string{"kms", "target-kms"}, types.SpecStateSkipped, NotApplicablePrefix+"declared without Phase"),
			spec(nil, "<script>alert(1)</script> & co", nil, types.SpecStatePanicked, "Test Panicked"),
			spec(nil, "interrupted", []string{"e2e", "target-station"}, types.SpecStateInterrupted, "interrupted by user"),
			spec(nil, "aborted", []string{"e2e", "target-station"}, types.SpecStateAborted, "aborted"),
			spec(nil, "timed out", []string{"e2e", "target-station"}, types.SpecStateTimedout, "timeout"),
			{LeafNodeType: types.NodeTypeBeforeEach, State: types.SpecStateFailed},
			{LeafNodeType: types.NodeTypeSynchronizedBeforeSuite, State: types.SpecStateFailed,
				Failure: types.Failure{Message: "cannot start server, SupplierSecretKey=abcd1234"}},
		},
	}
}

var suites = []string{"kms", "clm", "ecu", "e2e", "vectors"}

// sectionTable maps test names to sections.
type sectionTable map[string]string

func (s sectionTable) get(name string) string { return s[name] }

func build(t *testing.T) Results {
	t.Helper()
	red := NewRedactor([]string{"sup3rs3cret"}, []string{"KeyID"})
	return Build(testReport(), suites, sectionTable{"KMS / loads a key": "5.2"}.get,
		map[string]string{"url": "http://kms", "token": "abc", "note": "uses sup3rs3cret"}, red)
}

func TestBuildOutcomes(t *testing.T) {
	res := build(t)
	want := []struct {
		suite, name string
		out         Outcome
		target      string
	}{
		// failures first, then errors (setup, by target, unassigned last), skips, not-applicable, passes
		{"kms", "KMS / keys / rejects bad MAC", Fail, "kms"},
		{"setup", "SynchronizedBeforeSuite", Error, "setup"},
		{"ecu", "ECU / talks CAN", Error, "ecu"},
		{"e2e", "aborted", Error, "station"},
		{"e2e", "interrupted", Error, "station"},
		{"e2e", "timed out", Error, "station"},
		{"other", "<script>alert(1)</script> & co", Error, ""},
		{"clm", "skipped one", Skip, "clm"},
		{"vectors", "pending one", Skip, "self-test"},
		{"kms", "absent feature", NotApplicable, "kms"},
		{"kms", "KMS / loads a key", Pass, "kms"},
	}
	if len(res.Tests) != len(want) {
		t.Fatalf("got %d tests, want %d: %+v", len(res.Tests), len(want), res.Tests)
	}
	for i, w := range want {
		g := res.Tests[i]
		if g.Suite != w.suite || g.Name != w.name || g.Outcome != w.out || g.Target != w.target {
			t.Errorf("test %d = %q/%q/%s/%q, want %q/%q/%s/%q", i, g.Suite, g.Name, g.Outcome, g.Target, w.suite, w.name, w.out, w.target)
		}
	}
	wantTotals := map[Outcome]int{Pass: 1, Fail: 1, Skip: 2, NotApplicable: 1, Error: 6}
	if !reflect.DeepEqual(res.Totals, wantTotals) {
		t.Errorf("totals = %v, want %v", res.Totals, wantTotals)
	}
	if !res.Failed() {
		t.Error("Failed() = false, want true")
	}
	passed, failed := res.Tests[10], res.Tests[0]
	if res.Suite != "SHE kit conformance" || res.Seconds != 90 || passed.Duration != 1.5 {
		t.Errorf("suite/seconds/duration = %q/%v/%v", res.Suite, res.Seconds, passed.Duration)
	}
	if passed.Section != "5.2" || failed.Section != "" {
		t.Errorf("sections = %q, %q", passed.Section, failed.Section)
	}
	if m := res.Tests[7].Message; m != "no CLM server" {
		t.Errorf("skip message = %q", m)
	}
	if m := res.Tests[9].Message; m != "declared without Phase" {
		t.Errorf("not-applicable message = %q", m)
	}
	if failed.Rule != "rejects bad MAC" || passed.Rule != "" {
		t.Errorf("rules %q, %q; want the failed test's It text, none for a pass", failed.Rule, passed.Rule)
	}
	if l := failed.Location; l != "/src/kms_test.go:42" {
		t.Errorf("location = %q", l)
	}
	if passed.Location != "" || passed.Message != "" {
		t.Errorf("passing test has location/message: %+v", passed)
	}
}

func TestBuildEmptyTotalsAndFailed(t *testing.T) {
	res := Build(types.Report{SpecReports: types.SpecReports{
		spec(nil, "ok", []string{"kms"}, types.SpecStatePassed, ""),
	}}, suites, nil, nil, nil)
	want := map[Outcome]int{Pass: 1, Fail: 0, Skip: 0, NotApplicable: 0, Error: 0}
	if !reflect.DeepEqual(res.Totals, want) {
		t.Errorf("totals = %v, want %v", res.Totals, want)
	}
	if res.Failed() {
		t.Error("Failed() = true for an all-pass run")
	}
}

func TestBuildExchanges(t *testing.T) {
	res := build(t)
	if ex := res.Tests[10].Exchanges; ex != nil {
		t.Errorf("passing test kept exchanges %q", ex)
	}
	if ex := res.Tests[2].Exchanges; !reflect.DeepEqual(ex, []string{"candump vcan0"}) {
		t.Errorf("error test exchanges = %q", ex)
	}
	ex := res.Tests[0].Exchanges
	if len(ex) != 1 {
		t.Fatalf("failed test exchanges = %q, want 1", ex)
	}
	for _, bad := range []string{"t0ken", `"x"`} {
		if strings.Contains(ex[0], bad) {
			t.Errorf("exchange leaks %s: %q", bad, ex[0])
		}
	}
	for _, good := range []string{"Authorization: [redacted]", `"KeyID":"1"`, "POST /v1/keys"} {
		if !strings.Contains(ex[0], good) {
			t.Errorf("exchange lacks %s: %q", good, ex[0])
		}
	}
	if m := res.Tests[1].Message; strings.Contains(m, "abcd1234") || !strings.Contains(m, "cannot start server") {
		t.Errorf("setup message = %q", m)
	}
	wantCfg := map[string]string{"url": "http://kms", "token": Redacted, "note": "uses " + Redacted}
	if !reflect.DeepEqual(res.Config, wantCfg) {
		t.Errorf("config = %v, want %v", res.Config, wantCfg)
	}
}

func TestEntryValueNonString(t *testing.T) {
	s := spec(nil, "x", nil, types.SpecStateFailed, "boom")
	s.ReportEntries = types.ReportEntries{exchange(struct{ A int }{7})}
	res := Build(types.Report{SpecReports: types.SpecReports{s}}, suites, nil, nil, nil)
	if ex := res.Tests[0].Exchanges; !reflect.DeepEqual(ex, []string{"{A:7}"}) {
		t.Errorf("exchanges = %q", ex)
	}
}

func TestRedactor(t *testing.T) {
	r := NewRedactor([]string{"sup3rs3cret", "abc", ""}, []string{"KeyID", "keynumber", "KeySyncValue"})
	cases := []struct{ in, want string }{
		{"value sup3rs3cret here, SUP3RS3CRET too", "value [redacted] here, [redacted] too"},
		{"abc is too short to be a secret", "abc is too short to be a secret"},
		{`{"SupplierSecretKey":"abcd1234ef","KeyID":"1","keynumber":3,"KeySyncValue":"aa"}`,
			`{"SupplierSecretKey":"[redacted]","KeyID":"1","keynumber":3,"KeySyncValue":"aa"}`},
		{`{"password": "x", "Key": 12, "name": "n"}`, `{"password": "[redacted]", "Key": "[redacted]", "name": "n"}`},
		{`{\"token\":\"a\\\"b\",\"KeyID\":\"2\"}`, `{\"token\":\"[redacted]\",\"KeyID\":\"2\"}`},
		{"GET / HTTP/1.1\nAuthorization: Bearer t0ken\nAccept: */*", "GET / HTTP/1.1\nAuthorization: [redacted]\nAccept: */*"},
		{"> authorization: Basic dXNlcjpwYXNz\r\n", "> authorization: [redacted]\r\n"},
		{"kms:\n  url: http://x\n  api_key: k1\n  keyid: 5\n  - license: l1\n  after: ok",
			"kms:\n  url: http://x\n  api_key: [redacted]\n  keyid: 5\n  - license: [redacted]\n  after: ok"},
		{"run with PASSWORD=hunter22 user=bob url?access_token=xyz&x=1 keyid=4",
			"run with PASSWORD=[redacted] user=bob url?access_token=[redacted]&x=1 keyid=4"},
		{`secret="a b c" next`, `secret=[redacted] next`},
		{"harness: could not start server: port 80: in use", "harness: could not start server: port 80: in use"},
	}
	for _, c := range cases {
		if got := r.String(c.in); got != c.want {
			t.Errorf("String(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
	var nilR *Redactor
	if got := nilR.String(`"password":"x" KeyID=1`); got != `"password":"[redacted]" KeyID=[redacted]` {
		t.Errorf("nil Redactor: %q", got)
	}
}

func TestWrite(t *testing.T) {
	res := build(t)
	dir := filepath.Join(t.TempDir(), "out", "run")
	if err := Write(dir, res); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !reflect.DeepEqual(names, []string{"report.html", "results.yaml"}) {
		t.Errorf("files = %q (temp files left?)", names)
	}

	y, err := os.ReadFile(filepath.Join(dir, "results.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := yaml.Unmarshal(y, &back); err != nil {
		t.Fatalf("results.yaml does not parse: %v\n%s", err, y)
	}
	if !back.Started.Equal(res.Started) {
		t.Errorf("started = %v, want %v", back.Started, res.Started)
	}
	back.Started = res.Started
	if !reflect.DeepEqual(back, res) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", back, res)
	}
	for _, k := range []string{"suite:", "started:", "seconds:", "configuration:", "totals:", "tests:", "outcome: error", "exchanges:"} {
		if !strings.Contains(string(y), k) {
			t.Errorf("results.yaml lacks %q", k)
		}
	}

	h, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	html := string(h)
	if strings.Contains(html, "<script>") {
		t.Error("report.html contains an unescaped <script>")
	}
	for _, want := range []string{
		"<title>SHE kit conformance",
		"&lt;script&gt;alert(1)&lt;/script&gt; &amp; co",
		"KMS / keys / rejects bad MAC",
		"ECU / talks CAN",
		"/src/kms_test.go:42",
		"Authorization: [redacted]",
		`class="o fail"`, `class="o error"`,
		"pass: 1", "fail: 1", "skip: 2", "error: 6",
		"<pre>",
	} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	if strings.Contains(html, "GET /v1/keys -&gt; 200") {
		t.Error("report.html shows a passing test's exchange")
	}
	for _, bad := range []string{"<link", "src=", "t0ken", "sup3rs3cret"} {
		if strings.Contains(html, bad) {
			t.Errorf("report.html contains %q", bad)
		}
	}
}

func TestWriteBadDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(filepath.Join(f, "sub"), Results{}); err == nil {
		t.Error("Write under a regular file succeeded")
	}
}

// TestBuildObservations: observations are kept whatever the outcome, redacted, and shown in the
// HTML report.
func TestBuildObservations(t *testing.T) {
	passed := spec([]string{"KMS"}, "replays", []string{"kms"}, types.SpecStatePassed, "")
	passed.ReportEntries = types.ReportEntries{exchange("GET /x"),
		{Name: ObservationEntry, Value: types.WrapEntryValue("a repeated PUT answered Success; token s3cret")}}
	res := Build(types.Report{SpecReports: types.SpecReports{passed}}, suites, nil, nil, NewRedactor([]string{"s3cret"}, nil))
	if got := res.Tests[0].Observations; !reflect.DeepEqual(got, []string{"a repeated PUT answered Success; token " + Redacted}) {
		t.Errorf("observations = %q", got)
	}
	dir := t.TempDir()
	if err := Write(dir, res); err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil || !strings.Contains(string(html), "observation: a repeated PUT answered Success") {
		t.Errorf("report.html lacks the observation (%v)", err)
	}
}
