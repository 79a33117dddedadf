package conformance_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	"go.yaml.in/yaml/v3"

	"github.com/shekit/shekit/conformance/report"
	"github.com/shekit/shekit/server/reference"
	"github.com/shekit/shekit/simulator/ecu"
)

// The suites, in the order they run. CONF_SUITES selects some of them.
var suiteNames = []string{"kms", "clm", "ecu", "e2e", "vectors"}

// Config is the suites' configuration: environment variables, or the YAML file named by
// CONF_FILE, variables winning. Every field's env tag names its variable.
type Config struct {
	KMSURL        string `yaml:"kms_url" env:"CONF_KMS_URL"`                         // a KMS to test; empty: the reference, in-process
	KMSToken      string `yaml:"kms_token" env:"CONF_KMS_TOKEN"`                     // its bearer token
	CLMURL        string `yaml:"clm_url" env:"CONF_CLM_URL"`                         // a CLM to test; empty: the reference, in-process
	CLMLicense    string `yaml:"clm_license" env:"CONF_CLM_LICENSE"`                 // its license key (default: the reference's demo key)
	CAN           string `yaml:"can" env:"CONF_CAN"`                                 // mem (simulated ECUs in-process) or an interface such as vcan0
	ECUIDs        string `yaml:"ecu_ids" env:"CONF_ECU_IDS"`                         // on an interface: the ECUs' request:response IDs, comma-separated
	KernelISOTP   bool   `yaml:"kernel_isotp" env:"CONF_KERNEL_ISOTP"`               // on an interface: the kernel's ISO-TP instead of ours
	TimingMargin  string `yaml:"timing_margin" env:"CONF_TIMING_MARGIN"`             // on an interface: what the tester adds to P2 and P2* (default 50ms)
	Profile       string `yaml:"profile" env:"CONF_PROFILE"`                         // SHE profile of the ECUs: autosar or csec
	SecurityKey   string `yaml:"security_key" env:"CONF_SECURITY_KEY"`               // SecurityAccess key of the ECUs (32 hex digits)
	MasterKey     string `yaml:"master_key" env:"CONF_ECU_MASTER_KEY"`               // a real ECU's current MASTER_ECU_KEY (empty: factory state, all-zero)
	SupplierID    string `yaml:"supplier_id" env:"CONF_SUPPLIER_ID"`                 // the supplier the suites act as (4 hex digits)
	EcuType       string `yaml:"ecu_type" env:"CONF_ECU_TYPE"`                       // an EcuType of that supplier in the KMS's registry
	SupplierKey   string `yaml:"supplier_secret_key" env:"CONF_SUPPLIER_SECRET_KEY"` // its SupplierSecretKey
	InitialMaster string `yaml:"initial_master_key" env:"CONF_INITIAL_MASTER_KEY"`   // the KMS's initial master key of that EcuType
	Fleet         int    `yaml:"fleet" env:"CONF_FLEET"`                             // simulated ECUs in the e2e suite
	ReportDir     string `yaml:"report_dir" env:"CONF_REPORT_DIR"`                   // where the reports go
	Suites        string `yaml:"suites" env:"CONF_SUITES"`                           // comma-separated suites to run (default: all)
	Certified     bool   `yaml:"certified" env:"CONF_CERTIFIED"`                     // fail on any skip and on a test count other than conformance.yaml's
	Strict        bool   `yaml:"strict" env:"CONF_STRICT"`                           // answers may carry no field the contracts do not name
	// The KMS's declared properties that some tests need; a test whose setting is missing skips,
	// naming it (the in-process reference has them all).
	KMSRestart        string `yaml:"kms_restart" env:"CONF_KMS_RESTART"`                 // a shell command that restarts the KMS
	RestrictedEcuType string `yaml:"restricted_ecu_type" env:"CONF_RESTRICTED_ECU_TYPE"` // an EcuType of the supplier that refuses some KeyIDs
	RefusedKeyIDs     string `yaml:"refused_key_ids" env:"CONF_REFUSED_KEY_IDS"`         // the KeyIDs it refuses, comma-separated
	OtherSupplierID   string `yaml:"other_supplier_id" env:"CONF_OTHER_SUPPLIER_ID"`     // another registered supplier (authentication tests)
	OtherEcuType      string `yaml:"other_ecu_type" env:"CONF_OTHER_ECU_TYPE"`           // an EcuType of that supplier
	ClusterIDs        string `yaml:"cluster_ids" env:"CONF_CLUSTER_IDS"`                 // the SecOC clusters of the EcuType's ECUs, comma-separated
	// Self-test hooks: they make the in-process reference targets misbehave on purpose, so that a
	// run can show the suites notice. Never set them against a real target.
	SimFault     string `yaml:"sim_fault" env:"CONF_SIM_FAULT"`             // a fault flag for every simulated ECU (see simFaults)
	AlterMessage string `yaml:"alter_message" env:"CONF_SIM_ALTER_MESSAGE"` // REASON=text: the in-process KMS answers text for REASON
	// The ECU's declared properties that the ecu suite's rule tests need (ecuDeclaration).
	ECUMaxAttempts    int    `yaml:"ecu_max_attempts" env:"CONF_ECU_MAX_ATTEMPTS"`             // the wrong SecurityAccess key in a row answered NRC 0x36 (default 3)
	ECULockout        string `yaml:"ecu_lockout" env:"CONF_ECU_LOCKOUT"`                       // the delay after it, NRC 0x37 meanwhile (default 10s; CONF_CAN=mem: 2s)
	ECUSeedLength     int    `yaml:"ecu_seed_length" env:"CONF_ECU_SEED_LENGTH"`               // SecurityAccess seed length in bytes, 1 to 32 (default 16)
	ECUSacrificialKey string `yaml:"ecu_sacrificial_key_id" env:"CONF_ECU_SACRIFICIAL_KEY_ID"` // a KEY_n slot (KeyID 4 to D) the suite may write-protect for good; empty: not applicable (CONF_CAN=mem: 9)
}

