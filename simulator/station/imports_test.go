package station

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoServer: the station is a client of the KMS API; it speaks it through the
// client-side types of openapi/kmswire and links no package of the server.
func TestImportsNoServer(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/shekit/shekit/simulator/station").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list named no dependency")
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, "github.com/shekit/shekit/server") {
			t.Errorf("simulator/station depends on %s", dep)
		}
	}
}
