package clmwire

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestPathsInContract: every path is one the contract openapi/clm.yaml describes.
func TestPathsInContract(t *testing.T) {
	contract, err := os.ReadFile("../clm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{PathIDInfo, PathCredInfo, PathKeyInfo, PathSystemStatus, PathCRL} {
		if !strings.Contains(string(contract), "\n  "+p+":\n") {
			t.Errorf("openapi/clm.yaml has no path %s", p)
		}
	}
}

// TestImportsNoServer: the package is a client's; it links no package of the server.
func TestImportsNoServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/shekit/shekit/openapi/clmwire").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list named no dependency")
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, "github.com/shekit/shekit/server") {
			t.Errorf("openapi/clmwire depends on %s", dep)
		}
	}
}
