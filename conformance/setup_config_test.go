package conformance_test

import (
	"slices"

	"github.com/shekit/shekit/simulator/ecu"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadConfig: the YAML file fills the configuration, variables win over it, defaults fill
// the rest, and bad values are refused with the variable's name.
func TestLoadConfig(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "CONF_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	file := filepath.Join(t.TempDir(), "conf.yaml")
	os.WriteFile(file, []byte("version: 1\nkms:\n  url: http://from-file\necu:\n  can: vcan0\nstation:\n  fleet: 3\nstrict: true\n"), 0o600)
	t.Setenv("CONF_FILE", file)
	t.Setenv("CONF_CAN", "vcan1")
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.KMSURL != "http://from-file" || c.CAN != "vcan1" || c.Fleet != 3 || !c.Strict || c.Profile != "autosar" ||
		c.Suites != "kms,clm,ecu,e2e,vectors" || c.SupplierID != "001D" {
		t.Errorf("config %+v", c)
	}
	if k, err := c.decode(); err != nil || k.uidPrefix != [4]byte{0x00, 0x01, 0x00, 0x1D} || k.masterKey != nil {
		t.Errorf("decoded %+v, %v", k, err)
	}
	bad := c
	bad.SecurityKey = "zz"
	if _, err := bad.decode(); err == nil || !strings.Contains(err.Error(), "CONF_SECURITY_KEY") {
		t.Errorf("bad security key: %v", err)
	}
	good := c
	good.ClusterIDs = "0102030405060708, 1112131415161718"
	if k, err := good.decode(); err != nil || len(k.clusters) != 2 || k.clusters[1] != [8]byte{0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18} {
		t.Errorf("CONF_CLUSTER_IDS=%s: decoded %x, %v", good.ClusterIDs, k.clusters, err)
	}
	for _, ids := range []string{"0102030405060708", "0102030405060708,01020304050607", "0102030405060708,zz02030405060708",
		"0102030405060708,0102030405060708", "0102030405060708,"} {
		bad := c
		bad.ClusterIDs = ids
		if _, err := bad.decode(); err == nil || !strings.Contains(err.Error(), "CONF_CLUSTER_IDS") {
			t.Errorf("CONF_CLUSTER_IDS=%s: error %v, want one naming CONF_CLUSTER_IDS", ids, err)
		}
	}
	if k, err := c.decode(); err != nil || k.timingMargin != 50*time.Millisecond {
		t.Errorf("CONF_TIMING_MARGIN unset: %v, %v; want 50ms", k.timingMargin, err)
	}
	good.TimingMargin = "1s"
	if k, err := good.decode(); err != nil || k.timingMargin != time.Second {
		t.Errorf("CONF_TIMING_MARGIN=1s: %v, %v", k.timingMargin, err)
	}
	for _, m := range []string{"fast", "-1ms", "2m", "50"} {
		bad := c
		bad.TimingMargin = m
		if _, err := bad.decode(); err == nil || !strings.Contains(err.Error(), "CONF_TIMING_MARGIN") {
			t.Errorf("CONF_TIMING_MARGIN=%s: error %v, want one naming CONF_TIMING_MARGIN", m, err)
		}
	}
	if d := c.describe(); d["kms.url"] != "http://from-file" || d["kms.supplier_secret_key"] != "[redacted]" || d["kms.token"] != "" {
		t.Errorf("describe: %v", d)
	}

	// A boolean set but empty is false, as unset is.
	t.Setenv("CONF_KERNEL_ISOTP", "")
	t.Setenv("CONF_STRICT", " ")
	if c, err := loadConfig(); err != nil || c.KernelISOTP || c.Strict {
		t.Errorf("CONF_KERNEL_ISOTP= CONF_STRICT=' ': kernel %v, strict %v, %v; want false, false, no error", c.KernelISOTP, c.Strict, err)
	}
	t.Setenv("CONF_STRICT", "1")
	if c, err := loadConfig(); err != nil || !c.Strict {
		t.Errorf("CONF_STRICT=1: strict %v, %v", c.Strict, err)
	}
	os.Unsetenv("CONF_KERNEL_ISOTP")
	os.Unsetenv("CONF_STRICT")

	for _, bad := range []struct{ env, value, file, want string }{
		{"CONF_KERNEL_ISOTP", "yes please", "", "CONF_KERNEL_ISOTP"},
		{"CONF_FLEET", "many", "", "CONF_FLEET"},
		{"CONF_SUITES", "kms,ecus", "", `unknown suite "ecus"`},
		{"CONF_TARGETS", "kms,hsm", "", `unknown target "hsm"`},
		{"CONF_KMS_AUTH", "basic", "", "kms.auth (CONF_KMS_AUTH)"},
		{"", "", "version: 1\nkms:\n  ulr: x\n", `line 3: unknown field "kms.ulr"`},
		{"", "", "version: 1\nkms_url: x\n", `line 2: unknown field "kms_url"`},
		{"", "", "kms:\n  url: x\n", "version is missing"},
		{"", "", "version: 2\n", "line 1: version"},
		{"", "", "version: 1\nkms: x\n", `line 2: unknown field "kms"`},
		{"", "", "version: 1\nkms:\n  url: [a, [b]]\n", "line 3: kms.url"},
	} {
		t.Run(bad.want, func(t *testing.T) {
			if bad.env != "" {
				t.Setenv(bad.env, bad.value)
			}
			if bad.file != "" {
				f := filepath.Join(t.TempDir(), "bad.yaml")
				os.WriteFile(f, []byte(bad.file), 0o600)
				t.Setenv("CONF_FILE", f)
			}
			if _, err := loadConfig(); err == nil || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("error %v, want %q", err, bad.want)
			}
		})
	}
}

