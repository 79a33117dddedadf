package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/station"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// stationFlags are the station command's flags.
type stationFlags struct {
	kms, token, can, types, cluster, model, secret, phase, securityKey, summary, uid string
	doip, discover, diagProfile                                                      string
	ecus                                                                             listFlag
	fleet, parallel, retries                                                         int
	sync, noSecurity, kernelISOTP                                                    bool
	timeout                                                                          time.Duration
	kmsRequests, kmsPerECU                                                           int
	testerPresent                                                                    time.Duration
}

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func (f *stationFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.kms, "kms", "", "base URL of the KMS supplier API (required)")
	fs.StringVar(&f.token, "token", os.Getenv("SHEKIT_KMS_TOKEN"), "bearer token for the KMS (env SHEKIT_KMS_TOKEN)")
	fs.StringVar(&f.can, "can", "mem", "CAN interface (vcan0, can0), or mem: simulated ECUs in this process")
	fs.StringVar(&f.diagProfile, "diag-profile", profile.DefaultName, "the ECUs' diagnostic profile: a built-in name or a YAML file")
	fs.Var(&f.ecus, "ecu", "an ECU's request and response CAN IDs, TX:RX (e.g. 0x7E0:0x7E8), in place of the profile's; repeatable")
	fs.IntVar(&f.fleet, "fleet", 0, "N ECUs at the IDs of `simulator fleet --count N` (1: the profile's ECU; with --can mem: started here)")
	fs.StringVar(&f.uid, "fleet-uid", "0001001d0000000000000000000001", "with --can mem: the simulated fleet's base UID")
	fs.StringVar(&f.types, "types", "master,supplier,secoc:4-C", "keys: master, supplier, secoc:ID or secoc:FROM-TO (hex 4..C)")
	fs.BoolVar(&f.sync, "sync", false, "check every injected key with the KMS's KeySyncValue and report the outcome")
	fs.StringVar(&f.cluster, "cluster", "0000000000000001", "ClusterID of the EcuID, 16 hex digits")
	fs.StringVar(&f.model, "model", "00000001", "Model of the EcuID, 8 hex digits")
	fs.StringVar(&f.secret, "secret", os.Getenv("SHEKIT_SUPPLIER_SECRET"), "SupplierSecretKey for SecOC keys, 32 hex digits (env SHEKIT_SUPPLIER_SECRET)")
	fs.StringVar(&f.phase, "phase", "", "Phase sent with each request (Prod or Dev; default: the supplier's)")
	fs.StringVar(&f.securityKey, "security-key", "", "SecurityAccess AES-CMAC key, 32 hex digits (default: the profile's)")
	fs.BoolVar(&f.noSecurity, "no-security", false, "skip SecurityAccess")
	fs.BoolVar(&f.kernelISOTP, "kernel-isotp", false, "use the Linux kernel's CAN_ISOTP socket instead of user-space ISO-TP")
	fs.IntVar(&f.parallel, "parallel", 16, "ECUs worked on at once")
	fs.IntVar(&f.kmsRequests, "kms-requests", 64, "KMS requests in flight at most, across all ECUs")
	fs.IntVar(&f.kmsPerECU, "kms-requests-per-ecu", 16, "KMS requests in flight at most for one ECU")
	fs.IntVar(&f.retries, "retries", 1, "tries again after a failure that may pass (no answer, NRC 0x21 or 0x72), with new messages")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "bound on each request to the KMS or an ECU")
	fs.DurationVar(&f.testerPresent, "tester-present", 2*time.Second, "send TesterPresent after this long without a request to an ECU whose keys are in flight (keeps the session past the ECU's S3; 0: never)")
	fs.StringVar(&f.summary, "summary", "-", "where to write the JSON summary (- for standard output)")
	fs.StringVar(&f.doip, "doip", "", "reach the ECUs over DoIP through the entity at HOST:PORT (or discover: the first to answer vehicle identification); --ecu then takes logical addresses, --fleet N means 0x1001+i\n"+
		"(a DoIP diagnostic profile: its entity by default, its tester address, its logical address +i)")
	fs.StringVar(&f.discover, "discover", "255.255.255.255:13400", "with --doip discover: where the vehicle identification request goes")
}

// ecuAddr is one --ecu.
type ecuAddr struct {
	ids     profile.CANIDs // on CAN
	logical uint16         // with --doip
}

