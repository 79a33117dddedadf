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

	"github.com/shekit/shekit/conformance/report"
	"github.com/shekit/shekit/server/reference"
	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// The suites, in the order they run. CONF_SUITES selects some of them.
var suiteNames = []string{"kms", "clm", "ecu", "e2e", "vectors"}

// Config is the suites' configuration: the declaration (a YAML file, --config or CONF_FILE; the
// reference's own, conformance/reference.yaml, fills what a section without a URL leaves out) and
// the environment, variables winning. Each field's decl tag is its path in the declaration (none:
// environment only), its env tag its variable; secret marks a value no output may show.
type Config struct {
	Targets   string `decl:"targets" env:"CONF_TARGETS"`                   // certify these targets (kms, clm, ecu, station), comma-separated: only their tests run
	ReportDir string `decl:"report_dir" env:"CONF_REPORT_DIR"`             // where the reports go
	Suites    string `decl:"suites" env:"CONF_SUITES"`                     // comma-separated suites to run (default: all)
	Strict    bool   `decl:"strict" env:"CONF_STRICT"`                     // answers may carry no field the contracts do not name
	Focus     string `env:"CONF_FOCUS"`                                    // a regular expression: only the tests whose name it matches run
	KMSURL    string `decl:"kms.url" env:"CONF_KMS_URL"`                   // a KMS to test; empty: the reference, in-process
	KMSAuth   string `decl:"kms.auth" env:"CONF_KMS_AUTH"`                 // none, bearer (kms.token) or mtls (kms.client_cert, kms.client_key)
	KMSToken  string `decl:"kms.token" env:"CONF_KMS_TOKEN" secret:"true"` // the supplier's bearer token
	// mTLS: the client certificate and key (PEM files) the suites present, and the CA (PEM) of
	// the KMS's and CLM's server certificates beside the system's.
	ClientCert    string `decl:"kms.client_cert" env:"CONF_KMS_CLIENT_CERT"`
	ClientKey     string `decl:"kms.client_key" env:"CONF_KMS_CLIENT_KEY"`
	CAFile        string `decl:"kms.ca_file" env:"CONF_KMS_CA_FILE"`
	SupplierID    string `decl:"kms.supplier_id" env:"CONF_SUPPLIER_ID"`                               // the supplier the suites act as (4 hex digits)
	EcuType       string `decl:"kms.ecu_type" env:"CONF_ECU_TYPE"`                                     // an EcuType of that supplier in the KMS's registry
	SupplierKey   string `decl:"kms.supplier_secret_key" env:"CONF_SUPPLIER_SECRET_KEY" secret:"true"` // its SupplierSecretKey
	InitialMaster string `decl:"kms.initial_master_key" env:"CONF_INITIAL_MASTER_KEY" secret:"true"`   // the KMS's initial master key of that EcuType
	// The KMS's optional features: a test whose feature is not declared is not-applicable.
	KMSRestart        string `decl:"kms.restart" env:"CONF_KMS_RESTART" secret:"true"`       // a shell command that restarts the KMS
	RestrictedEcuType string `decl:"kms.restricted_ecu_type" env:"CONF_RESTRICTED_ECU_TYPE"` // an EcuType of the supplier that refuses some KeyIDs
	RefusedKeyIDs     string `decl:"kms.refused_key_ids" env:"CONF_REFUSED_KEY_IDS"`         // the KeyIDs it refuses, comma-separated
	OtherSupplierID   string `decl:"kms.other_supplier.id" env:"CONF_OTHER_SUPPLIER_ID"`     // another registered supplier (isolation tests)
	OtherEcuType      string `decl:"kms.other_supplier.ecu_type" env:"CONF_OTHER_ECU_TYPE"`  // an EcuType of that supplier
	ClusterIDs        string `decl:"kms.cluster_ids" env:"CONF_CLUSTER_IDS"`                 // the SecOC clusters of the EcuType's ECUs, comma-separated
	CLMURL            string `decl:"clm.url" env:"CONF_CLM_URL"`                             // a CLM to test; empty: the reference, in-process
	CLMLicense        string `decl:"clm.license" env:"CONF_CLM_LICENSE" secret:"true"`       // its license key
	// CLMCRL declares the CRL endpoint (GET /SWCLM/v10/crl/{catype}), which the CLM document does
	// not have; without it the CRL test is not-applicable.
	CLMCRL       bool   `decl:"clm.features.crl" env:"CONF_CLM_CRL"`
	CAN          string `decl:"ecu.can" env:"CONF_CAN"`                                 // mem (simulated ECUs in-process) or an interface such as vcan0
	ECUIDs       string `decl:"ecu.ids" env:"CONF_ECU_IDS"`                             // on an interface: the ECUs' request:response IDs, comma-separated
	KernelISOTP  bool   `decl:"ecu.kernel_isotp" env:"CONF_KERNEL_ISOTP"`               // on an interface: the kernel's ISO-TP instead of ours
	TimingMargin string `decl:"ecu.timing_margin" env:"CONF_TIMING_MARGIN"`             // on an interface: what the tester adds to P2 and P2* (default 50ms)
	Profile      string `decl:"ecu.profile" env:"CONF_PROFILE"`                         // SHE profile of the ECUs: autosar or csec
	DiagProfile  string `decl:"ecu.diag_profile" env:"CONF_DIAG_PROFILE"`               // the ECUs' diagnostic profile: a built-in name or a YAML file (default shekit-default)
	SecurityKey  string `decl:"ecu.security_key" env:"CONF_SECURITY_KEY" secret:"true"` // SecurityAccess key of the ECUs (32 hex digits)
	MasterKey    string `decl:"ecu.master_key" env:"CONF_ECU_MASTER_KEY" secret:"true"` // a real ECU's current MASTER_ECU_KEY (empty: factory state, all-zero)
	// The ECU's declared properties that the ecu suite's rule tests need (ecuDeclaration).
	ECUMaxAttempts    int    `decl:"ecu.max_attempts" env:"CONF_ECU_MAX_ATTEMPTS"`             // the wrong SecurityAccess key in a row answered NRC 0x36 (default 3)
	ECULockout        string `decl:"ecu.lockout" env:"CONF_ECU_LOCKOUT"`                       // the delay after it, NRC 0x37 meanwhile (default 10s; CONF_CAN=mem: 3s)
	ECUSeedLength     int    `decl:"ecu.seed_length" env:"CONF_ECU_SEED_LENGTH"`               // SecurityAccess seed length in bytes, 1 to 32 (default 16)
	ECUSacrificialKey string `decl:"ecu.sacrificial_key_id" env:"CONF_ECU_SACRIFICIAL_KEY_ID"` // a KEY_n slot (KeyID 4 to D) the suite may write-protect for good; absent: not applicable (CONF_CAN=mem: 9)
	Fleet             int    `decl:"station.fleet" env:"CONF_FLEET"`                           // simulated ECUs in the e2e suite
	// Self-test hooks: they make the in-process reference targets misbehave on purpose, so that a
	// run can show the suites notice. Environment only; never set them against a real target.
	SimFault     string `env:"CONF_SIM_FAULT"`         // a fault flag for every simulated ECU (see simFaults)
	AlterMessage string `env:"CONF_SIM_ALTER_MESSAGE"` // REASON=text: the in-process KMS answers text for REASON
	// The CLM's declared properties that some clm tests need; a test whose setting is missing is
	// not-applicable (the in-process reference has them all).
	CLMRestart      string `decl:"clm.restart" env:"CONF_CLM_RESTART" secret:"true"` // a shell command that restarts the CLM
	CLMIDValidity   string `decl:"clm.id_validity" env:"CONF_CLM_ID_VALIDITY"`       // how long an ID is valid from its create (Go duration, e.g. 876000h)
	CLMKeyValidity  string `decl:"clm.key_validity" env:"CONF_CLM_KEY_VALIDITY"`     // how long a key is valid from its create or update
	CLMCertValidity string `decl:"clm.cert_validity" env:"CONF_CLM_CERT_VALIDITY"`   // how long a certificate is valid from its issue (notAfter)

	// DoIP (ISO 13400-2) instead of CAN: the entity (a gateway or an ECU) at HOST:PORT, the ECUs'
	// logical addresses behind it (default: probed, doipECUAddresses), the suites' tester address
	// (default 0x0E80) and, for TLS, the CA (PEM) of the entity's certificate.
	DoIP          string `decl:"ecu.doip" env:"CONF_DOIP"`
	ECUAddresses  string `decl:"ecu.addresses" env:"CONF_ECU_ADDRESSES"`
	TesterAddress string `decl:"ecu.tester_address" env:"CONF_TESTER_ADDRESS"`
	DoIPCAFile    string `decl:"ecu.doip_ca_file" env:"CONF_DOIP_CA_FILE"`
}