// defaults fills what is not configured.
func (c *Config) defaults() {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&c.CAN, "mem")
	set(&c.Profile, "autosar")
	set(&c.SecurityKey, hex.EncodeToString(ecu.DefaultSecurityKey[:]))
	set(&c.SupplierID, "001D")
	set(&c.EcuType, "0001")
	set(&c.SupplierKey, "1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d")
	set(&c.InitialMaster, "00000000000000000000000000000000")
	set(&c.CLMLicense, reference.DemoLicense)
	set(&c.ReportDir, "report")
	set(&c.Suites, strings.Join(suiteNames, ","))
	if c.Fleet == 0 {
		c.Fleet = 8
	}
}

// loadConfig reads CONF_FILE (if set) and then the environment.
func loadConfig() (Config, error) {
	var c Config
	if f := os.Getenv("CONF_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return c, err
		}
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("%s: %w", f, err)
		}
	}
	v := reflect.ValueOf(&c).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Tag.Get("env")
		s, ok := os.LookupEnv(name)
		if !ok {
			continue
		}
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(s)
		case reflect.Bool:
			b, err := parseBool(s)
			if err != nil {
				return c, fmt.Errorf("%s: %w", name, err)
			}
			f.SetBool(b)
		case reflect.Int:
			n, err := strconv.Atoi(s)
			if err != nil {
				return c, fmt.Errorf("%s: %q is not a number", name, s)
			}
			f.SetInt(int64(n))
		}
	}
	c.defaults()
	for _, s := range strings.Split(c.Suites, ",") {
		if !slices.Contains(suiteNames, strings.TrimSpace(s)) {
			return c, fmt.Errorf("CONF_SUITES: unknown suite %q (suites: %s)", s, strings.Join(suiteNames, ", "))
		}
	}
	return c, nil
}

