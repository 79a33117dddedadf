package report

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/onsi/ginkgo/v2/types"
)

func TestTargetOf(t *testing.T) {
	for _, c := range []struct {
		labels []string
		want   string
	}{
		{[]string{"kms", "target-kms"}, "kms"},
		{[]string{"e2e", "target-station"}, "station"},
		{[]string{"vectors", "target-kms", "self-test"}, "self-test"}, // self-test wins wherever it sits
		{[]string{"self-test", "target-ecu"}, "self-test"},
		{[]string{"vectors", "kms_error"}, ""},
		{nil, ""},
	} {
		if got := TargetOf(c.labels); got != c.want {
			t.Errorf("TargetOf(%q) = %q, want %q", c.labels, got, c.want)
		}
	}
}

// TestBuildStableOrder: the order of the report follows outcome, target and the place of
// declaration, not the order the specs happened to run in.
func TestBuildStableOrder(t *testing.T) {
	at := func(s types.SpecReport, line int) types.SpecReport {
		s.LeafNodeLocation = types.CodeLocation{FileName: "/src/a_test.go", LineNumber: line}
		return s
	}
	specs := types.SpecReports{
		at(spec(nil, "second", []string{"kms", "target-kms"}, types.SpecStatePassed, ""), 20),
		at(spec(nil, "clm one", []string{"clm", "target-clm"}, types.SpecStatePassed, ""), 5),
		at(spec(nil, "first", []string{"kms", "target-kms"}, types.SpecStatePassed, ""), 10),
		at(spec(nil, "broken", []string{"clm", "target-clm"}, types.SpecStateFailed, "x"), 30),
		at(spec(nil, "model", []string{"vectors", "self-test"}, types.SpecStatePassed, ""), 1),
	}
	want := []string{"broken", "first", "second", "clm one", "model"}
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}} {
		var in types.SpecReports
		for _, i := range order {
			in = append(in, specs[i])
		}
		var got []string
		for _, tr := range Build(types.Report{SpecReports: in}, suites, nil, nil, nil).Tests {
			got = append(got, tr.Name)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("run order %v: report order %q, want %q", order, got, want)
		}
	}
}

func TestVerdicts(t *testing.T) {
	res := Results{Tests: []Test{
		{Target: "kms", Outcome: Pass}, {Target: "kms", Outcome: Pass}, {Target: "kms", Outcome: NotApplicable},
		{Target: "clm", Outcome: Pass}, {Target: "clm", Outcome: Fail}, {Target: "clm", Outcome: Error}, {Target: "clm", Outcome: Skip},
		{Target: "ecu", Outcome: Pass},
		{Target: "self-test", Outcome: Pass},
	}}
	got := Verdicts(res, []string{"kms", "clm", "ecu", "station"}, map[string]int{"kms": 3, "clm": 4, "ecu": 2, "station": 1})
	want := []string{
		"kms: certified, 3 of 3 (1 not applicable)",
		"clm: not certified, 1 failed, 1 error, 1 skipped of 4",
		"ecu: not certified, 0 failed of 1; 1 tests ran, a complete run has 2",
		"station: not certified, 0 failed of 0; 0 tests ran, a complete run has 1",
	}
	for i, v := range got {
		if v.Line != want[i] {
			t.Errorf("verdict %d = %q, want %q", i, v.Line, want[i])
		}
	}
	if !got[0].Certified || got[1].Certified || got[2].Certified || got[3].Certified {
		t.Errorf("certified: %v %v %v %v, want true false false false", got[0].Certified, got[1].Certified, got[2].Certified, got[3].Certified)
	}
	if v := Verdicts(res, []string{SelfTest}, map[string]int{SelfTest: 1})[0]; !v.Certified || v.Line != "self-test: passed, 1 of 1" {
		t.Errorf("self-test verdict %+v", v)
	}
	// A setup error fails every target.
	res.Tests = append(res.Tests, Test{Target: SetupSuite, Outcome: Error})
	if v := Verdicts(res, []string{"kms"}, map[string]int{"kms": 3})[0]; v.Certified || v.Line != "kms: not certified, 0 failed, 1 error of 3 (1 not applicable)" {
		t.Errorf("with a setup error: %+v", v)
	}
}

func TestOnly(t *testing.T) {
	res := Results{Tests: []Test{
		{Name: "a", Target: "kms", Outcome: Pass}, {Name: "b", Target: "clm", Outcome: Fail},
		{Name: "c", Target: "self-test", Outcome: Pass}, {Name: "d", Target: SetupSuite, Outcome: Error},
		{Name: "e", Target: "kms", Outcome: Skip}, {Name: "f", Target: "kms", Outcome: Skip, Message: "why"},
	}}
	names := func(r Results) (out []string) {
		for _, t := range r.Tests {
			out = append(out, t.Name)
		}
		return out
	}
	only := res.Only([]string{"kms"}, true)
	if got := names(only); !reflect.DeepEqual(got, []string{"a", "d", "f"}) {
		t.Errorf("Only(kms, notRun) = %q", got)
	}
	if only.Totals[Pass] != 1 || only.Totals[Error] != 1 || only.Totals[Skip] != 1 || only.Totals[Fail] != 0 {
		t.Errorf("totals %v", only.Totals)
	}
	if got := names(res.Only([]string{"kms", "clm"}, false)); !reflect.DeepEqual(got, []string{"a", "b", "d", "e", "f"}) {
		t.Errorf("Only(kms,clm) = %q", got)
	}
}

// TestWriteVerdictsAndFailuresFirst: report.html shows the kit, the verdict lines and the
// failures (with their rule) before the per-target tables; results.yaml carries them too.
func TestWriteVerdictsAndFailuresFirst(t *testing.T) {
	res := build(t)
	res.Kit = Kit{Version: "v1.2.3", Commit: "abc1234"}
	res.Tests[0].Rule = "a MAC that does not verify is refused"
	res.Verdicts = Verdicts(res, []string{"kms"}, map[string]int{"kms": 3})
	dir := t.TempDir()
	if err := Write(dir, res); err != nil {
		t.Fatal(err)
	}
	h, _ := os.ReadFile(filepath.Join(dir, "report.html"))
	html := string(h)
	for _, want := range []string{"kit v1.2.3 (abc1234)", "kms: not certified, 1 failed, 1 error of 3", "rule:</b> a MAC that does not verify is refused"} {
		if !strings.Contains(html, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	fail, pass := strings.Index(html, "Expected 1 to equal 2"), strings.Index(html, "KMS / loads a key")
	if fail < 0 || pass < 0 || fail > pass {
		t.Errorf("the failure (at %d) is not before the passing test (at %d)", fail, pass)
	}
	y, _ := os.ReadFile(filepath.Join(dir, "results.yaml"))
	for _, want := range []string{"version: v1.2.3", "commit: abc1234", "target: kms", "line: 'kms: not certified", "rule: a MAC that does not verify is refused"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("results.yaml lacks %q", want)
		}
	}
}
