package report

import (
	"fmt"
	"slices"
	"sort"
)

// Kit is the conformance kit that made a report: its version and commit (stamped into the binary
// with -ldflags -X; "dev" and "unknown" when built without them).
type Kit struct {
	Version string `yaml:"version"`
	Commit  string `yaml:"commit"`
}

// Verdict is one target's result: certified when every test of the target ran (the expected
// number of them) and none failed, ended in error or was skipped.
type Verdict struct {
	Target        string `yaml:"target"`
	Certified     bool   `yaml:"certified"`
	Tests         int    `yaml:"tests"`    // tests of the target in this run
	Expected      int    `yaml:"expected"` // tests of the target a complete run has (conformance.yaml)
	Passed        int    `yaml:"passed"`
	Failed        int    `yaml:"failed"`
	Errors        int    `yaml:"errors"`
	Skipped       int    `yaml:"skipped"`
	NotApplicable int    `yaml:"not_applicable"`
	Line          string `yaml:"line"` // e.g. "kms: certified, 61 of 61"
}

// outcomeRank orders outcomes in a report: what a vendor must act on first.
var outcomeRank = map[Outcome]int{Fail: 0, Error: 1, Skip: 2, NotApplicable: 3, Pass: 4}

// targetRank orders targets in a report: setup errors, the targets, self-tests, then unassigned.
func targetRank(t string) int {
	if t == SetupSuite {
		return -1
	}
	if i := slices.Index(Targets, t); i >= 0 {
		return i
	}
	if t == SelfTest {
		return len(Targets)
	}
	return len(Targets) + 1
}

// sortTests puts tests in the report's stable order: failures and errors first, then skips,
// not-applicable and passes; within an outcome by target, then by where the test is declared
// (orders[i] is tests[i]'s place), so a run's random spec order does not show.
func sortTests(tests []Test, orders []specOrder) {
	idx := make([]int, len(tests))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool {
		a, b := tests[idx[i]], tests[idx[j]]
		oa, ob := orders[idx[i]], orders[idx[j]]
		switch {
		case outcomeRank[a.Outcome] != outcomeRank[b.Outcome]:
			return outcomeRank[a.Outcome] < outcomeRank[b.Outcome]
		case targetRank(a.Target) != targetRank(b.Target):
			return targetRank(a.Target) < targetRank(b.Target)
		case oa.file != ob.file:
			return oa.file < ob.file
		case oa.line != ob.line:
			return oa.line < ob.line
		case a.Name != b.Name:
			return a.Name < b.Name
		}
		return oa.index < ob.index
	})
	sorted := make([]Test, len(tests))
	for i, k := range idx {
		sorted[i] = tests[k]
	}
	copy(tests, sorted)
}

// Only keeps the tests of the given targets and setup errors, and counts the totals again: a
// certification run reports only what it certifies. notRun drops tests skipped without a
// message, the ones a filter (--focus) left out.
func (r Results) Only(targets []string, notRun bool) Results {
	out := r
	out.Tests = []Test{}
	out.Totals = map[Outcome]int{}
	for _, o := range Outcomes {
		out.Totals[o] = 0
	}
	for _, t := range r.Tests {
		if t.Target != SetupSuite && !slices.Contains(targets, t.Target) {
			continue
		}
		if notRun && t.Outcome == Skip && t.Message == "" {
			continue
		}
		out.Tests = append(out.Tests, t)
		out.Totals[t.Outcome]++
	}
	return out
}

// Verdicts gives each target its verdict line. expected: the number of tests of each target a
// complete run has. A setup error (a suite-level node that failed) fails every target.
func Verdicts(r Results, targets []string, expected map[string]int) []Verdict {
	setupErrors := 0
	for _, t := range r.Tests {
		if t.Target == SetupSuite {
			setupErrors++
		}
	}
	var out []Verdict
	for _, target := range targets {
		v := Verdict{Target: target, Expected: expected[target], Errors: setupErrors}
		for _, t := range r.Tests {
			if t.Target != target {
				continue
			}
			v.Tests++
			switch t.Outcome {
			case Pass:
				v.Passed++
			case Fail:
				v.Failed++
			case Error:
				v.Errors++
			case Skip:
				v.Skipped++
			case NotApplicable:
				v.NotApplicable++
			}
		}
		v.Certified = v.Failed+v.Errors+v.Skipped == 0 && v.Tests == v.Expected && v.Tests > 0
		v.Line = v.line()
		out = append(out, v)
	}
	return out
}

// line is the verdict as one line: "kms: certified, 61 of 61" (with the not-applicable count
// when there are some), or "kms: not certified, 3 failed, 1 error of 61" and why.
func (v Verdict) line() string {
	na := ""
	if v.NotApplicable > 0 {
		na = fmt.Sprintf(" (%d not applicable)", v.NotApplicable)
	}
	yes, no := "certified", "not certified"
	if v.Target == SelfTest {
		yes, no = "passed", "failed"
	}
	if v.Certified {
		return fmt.Sprintf("%s: %s, %d of %d%s", v.Target, yes, v.Passed+v.NotApplicable, v.Expected, na)
	}
	s := fmt.Sprintf("%s: %s, %d failed", v.Target, no, v.Failed)
	if v.Errors > 0 {
		s += fmt.Sprintf(", %d error", v.Errors)
		if v.Errors > 1 {
			s += "s"
		}
	}
	if v.Skipped > 0 {
		s += fmt.Sprintf(", %d skipped", v.Skipped)
	}
	s += fmt.Sprintf(" of %d%s", v.Tests, na)
	if v.Tests != v.Expected {
		s += fmt.Sprintf("; %d tests ran, a complete run has %d", v.Tests, v.Expected)
	}
	return s
}
