// Package conformance holds the kit's Ginkgo suites, modelled on the OCI distribution-spec
// conformance suite: this file runs them and writes the reports (a verdict per target),
// setup_test.go and declaration_test.go read the configuration (a declaration file and CONF_*
// variables), cli_test.go the binary's flags, and each numbered file is one suite:
//
//	01 kms      the KMS supplier API: endpoints, rules, state transitions, documented messages
//	02 clm      the CLM WebAPI: every mode, format and error code, openssl interop
//	03 ecu      SHE semantics through UDS against an ECU
//	04 e2e      station, KMS and a fleet of ECUs: provisioning, sync, failure reporting
//	05–08       the vectors suite: every vector file against the model and the reference server
//
// conformance.yaml maps each test to the section of the document it checks and counts the tests
// of each target (kms, clm, ecu, station) and the self-tests.
package conformance_test

import (
	"bufio"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/reporters"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
	"go.yaml.in/yaml/v3"

	"github.com/shekit/shekit/conformance/report"
)

func TestConformance(t *testing.T) {
	// Failure messages reach the console as well as the reports: redact them on the way.
	RegisterFailHandler(func(message string, callerSkip ...int) {
		skip := 1
		if len(callerSkip) > 0 {
			skip += callerSkip[0]
		}
		Fail(redactor().String(message), skip)
	})
	conf, confErr = loadConfig()
	suiteConfig, reporterConfig := GinkgoConfiguration()
	if !onTerminal(os.Stdout) {
		reporterConfig.NoColor = true // no ANSI codes in a CI log or a file
	}
	if certifying, _ := conf.targets(); len(certifying) > 0 {
		suiteConfig.LabelFilter = certificationFilter(certifying, suiteConfig.LabelFilter)
	}
	if conf.Focus != "" {
		suiteConfig.FocusStrings = append(suiteConfig.FocusStrings, conf.Focus)
	}
	RunSpecs(t, "SHE kit conformance", suiteConfig, reporterConfig)
}

// certificationFilter is the label filter of a certification of targets: their tests, never a
// self-test, within the filter already given (if any).
func certificationFilter(targets []string, given string) string {
	var any []string
	for _, t := range targets {
		any = append(any, report.TargetLabelPrefix+t)
	}
	f := "(" + strings.Join(any, " || ") + ") && !" + report.SelfTest
	if given != "" {
		f = "(" + given + ") && " + f
	}
	return f
}

// onTerminal says whether f is a terminal (a character device).
func onTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// keptFields are field names that look secret (they contain "key") but are not.
var keptFields = []string{"KeyID", "KeySyncValue", "keyid", "keynumber", "newkeynumber", "cakeynumber",
	"clientkeynumber", "keytype", "keylength", "keyfilepath", "commonkeyfilepath"}

// redactor removes the configured secrets, and values of fields named like secrets, from output.
func redactor() *report.Redactor { return report.NewRedactor(conf.secrets(), keptFields) }

//go:embed conformance.yaml
var conformanceYAML []byte

// coverage is conformance.yaml: which document section each test checks, by test name prefix,
// and how many tests a complete run has, in all and per target.
type coverage struct {
	Tests    int               `yaml:"tests"`
	Targets  map[string]int    `yaml:"targets"`
	Sections map[string]string `yaml:"sections"`
}

// sectionOf finds the section of a test name: the longest matching prefix.
func (c coverage) sectionOf(name string) string {
	best := ""
	for prefix := range c.Sections {
		if strings.HasPrefix(name, prefix) && len(prefix) > len(best) {
			best = prefix
		}
	}
	return c.Sections[best]
}

// reportDir is CONF_REPORT_DIR, made absolute: a relative directory is taken from the module's
// root (go test runs in the package's folder), or from the working directory outside a module.
func reportDir(dir string) string {
	if filepath.IsAbs(dir) {
		return dir
	}
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, dir)
		}
		if filepath.Dir(d) == d {
			return filepath.Join(wd, dir)
		}
	}
}