// defaults fills what is not configured, outside a certification run (which takes only what the
// declaration says): the demo supplier of the reference server's demo registry.
func (c *Config) defaults() {
	set := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	if c.DoIP == "" {
		set(&c.CAN, "mem")
	}
	set(&c.Profile, "autosar")
	set(&c.DiagProfile, profile.DefaultName)
	set(&c.SecurityKey, hex.EncodeToString(ecu.DefaultSecurityKey[:]))
	set(&c.SupplierID, "001D")
	set(&c.EcuType, "0001")
	set(&c.SupplierKey, "1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d")
	set(&c.InitialMaster, "00000000000000000000000000000000")
	set(&c.CLMLicense, reference.DemoLicense)
	set(&c.ReportDir, "report")
	if c.Fleet == 0 {
		c.Fleet = 8
	}
}

// loadConfig reads the declaration named by CONF_FILE (see loadConfigFrom).
func loadConfig() (Config, error) { return loadConfigFrom(os.Getenv("CONF_FILE")) }

// loadConfigFrom reads the declaration file (if any), then the environment; a section without a
// URL (or, for the ECUs, a CAN interface) takes the in-process reference's declaration.
func loadConfigFrom(file string) (Config, error) {
	var c Config
	given := map[string]bool{} // the declaration paths the file or the environment sets
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return c, fmt.Errorf("declaration: %w", err)
		}
		if err := decodeDeclaration(file, b, &c, given); err != nil {
			return c, err
		}
	}
	if err := c.fromEnv(given); err != nil {
		return c, err
	}
	c.doipFromProfile()
	if err := c.referenceFill(given); err != nil {
		return c, err
	}
	if err := c.checkTransport(); err != nil {
		return c, err
	}
	if err := c.checkAuth(); err != nil {
		return c, err
	}
	targets, err := c.targets()
	if err != nil {
		return c, err
	}
	if len(targets) > 0 {
		return c, c.required(targets)
	}
	c.defaults()
	if c.Suites == "" {
		c.Suites = strings.Join(suiteNames, ",")
	}
	for _, s := range strings.Split(c.Suites, ",") {
		if !slices.Contains(suiteNames, strings.TrimSpace(s)) {
			return c, fmt.Errorf("CONF_SUITES: unknown suite %q (suites: %s)", s, strings.Join(suiteNames, ", "))
		}
	}
	return c, nil
}