// parseBool reads a boolean variable: empty (set but blank) is false, like unset; otherwise
// what strconv.ParseBool takes (1, t, true, 0, f, false...).
func parseBool(s string) (bool, error) {
	if strings.TrimSpace(s) == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return false, fmt.Errorf("%q is not a boolean (1, true, 0, false, or empty for false)", s)
	}
	return b, nil
}

// decoded is the configuration's hex values, decoded once.
type decoded struct {
	uidPrefix     [4]byte   // EcuType ‖ SupplierID: how the UIDs of the suites' ECUs begin
	securityKey   [16]byte  // SecurityAccess
	initialMaster [16]byte  // the KMS's initial master key of the EcuType
	masterKey     *[16]byte // a real ECU's MASTER_ECU_KEY, when configured
	clusters      [][8]byte // the EcuType's SecOC clusters (CONF_CLUSTER_IDS); none: any
	timingMargin  time.Duration
	ecu           ecuDeclaration // the ECU's declared properties (CONF_ECU_*)
}

// decode checks and decodes the hex values.
func (c *Config) decode() (decoded, error) {
	var d decoded
	for _, f := range []struct {
		name, value string
		dst         []byte
	}{{"CONF_ECU_TYPE", c.EcuType, d.uidPrefix[:2]}, {"CONF_SUPPLIER_ID", c.SupplierID, d.uidPrefix[2:]},
		{"CONF_SECURITY_KEY", c.SecurityKey, d.securityKey[:]}, {"CONF_INITIAL_MASTER_KEY", c.InitialMaster, d.initialMaster[:]}} {
		b, err := hex.DecodeString(f.value)
		if err != nil || len(b) != len(f.dst) {
			return d, fmt.Errorf("%s: want %d hex digits", f.name, 2*len(f.dst))
		}
		copy(f.dst, b)
	}
	if c.MasterKey != "" {
		b, err := hex.DecodeString(c.MasterKey)
		if err != nil || len(b) != 16 {
			return d, errors.New("CONF_ECU_MASTER_KEY: want 32 hex digits")
		}
		d.masterKey = (*[16]byte)(b)
	}
	d.timingMargin = 50 * time.Millisecond
	if c.TimingMargin != "" {
		m, err := time.ParseDuration(c.TimingMargin)
		if err != nil || m < 0 || m > time.Minute {
			return d, fmt.Errorf("CONF_TIMING_MARGIN: %q is not a duration from 0 to 1m (e.g. 50ms)", c.TimingMargin)
		}
		d.timingMargin = m
	}
	var err error
	if d.ecu, err = c.ecuDeclaration(); err != nil {
		return d, err
	}
	d.clusters, err = parseClusterIDs(c.ClusterIDs)
	return d, err
}

// parseClusterIDs reads CONF_CLUSTER_IDS: empty, or at least two distinct ClusterIDs of 16 hex
// digits, comma-separated (the cluster test needs two clusters of the EcuType).
func parseClusterIDs(s string) ([][8]byte, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out [][8]byte
	for _, f := range strings.Split(s, ",") {
		b, err := hex.DecodeString(strings.TrimSpace(f))
		if err != nil || len(b) != 8 {
			return nil, fmt.Errorf("CONF_CLUSTER_IDS: %q is not a ClusterID (16 hex digits)", strings.TrimSpace(f))
		}
		if slices.Contains(out, [8]byte(b)) {
			return nil, fmt.Errorf("CONF_CLUSTER_IDS: ClusterID %s given twice", strings.TrimSpace(f))
		}
		out = append(out, [8]byte(b))
	}
	if len(out) < 2 {
		return nil, errors.New("CONF_CLUSTER_IDS: want at least two ClusterIDs of the EcuType, comma-separated (the cluster key test compares two clusters)")
	}
	return out, nil
}

// secrets are the configured values no output may show.
func (c *Config) secrets() []string {
	return []string{c.KMSToken, c.CLMLicense, c.SecurityKey, c.MasterKey, c.SupplierKey, c.InitialMaster}
}