// addresses turns --ecu and --fleet into the ECUs to work on: --ecu replaces the profile's CAN
// IDs (its address bytes stay), --fleet numbers ECUs from the profile's as the fleet command does.
func (f *stationFlags) addresses(p *profile.Profile) ([]ecuAddr, error) {
	if f.doip != "" {
		return f.doipAddresses(p)
	}
	var out []ecuAddr
	for _, e := range f.ecus {
		tx, rx, ok := strings.Cut(e, ":")
		if !ok {
			return nil, fmt.Errorf("--ecu: %q is not TX:RX", e)
		}
		t, err := parseCANID("ecu", tx)
		if err != nil {
			return nil, err
		}
		r, err := parseCANID("ecu", rx)
		if err != nil {
			return nil, err
		}
		ids := p.Addressing.IDs()
		ids.Request, ids.Response = t, r
		ids.Extended = ids.Extended || ecu.Extended(t, r)
		out = append(out, ecuAddr{ids: ids})
	}
	for i := range f.fleet {
		ids, err := ecu.DiagFleetIDs(p, i, f.fleet)
		if err != nil {
			return nil, fmt.Errorf("--fleet: %w", err)
		}
		out = append(out, ecuAddr{ids: ids})
	}
	if len(out) == 0 {
		return nil, errors.New("no ECU: give --ecu TX:RX or --fleet N (--fleet 1: the profile's ECU)")
	}
	return out, nil
}

// hexFlag decodes a flag of n bytes.
func hexFlag(name, s string, n int) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("--%s: want %d hex digits", name, 2*n)
	}
	return b, nil
}

// config turns the flags into the station's configuration (without its targets) under the
// diagnostic profile p.
func (f *stationFlags) config(p *profile.Profile) (station.Config, error) {
	var cfg station.Config
	if f.kms == "" {
		return cfg, errors.New("--kms: the KMS's URL is required")
	}
	keys, err := station.ParseKeys(f.types)
	if err != nil {
		return cfg, fmt.Errorf("--types: %w", err)
	}
	cluster, err := hexFlag("cluster", f.cluster, 8)
	if err != nil {
		return cfg, err
	}
	model, err := hexFlag("model", f.model, 4)
	if err != nil {
		return cfg, err
	}
	sk := ecu.DefaultSecurityKey[:]
	if p.Security.Algorithm == profile.AlgorithmAESCMAC {
		sk = p.Security.Key
	}
	if f.securityKey != "" {
		if sk, err = hexFlag("security-key", f.securityKey, 16); err != nil {
			return cfg, err
		}
	}
	if f.secret != "" {
		if _, err := hexFlag("secret", f.secret, 16); err != nil {
			return cfg, err
		}
	}
	if f.parallel < 1 || f.kmsRequests < 1 || f.kmsPerECU < 1 {
		return cfg, errors.New("--parallel, --kms-requests, --kms-requests-per-ecu: want at least 1")
	}
	testerPresent := f.testerPresent
	if testerPresent == 0 {
		testerPresent = -1 // Config's zero means the default
	}
	key := [16]byte(sk)
	retries := f.retries
	if retries == 0 {
		retries = -1 // Config's zero means the default
	}
	return station.Config{KMS: &station.KMS{URL: f.kms, Token: f.token}, Keys: keys, Sync: f.sync,
		ClusterID: [8]byte(cluster), Model: [4]byte(model), SupplierSecretKey: f.secret, Phase: f.phase,
		SecurityKey: &key, NoSecurity: f.noSecurity, Parallel: f.parallel, Retries: retries, StepTimeout: f.timeout,
		KMSRequests: f.kmsRequests, KMSRequestsPerECU: f.kmsPerECU, TesterPresent: testerPresent}, nil
}

// runStation runs the station command.
func runStation(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("station", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f stationFlags
	f.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "simulator station: %v\n", err)
		return exitUsage
	}
	p, err := profile.Find(f.diagProfile)
	if err != nil {
		err = fmt.Errorf("--diag-profile: %w", err)
	}
	if err == nil {
		err = f.doipFromProfile(p)
	}
	var cfg station.Config
	if err == nil {
		cfg, err = f.config(p)
	}
	var addrs []ecuAddr
	if err == nil {
		addrs, err = f.addresses(p)
	}
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err == nil && f.doip != "" && f.kernelISOTP {
		err = errors.New("--kernel-isotp is for CAN, not --doip")
	}
	if err == nil && f.can == "mem" && f.kernelISOTP {
		err = errors.New("--kernel-isotp needs a CAN interface, not mem")
	}
	if err != nil {
		fmt.Fprintf(stderr, "simulator station: %v\n", err)
		return exitUsage
	}
	targets, stop, err := dialTargets(ctx, &f, p, addrs)
	if err != nil {
		fmt.Fprintf(stderr, "simulator station: %v\n", err)
		return 1
	}
	defer stop()
	cfg.Progress = progressPrinter(stderr)
	sum := station.Run(ctx, cfg, targets)
	out := stdout
	if f.summary != "-" {
		file, err := os.Create(f.summary)
		if err != nil {
			fmt.Fprintf(stderr, "simulator station: %v\n", err)
			return 1
		}
		defer file.Close()
		out = file
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sum); err != nil {
		fmt.Fprintf(stderr, "simulator station: summary: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "%d ECUs: %d provisioned, %d failed in %.2f s; keys %v\n",
		sum.Totals.ECUs, sum.Totals.ECUsOK, sum.Totals.ECUsFailed, sum.Seconds, sum.Totals.Keys)
	if !sum.OK() {
		return 1
	}
	return 0
}