// fromEnv sets every field whose variable is set, and notes its declaration path in given.
func (c *Config) fromEnv(given map[string]bool) error {
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		name := v.Type().Field(i).Tag.Get("env")
		s, ok := os.LookupEnv(name)
		if !ok {
			continue
		}
		if path := v.Type().Field(i).Tag.Get("decl"); path != "" {
			given[path] = true
		}
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(s)
		case reflect.Bool:
			b, err := parseBool(s)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			f.SetBool(b)
		case reflect.Int:
			n, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("%s: %q is not a number", name, s)
			}
			f.SetInt(int64(n))
		}
	}
	return nil
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
	doip          doipDeclaration
	diagProfile   *profile.Profile // how the ECUs are reached and take their keys (CONF_DIAG_PROFILE)
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
	if d.diagProfile, err = c.diagProfile(); err != nil {
		return d, err
	}
	if d.ecu, err = c.ecuDeclaration(); err != nil {
		return d, err
	}
	if d.doip, err = c.decodeDoIP(); err != nil {
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

// secrets are the configured values no output may show: every field tagged secret.
func (c *Config) secrets() []string {
	var out []string
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("secret") == "true" && v.Field(i).Kind() == reflect.String {
			out = append(out, v.Field(i).String())
		}
	}
	return out
}

// describe lists the configuration for the report, by declaration path (or variable, for a
// field the environment alone sets), secrets and the restart command redacted.
func (c *Config) describe() map[string]string {
	out := map[string]string{}
	v := reflect.ValueOf(c).Elem()
	for i := range v.NumField() {
		tag := v.Type().Field(i).Tag
		name := tag.Get("decl")
		if name == "" {
			name = tag.Get("env")
		}
		out[name] = fmt.Sprint(v.Field(i).Interface())
		if tag.Get("secret") == "true" && out[name] != "" {
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
var selfTest = Label(report.SelfTest)

// suiteTargets is the target of each suite's tests; the vectors suite's are self-tests (they check
// the vectors against the kit's model and against fresh in-process reference servers).
var suiteTargets = map[string]string{"kms": "kms", "clm": "clm", "ecu": "ecu", "e2e": "station"}

// targetLabel is the label of a test of target.
func targetLabel(target string) Labels { return Label(report.TargetLabelPrefix + target) }

// suite declares a suite's top container: its specs carry the suite's label and its target's,
// and are skipped when CONF_SUITES leaves the suite out.
func suite(name, text string, body func()) bool {
	labels := Label(name)
	switch t, ok := suiteTargets[name]; {
	case ok:
		labels = append(labels, targetLabel(t)...)
	case name == "vectors": // the vectors against the kit's model and fresh reference servers
		labels = append(labels, selfTest...)
	} // another suite's tests have no target until suiteTargets gives one: the run fails naming them
	return Describe(text, labels, Ordered, ContinueOnFailure, func() {
		BeforeAll(func() {
			if !conf.enabled(name) {
				Skip(fmt.Sprintf("suite %s is not in CONF_SUITES=%s", name, conf.Suites))
			}
		})
		body()
	})
}

// confErr is what went wrong reading the configuration (before RunSpecs); BeforeSuite reports it
// as a harness error, so no test runs.
var confErr error

var _ = BeforeSuite(func() {
	err := confErr
	if err == nil {
		confKeys, err = conf.decode()
	}
	if err == nil {
		err = conf.useTLS()
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