// describe lists the configuration for the report, by variable name, secrets redacted.
func (c *Config) describe() map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		out[v.Type().Field(i).Tag.Get("env")] = fmt.Sprint(v.Field(i).Interface())
	}
	for _, name := range []string{"CONF_KMS_TOKEN", "CONF_CLM_LICENSE", "CONF_SECURITY_KEY", "CONF_ECU_MASTER_KEY",
		"CONF_SUPPLIER_SECRET_KEY", "CONF_INITIAL_MASTER_KEY"} {
		if out[name] != "" {
			out[name] = report.Redacted
		}
	}
	return out
}

// enabled reports whether suite runs.
func (c *Config) enabled(suite string) bool {
	for _, s := range strings.Split(c.Suites, ",") {
		if strings.TrimSpace(s) == suite {
			return true
		}
	}
	return false
}

// conf is the configuration of this run, read once before any spec, and confKeys its decoded values.
var (
	conf     Config
	confKeys decoded
)

// targets are the servers and buses the suites test, set up once.
var targets struct {
	kmsURL, clmURL string
	reference      *restartableReference // the in-process one, when a URL is not configured
	// the KMS of the authentication tests and the configured supplier's token: the KMS under
	// test, or in-process a second reference with bearer authentication
	securedKMSURL, securedToken string
}

// harnessFail reports a failure of the harness itself: the test ends in error, not fail.
func harnessFail(format string, args ...any) {
	Fail(report.HarnessPrefix+fmt.Sprintf(format, args...), 1)
}

// notApplicable ends the current test as not-applicable: the target's declaration says the
// feature it checks is absent. A certification run accepts it; it is never a plain skip.
func notApplicable(format string, args ...any) {
	Skip(report.NotApplicablePrefix+fmt.Sprintf(format, args...), 1)
}

// selfTest labels a test that checks the kit itself (our model, our simulator's fault flags, our
// audit log, a factory-state ECU only the simulator gives): it runs in make test and make run,
// never in a certification run against someone else's target.
var selfTest = Label("self-test")

// suite declares a suite's top container: its specs carry the suite's label and are skipped when
// CONF_SUITES leaves the suite out.
func suite(name, text string, body func()) bool {
	return Describe(text, Label(name), Ordered, ContinueOnFailure, func() {
		BeforeAll(func() {
			if !conf.enabled(name) {
				Skip(fmt.Sprintf("suite %s is not in CONF_SUITES=%s", name, conf.Suites))
			}
		})
		body()
	})
}

var _ = BeforeSuite(func() {
	var err error
	if conf, err = loadConfig(); err == nil {
		if conf.KMSURL == "" {
			conf.inProcessKMSDefaults()
		}
		confKeys, err = conf.decode()
	}
	if err != nil {
		harnessFail("configuration: %v", err)
	}
	targets.securedKMSURL, targets.securedToken = conf.KMSURL, conf.KMSToken
	if conf.KMSURL == "" {
		startSecuredKMS()
	}
	if conf.KMSURL != "" && conf.CLMURL != "" {
		targets.kmsURL, targets.clmURL = conf.KMSURL, conf.CLMURL
		return
	}
	reg, err := suiteRegistry()
	if err != nil {
		harnessFail("suite registry: %v", err)
	}
	srv, err := newRestartableReference(reference.Config{DataDir: GinkgoT().TempDir(), Registry: reg, CLMKeys: "ecdsa"})
	if err != nil {
		harnessFail("starting the reference server: %v", err)
	}
	DeferCleanup(srv.Close)
	var h http.Handler = srv
	if conf.AlterMessage != "" {
		reason, text, _ := strings.Cut(conf.AlterMessage, "=")
		h = alterMessage(h, reason, text)
	}
	url := serveLoopback(h)
	targets.reference = srv
	targets.kmsURL, targets.clmURL = url, url
	if conf.KMSURL != "" {
		targets.kmsURL = conf.KMSURL
	}
	if conf.CLMURL != "" {
		targets.clmURL = conf.CLMURL
	}
})
