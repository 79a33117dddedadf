package report

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/onsi/ginkgo/v2/types"
	"go.yaml.in/yaml/v3"
)

// Outcome is one test's result: pass, fail, skip, not-applicable (the target declares the
// feature absent) or error (the harness itself failed).
type Outcome string

// The five outcomes.
const (
	Pass          Outcome = "pass"
	Fail          Outcome = "fail"
	Skip          Outcome = "skip"
	NotApplicable Outcome = "not-applicable"
	Error         Outcome = "error"
)

// Outcomes lists every outcome in report order.
var Outcomes = []Outcome{Pass, Fail, Skip, NotApplicable, Error}

// NotApplicablePrefix starts the skip message of a test that does not apply to the target (its
// declaration says the feature the test checks is absent): such a test's outcome is
// not-applicable, not skip.
const NotApplicablePrefix = "not-applicable: "

// HarnessPrefix starts the failure message of a failure that is the harness's own (setup could not
// start a server, a CAN interface is missing...): such a test's outcome is error, not fail.
const HarnessPrefix = "harness: "

// SetupSuite is the Suite of a Test made from a failed suite-level node (BeforeSuite, AfterSuite...).
const SetupSuite = "setup"

// OtherSuite is the Suite of a Test none of whose labels is a known suite name.
const OtherSuite = "other"

// ExchangeEntry is the name of the report entries whose values are kept as a test's exchanges.
const ExchangeEntry = "exchange"

// ObservationEntry is the name of the report entries that record which of several acceptable
// behaviours a target chose (where the documents are silent): kept as a test's observations.
const ObservationEntry = "observation"

// SelfTest is the target of a test that checks the kit itself (its model, simulator, audit log or
// the in-process reference's internals), and the label that marks such a test.
const SelfTest = "self-test"

// TargetLabelPrefix starts the label that names a test's target: target-kms, target-clm,
// target-ecu or target-station.
const TargetLabelPrefix = "target-"

// Targets are the implementations a run can certify, in report order.
var Targets = []string{"kms", "clm", "ecu", "station"}

// TargetOf is the target a spec's labels give it: SelfTest when one label is SelfTest (wherever
// it sits), else the name after the first TargetLabelPrefix label, else "" (none).
func TargetOf(labels []string) string {
	target := ""
	for _, l := range labels {
		if l == SelfTest {
			return SelfTest
		}
		if t, ok := strings.CutPrefix(l, TargetLabelPrefix); ok && target == "" {
			target = t
		}
	}
	return target
}

// Test is one spec's result as written to results.yaml.
type Test struct {
	Suite     string   `yaml:"suite"`               // the spec's first label among the suite names given to Build (else "other")
	Target    string   `yaml:"target"`              // kms, clm, ecu, station or self-test (TargetOf its labels); setup for a suite-level node
	Name      string   `yaml:"name"`                // container texts and the It text joined by " / "
	Section   string   `yaml:"section,omitempty"`   // from the section map given to Build, keyed by Name
	Rule      string   `yaml:"rule,omitempty"`      // of a failed test: one line saying what the rule is (the It text; the caller may refine it)
	Outcome   Outcome  `yaml:"outcome"`             // pass, fail, skip, not-applicable or error
	Duration  float64  `yaml:"seconds"`             // run time in seconds
	Message   string   `yaml:"message,omitempty"`   // failure message (redacted) or skip reason
	Location  string   `yaml:"location,omitempty"`  // file:line of the failure
	Exchanges []string `yaml:"exchanges,omitempty"` // the values of report entries named "exchange" (redacted), kept only for fail/error
	// Observations are the values of report entries named "observation" (redacted), whatever the outcome.
	Observations []string `yaml:"observations,omitempty"`
}

// specOrder is a spec's place in the source: file, line, then its index among specs declared at
// the same place (a loop of Its).
type specOrder struct {
	file        string
	line, index int
}

