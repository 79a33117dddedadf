package conformance_test

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
)

// The kit's version and commit, stamped by make conformance with
// -ldflags "-X github.com/shekit/shekit/conformance_test.version=... -X ...commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// The conformance binary's own flags (bin/shekit-conformance, or go test ./conformance -args ...).
var (
	flagTarget    = flag.String("target", "", "certify these targets, comma-separated: kms, clm, ecu, station (only their tests run, self-tests never) [CONF_TARGETS]")
	flagConfig    = flag.String("config", "", "the declaration file (YAML; --init writes a template) [CONF_FILE]")
	flagInit      = flag.Bool("init", false, "write a commented declaration template, with the reference server's values, to FILE (the next argument) or stdout, and exit")
	flagList      = flag.Bool("list", false, "list the tests with their target and document section, run none")
	flagFocus     = flag.String("focus", "", "run only the tests whose name matches this regular expression [CONF_FOCUS]")
	flagReportDir = flag.String("report-dir", "", "where report.html, results.yaml and junit.xml go (default: report) [CONF_REPORT_DIR]")
	flagVersion   = flag.Bool("version", false, "print the kit's version and commit, and exit")
	flagStrict    = flag.Bool("strict", false, "refuse answers with fields the contracts in openapi/ do not name [CONF_STRICT]")
)

// listing is --list: the run is a dry run whose report is the list of tests.
var listing bool

// cliMain handles the binary's own flags after flag.Parse: --version and --init answer and
// exit (done true, with the exit code); the others become the CONF_* variables they stand for
// (a flag wins over the variable). As the vendor binary (not run by go test) without -test.run,
// only TestConformance runs.
func cliMain(stdout io.Writer) (code int, done bool) {
	if *flagVersion {
		fmt.Fprintf(stdout, "shekit-conformance %s (commit %s)\n", version, commit)
		return 0, true
	}
	if *flagInit {
		if err := writeTemplate(stdout, flag.Arg(0)); err != nil {
			fmt.Fprintln(os.Stderr, "--init:", err)
			return 2, true
		}
		return 0, true
	}
	for name, value := range map[string]string{"CONF_TARGETS": *flagTarget, "CONF_FILE": *flagConfig,
		"CONF_FOCUS": *flagFocus, "CONF_REPORT_DIR": *flagReportDir} {
		if value != "" {
			os.Setenv(name, value)
		}
	}
	if *flagStrict {
		os.Setenv("CONF_STRICT", "1")
	}
	run := flag.Lookup("test.run")
	if run != nil && run.Value.String() == "" && !underGoTest() {
		flag.Set("test.run", "^TestConformance$")
	}
	if *flagList {
		listing = true
		flag.Set("test.run", "^TestConformance$")
		flag.Set("ginkgo.dry-run", "true")
		flag.Set("ginkgo.succinct", "true")
	}
	return 0, false
}

// underGoTest reports whether go test started this binary: it always passes -test.paniconexit0,
// which a vendor running the binary does not.
func underGoTest() bool {
	f := flag.Lookup("test.paniconexit0")
	if f == nil {
		return false
	}
	b, _ := strconv.ParseBool(f.Value.String())
	return b
}

// writeTemplate writes the declaration template to file, which must not exist yet, or to w
// when file is empty.
func writeTemplate(w io.Writer, file string) error {
	if file == "" {
		_, err := w.Write(templateYAML)
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(templateYAML); err != nil {
		f.Close()
		os.Remove(file)
		return err
	}
	return f.Close()
}
