package conformance_test

import (
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
	os.WriteFile(file, []byte("kms_url: http://from-file\ncan: vcan0\nfleet: 3\ncertified: true\n"), 0o600)
	t.Setenv("CONF_FILE", file)
	t.Setenv("CONF_CAN", "vcan1")
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.KMSURL != "http://from-file" || c.CAN != "vcan1" || c.Fleet != 3 || !c.Certified || c.Profile != "autosar" ||
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
	if d := c.describe(); d["CONF_KMS_URL"] != "http://from-file" || d["CONF_SUPPLIER_SECRET_KEY"] != "[redacted]" || d["CONF_KMS_TOKEN"] != "" {
		t.Errorf("describe: %v", d)
	}

	// A boolean set but empty is false, as unset is.
	t.Setenv("CONF_CERTIFIED", "")
	t.Setenv("CONF_STRICT", " ")
	if c, err := loadConfig(); err != nil || c.Certified || c.Strict {
		t.Errorf("CONF_CERTIFIED= CONF_STRICT=' ': certified %v, strict %v, %v; want false, false, no error", c.Certified, c.Strict, err)
	}
	t.Setenv("CONF_STRICT", "1")
	if c, err := loadConfig(); err != nil || !c.Strict {
		t.Errorf("CONF_STRICT=1: strict %v, %v", c.Strict, err)
	}
	os.Unsetenv("CONF_CERTIFIED")
	os.Unsetenv("CONF_STRICT")

	for _, bad := range []struct{ env, value, file, want string }{
		{"CONF_CERTIFIED", "yes please", "", "CONF_CERTIFIED"},
		{"CONF_FLEET", "many", "", "CONF_FLEET"},
		{"CONF_SUITES", "kms,ecus", "", `unknown suite "ecus"`},
		{"", "", "kms_ulr: x\n", "kms_ulr"},
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