// Results is results.yaml.
type Results struct {
	Suite    string            `yaml:"suite"`              // the suite description given to RunSpecs
	Kit      Kit               `yaml:"kit"`                // the kit's version and commit, set by the caller
	Verdicts []Verdict         `yaml:"verdicts,omitempty"` // one per target the run certifies or ran, set by the caller
	Started  time.Time         `yaml:"started"`            // when the run started
	Seconds  float64           `yaml:"seconds"`            // run time in seconds
	Config   map[string]string `yaml:"configuration"`      // configuration, values redacted
	Totals   map[Outcome]int   `yaml:"totals"`             // every outcome key present, zero included
	Tests    []Test            `yaml:"tests"`              // in the report's order
}

// Failed reports whether any test failed or ended in error.
func (r Results) Failed() bool {
	for _, t := range r.Tests {
		if t.Outcome == Fail || t.Outcome == Error {
			return true
		}
	}
	return false
}

// Build makes Results from a Ginkgo report. suites: the suite label names (e.g. kms, clm, ecu, e2e,
// vectors); section: a test's document section by its Name (nil: none); red redacts messages, exchanges and config
// values (a nil red still redacts sensitive fields by name).
func Build(r types.Report, suites []string, section func(name string) string, config map[string]string, red *Redactor) Results {
	res := Results{
		Suite:   r.SuiteDescription,
		Started: r.StartTime.Round(0),
		Seconds: r.RunTime.Seconds(),
		Config:  map[string]string{},
		Totals:  map[Outcome]int{},
		Tests:   []Test{},
	}
	for _, o := range Outcomes {
		res.Totals[o] = 0
	}
	for k, v := range config {
		if v != "" && red.Sensitive(k) {
			v = Redacted
		}
		res.Config[k] = red.String(v)
	}
	seen := map[types.CodeLocation]int{}
	var orders []specOrder
	for _, s := range r.SpecReports {
		var t Test
		switch {
		case s.LeafNodeType == types.NodeTypeIt:
			t = Test{
				Suite:   suiteOf(s.Labels(), suites),
				Target:  TargetOf(s.Labels()),
				Name:    nameOf(s),
				Outcome: outcomeOf(s),
			}
			if section != nil {
				t.Section = section(t.Name)
			}
		case s.LeafNodeType.Is(types.NodeTypesForSuiteLevelNodes) && s.State.Is(types.SpecStateFailureStates):
			t = Test{Suite: SetupSuite, Target: SetupSuite, Name: s.LeafNodeType.String(), Outcome: Error}
		default:
			continue
		}
		loc := s.LeafNodeLocation
		orders = append(orders, specOrder{file: loc.FileName, line: loc.LineNumber, index: seen[loc]})
		seen[loc]++
		t.Duration = s.RunTime.Seconds()
		switch t.Outcome {
		case Skip:
			t.Message = red.String(s.Failure.Message)
		case NotApplicable: // the reason: the field the declaration leaves out
			t.Message = red.String(strings.TrimPrefix(s.Failure.Message, NotApplicablePrefix))
		case Fail, Error:
			t.Message = red.String(failureMessage(s))
			t.Rule = s.LeafNodeText // the suites name each test by the rule it checks
			if l := s.Failure.Location; l.FileName != "" {
				t.Location = fmt.Sprintf("%s:%d", l.FileName, l.LineNumber)
			}
			for _, e := range s.ReportEntries {
				if e.Name == ExchangeEntry {
					t.Exchanges = append(t.Exchanges, red.String(entryText(e)))
				}
			}
		}
		for _, e := range s.ReportEntries {
			if e.Name == ObservationEntry {
				t.Observations = append(t.Observations, red.String(entryText(e)))
			}
		}
		res.Totals[t.Outcome]++
		res.Tests = append(res.Tests, t)
	}
	sortTests(res.Tests, orders)
	return res
}

