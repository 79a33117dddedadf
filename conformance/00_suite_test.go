// Package conformance holds the kit's Ginkgo suites, modelled on the OCI distribution-spec
// conformance suite: this file runs them and writes the reports, setup_test.go reads the
// configuration (CONF_* variables or a YAML file), and each numbered file is one suite:
//
//	01 kms      the KMS supplier API: endpoints, rules, state transitions, documented messages
//	02 clm      the CLM WebAPI: every mode, format and error code, openssl interop
//	03 ecu      SHE semantics through UDS against an ECU
//	04 e2e      station, KMS and a fleet of ECUs: provisioning, sync, failure reporting
//	05–08       the vectors suite: every vector file against the model and the reference server
//
// conformance.yaml maps each test to the section of the document it checks.
package conformance_test

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
	suiteConfig, reporterConfig := GinkgoConfiguration()
	if !onTerminal(os.Stdout) {
		reporterConfig.NoColor = true // no ANSI codes in a CI log or a file
	}
	RunSpecs(t, "SHE kit conformance", suiteConfig, reporterConfig)
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
// and how many tests a complete run has.
type coverage struct {
	Tests    int               `yaml:"tests"`
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
	var unmapped []string
	ran := 0
	for _, t := range res.Tests {
		if t.Suite == report.SetupSuite {
			continue
		}
		if ran++; t.Section == "" {
			unmapped = append(unmapped, t.Name)
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

	bySuite := map[string]map[report.Outcome]int{}
	for _, t := range res.Tests {
		if bySuite[t.Suite] == nil {
			bySuite[t.Suite] = map[report.Outcome]int{}
		}
		bySuite[t.Suite][t.Outcome]++
	}
	var lines []string
	for suite, n := range bySuite {
		lines = append(lines, fmt.Sprintf("  %-8s %4d pass %3d fail %3d skip %3d error", suite, n[report.Pass], n[report.Fail], n[report.Skip], n[report.Error]))
	}
	sort.Strings(lines)
	fmt.Fprintf(os.Stdout, "\nconformance: %d tests in %.1f s\n%s\nreport: %s (junit.xml, results.yaml)\n",
		len(res.Tests), res.Seconds, strings.Join(lines, "\n"), filepath.Join(dir, "report.html"))

	Expect(unmapped).To(BeEmpty(), "tests that conformance.yaml does not map to a document section")
	complete := conf.Suites == strings.Join(suiteNames, ",") && !r.SuiteHasProgrammaticFocus && len(r.SpecReports) > 0 &&
		r.SuiteConfig.LabelFilter == "" && len(r.SuiteConfig.FocusStrings) == 0 && len(r.SuiteConfig.SkipStrings) == 0
	if complete || conf.Certified {
		Expect(ran).To(Equal(cov.Tests), "a complete run has the number of tests conformance.yaml states")
	}
	if conf.Certified {
		Expect(res.Totals[report.Skip]).To(BeZero(), "CONF_CERTIFIED: no test may be skipped")
	}
})
