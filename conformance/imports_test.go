package conformance_test

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// serverImporters are the files of this package that may import the server's packages, and why:
// they start in-process targets or check the kit against itself. Every other file is a client of
// the targets and speaks their APIs through openapi/kmswire and openapi/clmwire only.
var serverImporters = map[string]string{
	"setup_test.go":            "starts the in-process reference when the declaration names no URL",
	"kms_setup_test.go":        "the in-process reference's registry, restarts and bearer-authenticated second server",
	"vectors_selftest_test.go": "self-tests: the vectors against fresh reference servers",
	"targets_test.go":          "teeth: reference servers behind rewriting proxies, as targets",
	"mtls_target_test.go":      "a reference server with mutual TLS, as a target",
	"teeth_table_test.go":      "teeth: the KMS teeth table's targets",
	"teeth_clm_test.go":        "teeth: the CLM teeth table's targets",
}

// TestSuitesImportNoServer: the suites' client code (every file not listed with a reason in
// serverImporters) imports no package under server/.
func TestSuitesImportNoServer(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files: %v", err)
	}
	checked := 0
	for _, name := range files {
		if serverImporters[name] != "" {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/shekit/shekit/server") {
				t.Errorf("%s imports %s: a client of the targets uses openapi/kmswire or openapi/clmwire", name, path)
			}
		}
	}
	if checked < 10 {
		t.Errorf("checked %d files, want the suites' clients among them", checked)
	}
}
