package kms_test

import (
	"strings"
	"testing"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
)

// supplierJSON is a supplier of the registry file format with one EcuType.
func supplierJSON(id, token, extra string) string {
	return `{"id":"` + id + `","phase":"Dev","secretKey":"` + strings.Repeat("ab", 16) + `","token":"` + token + `"` + extra +
		`,"ecuTypes":[{"type":"0001","keyIds":["1","D","4"]}]}`
}

// TestDuplicateTokensRefused: two suppliers with one bearer token are refused in a registry file
// and by the admin API, which then leaves the registry as it was.
func TestDuplicateTokensRefused(t *testing.T) {
	file := `{"suppliers":[` + supplierJSON("001D", "same-token", "") + `,` + supplierJSON("0001", "same-token", "") + `]}`
	_, err := kms.ParseRegistry([]byte(file), "json")
	if err == nil || !strings.Contains(err.Error(), "same token") || strings.Contains(err.Error(), "same-token") {
		t.Fatalf("duplicate tokens in a file: %v", err)
	}
	reg, err := kms.ParseRegistry([]byte(`{"suppliers":[`+supplierJSON("001D", "token-of-001d", "")+`]}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	ts := newServerWith(t, reference.Config{Registry: reg, AdminToken: "admin-secret"})
	ts.client = validatingClient(t, true)
	var out map[string]any
	if code := ts.admin(t, "PUT", "/admin/suppliers/0001", "admin-secret", supplierJSON("0001", "token-of-001d", ""), &out); code != 400 ||
		!strings.Contains(out["error"].(string), "same token") {
		t.Fatalf("admin API with another supplier's token: %d %v", code, out)
	}
	if got := ts.ref.KMS.Registry(); len(got.Suppliers) != 1 {
		t.Fatalf("the refused change was applied: %d suppliers", len(got.Suppliers))
	}
	if code := ts.admin(t, "PUT", "/admin/suppliers/0001", "admin-secret", supplierJSON("0001", "token-of-0001", ""), nil); code != 200 {
		t.Fatalf("admin API with a token of its own: %d", code)
	}
}