// clearConf unsets every CONF_ variable for the test.
func clearConf(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "CONF_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// TestDeclarationTemplate: the template --init writes is a valid declaration of the reference
// server as `go run ./server` starts it, and certifies kms and clm with no field missing.
func TestDeclarationTemplate(t *testing.T) {
	clearConf(t)
	file := filepath.Join(t.TempDir(), "decl.yaml")
	if err := writeTemplate(nil, file); err != nil {
		t.Fatal(err)
	}
	if err := writeTemplate(nil, file); err == nil {
		t.Error("--init overwrote an existing file")
	}
	t.Setenv("CONF_TARGETS", "kms,clm")
	c, err := loadConfigFrom(file)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Targets: "kms,clm", KMSURL: "http://127.0.0.1:8080", KMSAuth: "none", SupplierID: "001D", EcuType: "0001",
		SupplierKey: "1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d", InitialMaster: "00000000000000000000000000000000",
		CLMURL: "http://127.0.0.1:8080", CLMLicense: "demo-license"}
	if c.KMSURL != want.KMSURL || c.KMSAuth != want.KMSAuth || c.SupplierID != want.SupplierID || c.EcuType != want.EcuType ||
		c.SupplierKey != want.SupplierKey || c.InitialMaster != want.InitialMaster || c.CLMURL != want.CLMURL || c.CLMLicense != want.CLMLicense {
		t.Errorf("template declares %+v", c)
	}
	// A URL of its own: none of the in-process reference's optional features leaks into the KMS's.
	if c.KMSRestart != "" || c.RestrictedEcuType != "" || c.RefusedKeyIDs != "" || c.OtherSupplierID != "" || c.ClusterIDs != "" || c.KMSToken != "" {
		t.Errorf("optional features the template does not declare: %+v", c)
	}
}

// TestReferenceDeclaration: with no declaration and no URL, the in-process reference's
// declaration (reference.yaml) gives the settings that match its registry.
func TestReferenceDeclaration(t *testing.T) {
	clearConf(t)
	c, err := loadConfigFrom("")
	if err != nil {
		t.Fatal(err)
	}
	if c.RestrictedEcuType != suiteRestricted || c.RefusedKeyIDs != suiteRefusedKeyIDs || c.OtherSupplierID != suiteOtherSupplier ||
		c.OtherEcuType != suiteOtherEcuType || c.ClusterIDs != suiteClusterIDs || c.CAN != "mem" || c.Fleet != 8 || c.CLMLicense != "demo-license" {
		t.Errorf("in-process declaration %+v", c)
	}
	if k, err := c.decode(); err != nil || k.securityKey != ecu.DefaultSecurityKey {
		t.Errorf("security key %x, %v; want the simulator's", k.securityKey, err)
	}
	if !c.CLMCRL {
		t.Error("in-process: clm.features.crl not declared")
	}
	// A feature the environment declares absent stays absent in-process.
	t.Setenv("CONF_CLM_CRL", "0")
	if c, err := loadConfigFrom(""); err != nil || c.CLMCRL {
		t.Errorf("CONF_CLM_CRL=0: crl %v, %v; want false", c.CLMCRL, err)
	}
	// Another supplier in-process: the reference's clusters are not its EcuType's.
	t.Setenv("CONF_SUPPLIER_ID", "0001")
	t.Setenv("CONF_ECU_TYPE", "0003")
	if c, err := loadConfigFrom(""); err != nil || c.ClusterIDs != "" {
		t.Errorf("supplier 0001: clusters %q, %v; want none", c.ClusterIDs, err)
	}
}