// dialTargets connects to each ECU, speaking diagnostic profile p: on --can mem, a fleet
// started here first.
func dialTargets(ctx context.Context, f *stationFlags, p *profile.Profile, addrs []ecuAddr) ([]station.Target, func(), error) {
	if f.doip != "" {
		return dialDoIP(ctx, f, p, addrs)
	}
	var closers []func()
	stop := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	var dial ecu.Dialer
	if f.can == "mem" {
		hub := vcan.NewHub()
		closers = append(closers, func() { hub.Close() })
		dial = ecu.HubDialer(hub)
		if err := startMemECUs(ctx, f, p, dial, addrs, &closers); err != nil {
			stop()
			return nil, func() {}, err
		}
	} else {
		dial = ecu.SocketCANDialer(ctx, f.can, p)
	}
	var targets []station.Target
	for _, a := range addrs {
		var c *ecu.Client
		var err error
		if f.kernelISOTP {
			var k *isotp.KernelConn
			k, err = ecu.KernelTransport(f.can, a.ids.Request, a.ids.Response, ecu.DiagTesterOptions(p, a.ids)...)
			if err == nil {
				c = ecu.NewProfileClient(k, p)
			}
		} else {
			c, err = ecu.DialProfile(dial, p, a.ids)
		}
		if err != nil {
			stop()
			return nil, func() {}, err
		}
		closers = append(closers, func() { c.Close() })
		targets = append(targets, station.Target{Name: fmt.Sprintf("%#x:%#x", a.ids.Request, a.ids.Response), Client: c})
	}
	return targets, stop, nil
}

// startMemECUs starts a simulated ECU speaking p behind each address, on the bus of dial; each
// one's stop is added to closers.
func startMemECUs(ctx context.Context, f *stationFlags, p *profile.Profile, dial ecu.Dialer, addrs []ecuAddr, closers *[]func()) error {
	uid, err := hexFlag("fleet-uid", f.uid, 15)
	if err != nil {
		return err
	}
	for i, a := range addrs {
		conn, err := dial(vcan.ExactID(a.ids.Request, a.ids.Extended))
		if err != nil {
			return err
		}
		cfg := ecu.Config{UID: ecu.FleetUID([15]byte(uid), i), DiagProfile: p}
		t := isotp.New(conn, a.ids.Response, a.ids.Request, append(cfg.TransportOptions(), extendedIDs(a.ids)...)...)
		e, err := ecu.New(cfg, t)
		if err != nil {
			t.Close()
			return err
		}
		ectx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { e.Serve(ectx); close(done) }()
		*closers = append(*closers, func() { cancel(); <-done; t.Close() })
	}
	return nil
}

// extendedIDs is the 29-bit option when ids need it.
func extendedIDs(ids profile.CANIDs) []isotp.Option {
	if ids.Extended {
		return []isotp.Option{isotp.WithExtendedIDs()}
	}
	return nil
}

// progressPrinter reports each finished ECU: as a bar redrawn in place on a terminal, else as
// one line per ECU.
func progressPrinter(w io.Writer) func(done, total int, r *station.ECUResult) {
	file, ok := w.(*os.File)
	terminal := false
	if ok {
		if st, err := file.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			terminal = true
		}
	}
	failed := 0
	return func(done, total int, r *station.ECUResult) {
		if !r.OK {
			failed++
		}
		if !terminal {
			fmt.Fprintf(w, "[%d/%d] %s %s\n", done, total, r.Name, ecuLine(r))
			return
		}
		const width = 40
		n := done * width / total
		fmt.Fprintf(w, "\r[%s%s] %d/%d ECUs, %d failed", strings.Repeat("#", n), strings.Repeat(".", width-n), done, total, failed)
		if !r.OK {
			fmt.Fprintf(w, "\r\033[K%s %s\n", r.Name, ecuLine(r))
		}
		if done == total {
			fmt.Fprintln(w)
		}
	}
}

// ecuLine says in a few words how an ECU went.
func ecuLine(r *station.ECUResult) string {
	if r.Error != "" {
		return "FAILED: " + r.Error
	}
	ok := 0
	var first string
	for _, k := range r.Keys {
		switch {
		case k.Outcome != station.Injected:
			if first == "" {
				first = fmt.Sprintf("%s %s: %s", k.Type, k.KeyID, k.Message)
			}
		case k.Sync != nil && k.Sync.Outcome != station.Verified:
			if first == "" {
				first = fmt.Sprintf("%s %s sync: %s", k.Type, k.KeyID, k.Sync.Message)
			}
		default:
			ok++
		}
	}
	if first != "" {
		return fmt.Sprintf("FAILED (%d/%d keys): %s", ok, len(r.Keys), first)
	}
	return fmt.Sprintf("ok (%d keys, %.0f ms)", ok, r.Seconds*1000)
}