var _ = ReportAfterSuite("reports", func(r types.Report) {
	var cov coverage
	Expect(yaml.Unmarshal(conformanceYAML, &cov)).To(Succeed(), "conformance.yaml")
	red := redactor()
	res := report.Build(r, suiteNames, cov.sectionOf, conf.describe(), red)
	res.Kit = report.Kit{Version: version, Commit: commit}
	if listing {
		listTests(res)
		return
	}
	certifying, _ := conf.targets()
	focused := r.SuiteHasProgrammaticFocus || len(r.SuiteConfig.FocusStrings) > 0 || len(r.SuiteConfig.SkipStrings) > 0
	verdictTargets := certifying
	if len(certifying) > 0 {
		res = res.Only(certifying, focused)
	} else {
		if focused {
			res = res.Only(append(slices.Clone(report.Targets), report.SelfTest, ""), true)
		}
		verdictTargets = targetsRun(res)
	}
	res.Verdicts = report.Verdicts(res, verdictTargets, cov.Targets)
	var unmapped, untargeted []string
	ran := map[string]int{}
	for _, t := range res.Tests {
		if t.Suite == report.SetupSuite {
			continue
		}
		ran[t.Target]++
		if t.Section == "" {
			unmapped = append(unmapped, t.Name)
		}
		if t.Target == "" {
			untargeted = append(untargeted, t.Name)
		}
	}

	dir := reportDir(conf.ReportDir)
	Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
	Expect(report.Write(dir, res)).To(Succeed())
	junit := filepath.Join(dir, "junit.xml")
	Expect(reporters.GenerateJUnitReportWithConfig(r, junit, reporters.JunitReportConfig{
		OmitTimelinesForSpecState: types.SpecStatePassed | types.SpecStateSkipped | types.SpecStatePending})).To(Succeed())
	raw, err := os.ReadFile(junit)
	Expect(err).NotTo(HaveOccurred())
	Expect(os.WriteFile(junit, []byte(red.String(string(raw))), 0o644)).To(Succeed())
	printSummary(res, dir)

	Expect(unmapped).To(BeEmpty(), "tests that conformance.yaml does not map to a document section")
	Expect(untargeted).To(BeEmpty(), "tests with no target (label them with their suite's target or self-test)")
	complete := conf.Suites == strings.Join(suiteNames, ",") && !focused && len(r.SpecReports) > 0 &&
		r.SuiteConfig.LabelFilter == "" && len(certifying) == 0
	if complete {
		total := 0
		for _, n := range cov.Targets {
			total += n
		}
		Expect(total).To(Equal(cov.Tests), "conformance.yaml: the targets' counts add up to tests")
		Expect(ran).To(Equal(cov.Targets), "a complete run has, per target, the number of tests conformance.yaml states")
	}
	for _, v := range res.Verdicts {
		if len(certifying) > 0 {
			Expect(v.Certified).To(BeTrue(), v.Line)
		}
	}
})

// targetsRun lists the targets (self-test last) that have tests in res, in report order.
func targetsRun(res report.Results) []string {
	var out []string
	for _, t := range append(slices.Clone(report.Targets), report.SelfTest) {
		for _, tr := range res.Tests {
			if tr.Target == t {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// printSummary prints the outcomes per target, the verdict lines and where the report is.
func printSummary(res report.Results, dir string) {
	byTarget := map[string]map[report.Outcome]int{}
	for _, t := range res.Tests {
		if byTarget[t.Target] == nil {
			byTarget[t.Target] = map[report.Outcome]int{}
		}
		byTarget[t.Target][t.Outcome]++
	}
	var lines []string
	for _, target := range append([]string{report.SetupSuite}, append(slices.Clone(report.Targets), report.SelfTest, "")...) {
		if n, ok := byTarget[target]; ok {
			lines = append(lines, fmt.Sprintf("  %-9s %4d pass %3d fail %3d error %3d skip %3d not-applicable", target,
				n[report.Pass], n[report.Fail], n[report.Error], n[report.Skip], n[report.NotApplicable]))
		}
	}
	var verdicts []string
	for _, v := range res.Verdicts {
		verdicts = append(verdicts, v.Line)
	}
	fmt.Fprintf(os.Stdout, "\nconformance (kit %s, commit %s): %d tests in %.1f s\n%s\n%s\nreport: %s (junit.xml, results.yaml)\n",
		res.Kit.Version, res.Kit.Commit, len(res.Tests), res.Seconds, strings.Join(lines, "\n"), strings.Join(verdicts, "\n"),
		filepath.Join(dir, "report.html"))
}

// listTests prints --list: each test's target, section and name, in report order by target.
func listTests(res report.Results) {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintln(w) // after Ginkgo's own line
	for _, target := range append(slices.Clone(report.Targets), report.SelfTest) {
		for _, t := range res.Tests {
			if t.Target == target && !(t.Outcome == report.Skip && t.Message == "") { // not filtered out
				fmt.Fprintf(w, "%s\t%s\t%s\n", t.Target, t.Name, t.Section)
			}
		}
	}
}