// TestCertificationNeedsDeclaredFields: certifying a target with a required field missing is an
// error naming the field; an unknown target too.
func TestCertificationNeedsDeclaredFields(t *testing.T) {
	clearConf(t)
	dir := t.TempDir()
	full := "version: 1\nkms:\n  url: http://kms\n  supplier_id: 00AB\n  ecu_type: 0042\n  supplier_secret_key: a0b1c2d3e4f5061728394a5b6c7d8e9f\n  initial_master_key: 42424242424242424242424242424242\nclm:\n  url: http://clm\n  license: l1cense\n"
	for _, c := range []struct{ targets, decl, want string }{
		{"kms", full, ""},
		{"kms,clm", full, ""},
		{"kms", strings.Replace(full, "  url: http://kms\n", "", 1), "kms.url (CONF_KMS_URL) is required to certify target kms"},
		{"kms", strings.Replace(full, "  supplier_secret_key: a0b1c2d3e4f5061728394a5b6c7d8e9f\n", "", 1), "kms.supplier_secret_key (CONF_SUPPLIER_SECRET_KEY)"},
		{"clm", strings.Replace(full, "  license: l1cense\n", "", 1), "clm.license (CONF_CLM_LICENSE) is required to certify target clm"},
		{"ecu", full, "ecu.can (CONF_CAN) is mem"},
		{"station", full + "ecu:\n  can: vcan0\n  security_key: 5348452d6b69742064656d6f206b6579\n", "ecu.ids (CONF_ECU_IDS) is required to certify target station"},
		{"station", full + "ecu:\n  can: vcan0\n  ids: [\"0x7E0:0x7E8\"]\n  security_key: 5348452d6b69742064656d6f206b6579\n", ""},
		{"kms", full + "  auth: bearer\n", ""}, // under clm: a field of no section
	} {
		f := filepath.Join(dir, "decl.yaml")
		os.WriteFile(f, []byte(c.decl), 0o600)
		t.Setenv("CONF_TARGETS", c.targets)
		_, err := loadConfigFrom(f)
		switch {
		case c.want == "" && strings.Contains(c.decl, "auth: bearer") && (err == nil || !strings.Contains(err.Error(), "clm.auth")):
			t.Errorf("%s: %v, want an error naming clm.auth", c.targets, err)
		case c.want == "" && !strings.Contains(c.decl, "auth: bearer") && err != nil:
			t.Errorf("%s: %v", c.targets, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.targets, err, c.want)
		}
	}
	os.WriteFile(filepath.Join(dir, "decl.yaml"), []byte(full), 0o600)
	t.Setenv("CONF_TARGETS", "kms")
	t.Setenv("CONF_KMS_AUTH", "bearer")
	if _, err := loadConfigFrom(filepath.Join(dir, "decl.yaml")); err == nil || !strings.Contains(err.Error(), "kms.token (CONF_KMS_TOKEN) is required with kms.auth: bearer") {
		t.Errorf("bearer without a token: %v", err)
	}
}

// TestDescribeRedactsSecrets: the report's configuration listing shows no secret and no restart
// command.
func TestDescribeRedactsSecrets(t *testing.T) {
	c := Config{KMSURL: "http://kms", KMSToken: "t0ken-value", KMSRestart: "ssh root@kms systemctl restart kms", CLMLicense: "lic-value",
		SupplierKey: "a0b1c2d3e4f5061728394a5b6c7d8e9f", SecurityKey: "5348452d6b69742064656d6f206b6579"}
	d := c.describe()
	for _, k := range []string{"kms.token", "kms.restart", "clm.license", "kms.supplier_secret_key", "ecu.security_key"} {
		if d[k] != "[redacted]" {
			t.Errorf("%s = %q, want [redacted]", k, d[k])
		}
	}
	if d["kms.url"] != "http://kms" || d["kms.initial_master_key"] != "" {
		t.Errorf("kms.url %q, kms.initial_master_key %q", d["kms.url"], d["kms.initial_master_key"])
	}
	if !slices.Contains(c.secrets(), "ssh root@kms systemctl restart kms") {
		t.Error("the restart command is not among the secrets the output is redacted of")
	}
}