// suiteOf returns the first label that is one of suites (compared case-insensitively), else "other".
func suiteOf(labels, suites []string) string {
	for _, l := range labels {
		for _, s := range suites {
			if strings.EqualFold(l, s) {
				return s
			}
		}
	}
	return OtherSuite
}

// nameOf joins the container texts and the It text with " / ".
func nameOf(s types.SpecReport) string {
	var parts []string
	for _, t := range append(append([]string{}, s.ContainerHierarchyTexts...), s.LeafNodeText) {
		if t != "" {
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, " / ")
}

// outcomeOf maps a leaf spec's Ginkgo state to an Outcome.
func outcomeOf(s types.SpecReport) Outcome {
	switch s.State {
	case types.SpecStatePassed:
		return Pass
	case types.SpecStateSkipped:
		if strings.HasPrefix(s.Failure.Message, NotApplicablePrefix) {
			return NotApplicable
		}
		return Skip
	case types.SpecStatePending:
		return Skip
	case types.SpecStateFailed:
		if strings.HasPrefix(s.Failure.Message, HarnessPrefix) {
			return Error
		}
		return Fail
	default: // panicked, interrupted, aborted, timed out, invalid
		return Error
	}
}

// failureMessage is the failure message, with the panic value of a panicked spec and the state
// when there is no message.
func failureMessage(s types.SpecReport) string {
	m := s.Failure.Message
	if s.Failure.ForwardedPanic != "" {
		m = strings.TrimSpace(m + "\n" + s.Failure.ForwardedPanic)
	}
	if m == "" {
		m = "spec " + s.State.String()
	}
	return m
}

// entryText is a report entry's value as text.
func entryText(e types.ReportEntry) string {
	if s, ok := e.GetRawValue().(string); ok {
		return s
	}
	return e.Value.String()
}

// Write writes dir/results.yaml and dir/report.html (creating dir), each atomically (temp file +
// rename).
func Write(dir string, res Results) error {
	y, err := yaml.Marshal(res)
	if err != nil {
		return fmt.Errorf("report: marshal results: %w", err)
	}
	var h bytes.Buffer
	if err := page.Execute(&h, newView(res)); err != nil {
		return fmt.Errorf("report: render html: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, "results.yaml"), y); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, "report.html"), h.Bytes())
}

// writeAtomic writes data to a temp file in path's directory and renames it onto path.
func writeAtomic(path string, data []byte) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
			err = fmt.Errorf("report: write %s: %w", path, err)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(0o644); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// view is what report.html is rendered from.
type view struct {
	Results
	Outcomes []Outcome
	Failures []Test // the tests that failed or ended in error, first in the page
	Groups   []group
}

// group is one target's tests, in report order.
type group struct {
	Suite  string // the target
	Totals map[Outcome]int
	Tests  []Test
}

// newView groups the tests by target, targets in report order, and lists the failures.
func newView(res Results) view {
	v := view{Results: res, Outcomes: Outcomes}
	idx := map[string]int{}
	tests := slices.Clone(res.Tests)
	sort.SliceStable(tests, func(i, j int) bool { return targetRank(tests[i].Target) < targetRank(tests[j].Target) })
	for _, t := range tests {
		if t.Outcome == Fail || t.Outcome == Error {
			v.Failures = append(v.Failures, t)
		}
		i, ok := idx[t.Target]
		if !ok {
			i = len(v.Groups)
			idx[t.Target] = i
			v.Groups = append(v.Groups, group{Suite: t.Target, Totals: map[Outcome]int{}})
		}
		v.Groups[i].Tests = append(v.Groups[i].Tests, t)
		v.Groups[i].Totals[t.Outcome]++
	}
	return v
}

//go:embed report.html.tmpl
var pageText string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"secs": func(f float64) string { return fmt.Sprintf("%.3f", f) },
	"time": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"bad":  func(o Outcome) bool { return o == Fail || o == Error },
}).Parse(pageText))
