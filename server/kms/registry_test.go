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

// TestSecOCClustersBelongToSuppliers: supplier 001D's EcuType is in cluster A, supplier 0001's in
// cluster B. 001D's ECU with B's ClusterID gets neither B's key nor a KeySyncValue under it: the
// request is refused with the documented message. Its own cluster works; the registry keeps the
// clusters through its file format.
func TestSecOCClustersBelongToSuppliers(t *testing.T) {
	const clusterA, clusterB = "0102030405060708", "1112131415161718"
	file := `{"suppliers":[` +
		`{"id":"001D","phase":"Dev","secretKey":"` + strings.Repeat("1d", 16) + `","ecuTypes":[{"type":"0001","keyIds":["1","D","4"],"clusters":["` + clusterA + `"]}]},` +
		`{"id":"0001","phase":"Dev","secretKey":"` + strings.Repeat("01", 16) + `","ecuTypes":[{"type":"0003","keyIds":["1","D","4"],"clusters":["` + clusterB + `"]}]}]}`
	reg, err := kms.ParseRegistry([]byte(file), "json")
	if err != nil {
		t.Fatal(err)
	}
	again, err := reg.MarshalJSON()
	if err != nil || !strings.Contains(string(again), `"clusters":["`+clusterA+`"]`) {
		t.Fatalf("the file format lost the clusters: %s %v", again, err)
	}
	ts := newServerWith(t, reference.Config{Registry: reg})
	ts.client = validatingClient(t, true)
	own := clusterA + "01020304" + "0001001D0102030405060708090A0B"
	foreign := clusterB + "01020304" + "0001001D0102030405060708090A0B"
	secoc := func(ecuID string) map[string]string {
		return map[string]string{"ProvisioningType": "SecOCKey", "EcuID": ecuID, "KeyID": "4", "SupplierSecretKey": strings.Repeat("1d", 16)}
	}
	ts.provision(t, secoc(own))
	status, env := ts.call(t, "POST", kms.PathProvisioning, secoc(foreign))
	if status != 200 || env.Records != nil || env.ResultReason != "CLUSTER_NOT_ALLOWED" ||
		env.ResultMessage != "The ClusterID:1112131415161718 is not allowed for the EcuType 0001." {
		t.Fatalf("another supplier's cluster: %d %+v", status, env)
	}
	status, env = ts.call(t, "POST", kms.PathKeySync, map[string]string{"ProvisioningType": "SecOCKey", "EcuID": foreign, "KeyID": "4"})
	if env.Records != nil || env.ResultReason != "CLUSTER_NOT_ALLOWED" {
		t.Fatalf("sync in another supplier's cluster: %d %+v", status, env)
	}
	// A type without clusters gets no SecOC key at all; "*" allows any cluster.
	for _, tc := range []struct{ clusters, want string }{{``, "CLUSTER_NOT_ALLOWED"}, {`,"clusters":["*"]`, ""}} {
		reg, err := kms.ParseRegistry([]byte(`{"suppliers":[{"id":"001D","phase":"Dev","secretKey":"`+strings.Repeat("1d", 16)+
			`","ecuTypes":[{"type":"0001","keyIds":["4"]`+tc.clusters+`}]}]}`), "json")
		if err != nil {
			t.Fatal(err)
		}
		ts := newServerWith(t, reference.Config{Registry: reg})
		ts.client = validatingClient(t, true)
		if _, env := ts.call(t, "POST", kms.PathProvisioning, secoc(foreign)); env.ResultReason != tc.want {
			t.Errorf("clusters %q: %+v, want %q", tc.clusters, env, tc.want)
		}
	}
}

// TestPhasesAllowed: a supplier registered for Dev is refused Prod keys; one whose entry allows
// both phases gets either; a registry whose default phase is not among its phases is refused.
func TestPhasesAllowed(t *testing.T) {
	ts := newServer(t, "") // the demo registry: both suppliers Dev only
	ts.client = validatingClient(t, true)
	req := map[string]string{"ProvisioningType": "SupplierSymmKey", "KeyID": "D", "EcuID": supplierExampleEcuID, "Phase": "Prod"}
	if status, env := ts.call(t, "POST", kms.PathProvisioning, req); status != 200 || env.Records != nil ||
		env.ResultReason != "PHASE_NOT_ALLOWED" || env.ResultMessage != "The Phase:Prod is not allowed for the supplier 001D." {
		t.Fatalf("Prod for a Dev supplier: %d %+v", status, env)
	}
	req["Phase"] = "Dev"
	ts.provision(t, req)

	reg, err := kms.ParseRegistry([]byte(`{"suppliers":[`+supplierJSON("001D", "", `,"phases":["Dev","Prod"]`)+`]}`), "json")
	if err != nil {
		t.Fatal(err)
	}
	both := newServerWith(t, reference.Config{Registry: reg})
	for _, p := range []string{"Prod", "Dev"} {
		both.provision(t, map[string]string{"ProvisioningType": "SupplierSymmKey", "KeyID": "D", "EcuID": supplierExampleEcuID, "Phase": p})
	}
	if _, err := kms.ParseRegistry([]byte(`{"suppliers":[`+supplierJSON("001D", "", `,"phases":["Prod"]`)+`]}`), "json"); err == nil {
		t.Fatal("a default phase outside the supplier's phases was accepted")
	}
}
