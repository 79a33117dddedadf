package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
	"github.com/shekit/shekit/vcan/uds/profile"
)

// ecuFlags are the flags of the ecu and fleet commands.
type ecuFlags struct {
	can, uid, tx, rx, store, profile, securityKey, log string
	initialMaster, padding, diagProfile                string
	doip, announce, logicalAddress                     string
	txID, rxID                                         uint32
	firstECU                                           uint16 // over DoIP: the (first) ECU's logical address
	count, seedLength                                  int
	noSecurity, kernelISOTP                            bool
	relockSameSession, rngInitAtBoot                   bool
	faults                                             ecu.Faults
	set                                                map[string]bool // the flags given on the command line
}

func (f *ecuFlags) register(fs *flag.FlagSet, fleet bool) {
	fs.StringVar(&f.can, "can", "mem", "CAN interface (vcan0, can0) or mem for the in-memory bus")
	fs.StringVar(&f.uid, "uid", "0001001d0000000000000000000001", "SHE UID, 30 hex digits (a fleet's base UID)")
	fs.StringVar(&f.store, "store", "", "key store directory, one file per UID (empty: nothing persists)")
	fs.StringVar(&f.profile, "profile", "autosar", "SHE profile: autosar or csec")
	fs.StringVar(&f.diagProfile, "diag-profile", profile.DefaultName,
		"diagnostic profile: a built-in name or a YAML file (simulator profiles lists them); its CAN IDs, link,\n"+
			"SecurityAccess and operations apply unless --tx, --rx, --padding, --security-key or --seed-length is given")
	fs.StringVar(&f.securityKey, "security-key", hex.EncodeToString(ecu.DefaultSecurityKey[:]), "SecurityAccess key, 32 hex digits (an aes-cmac profile's key by default)")
	fs.StringVar(&f.initialMaster, "initial-master-key", "", "factory MASTER_ECU_KEY, 32 hex digits (default: empty, authorizing as all-zero)")
	fs.BoolVar(&f.noSecurity, "no-security", false, "allow the SHE routines without SecurityAccess")
	fs.BoolVar(&f.kernelISOTP, "kernel-isotp", false, "use the Linux kernel's CAN_ISOTP socket instead of user-space ISO-TP")
	fs.IntVar(&f.seedLength, "seed-length", 16, "SecurityAccess seed length in bytes, 1 to 32 (the diagnostic profile's by default)")
	fs.BoolVar(&f.relockSameSession, "relock-same-session", false, "re-lock SecurityAccess when the active session is requested again")
	fs.StringVar(&f.padding, "padding", "cc", "ISO-TP padding byte in hex, or none (the diagnostic profile's by default)")
	fs.BoolVar(&f.rngInitAtBoot, "rng-init-at-boot", false, "run CMD_INIT_RNG at every power-on (SREG RND_INIT set)")
	fs.StringVar(&f.log, "log", "", "write the bus traffic to this file in candump's log format")
	fs.StringVar(&f.doip, "doip", "", "also serve over DoIP (ISO 13400-2) on HOST:PORT, TCP and UDP: an entity that forwards to the ECUs on the bus\n"+
		"(a DoIP diagnostic profile's entity by default; its logical address is the first ECU's)")
	fs.StringVar(&f.announce, "announce", "", "with --doip: send vehicle announcements to this UDP HOST:PORT (default: none)")
	if fleet {
		fs.IntVar(&f.count, "count", 2, "number of ECUs (IDs: 0x7E0+i/0x7E8+i up to 8, else 29-bit 0x18000000|i<<4 and |0x8;\n"+
			"another diagnostic profile: its IDs +i, or its ECU address +i with normal-fixed addressing)")
	} else {
		fs.StringVar(&f.tx, "tx", "0x7E8", "CAN ID the ECU answers with (the diagnostic profile's response ID by default)")
		fs.StringVar(&f.rx, "rx", "0x7E0", "CAN ID the ECU listens to (the diagnostic profile's request ID by default)")
		fs.StringVar(&f.logicalAddress, "logical-address", "0x1001", "with --doip: the ECU's DoIP logical address (a DoIP diagnostic profile's by default)")
	}
	fs.BoolVar(&f.faults.WrongProof, "fault-wrong-proof", false, "fault: LoadKey answers a wrong M5")
	fs.BoolVar(&f.faults.NoCounterCheck, "fault-no-counter-check", false, "fault: the SHE does not check counters")
	fs.BoolVar(&f.faults.AcceptWildcard, "fault-accept-wildcard", false, "fault: the SHE accepts the wildcard UID on WILDCARD keys")
	fs.BoolVar(&f.faults.NVMFailure, "fault-nvm-failure", false, "fault: key store writes fail (NRC 0x72)")
	fs.DurationVar(&f.faults.SlowNVM, "fault-slow-nvm", 0, "fault: key store writes take this long (response pending, 0x78)")
	fs.BoolVar(&f.faults.Silent, "fault-silent", false, "fault: the ECU never answers")
	fs.BoolVar(&f.faults.BootFailure, "fault-boot-failure", false, "fault: secure boot fails at power-on")
	fs.DurationVar(&f.faults.LateAnswers, "fault-late-answers", 0, "fault: each answer is held back this long (past P2) once; a repeated request is answered in time")
}

// parseCANID reads a CAN ID in decimal or 0x-hex.
func parseCANID(name, s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 0, 32)
	if err != nil || v > 0x1FFFFFFF {
		return 0, fmt.Errorf("--%s: %q is not a CAN ID", name, s)
	}
	return uint32(v), nil
}

// config turns the flags into an ECU configuration.
func (f *ecuFlags) config() (ecu.Config, error) {
	var cfg ecu.Config
	uid, err := she.ParseUID(f.uid)
	if err != nil {
		return cfg, fmt.Errorf("--uid: %w", err)
	}
	sheProfile, err := she.ProfileByName(f.profile)
	if err != nil {
		return cfg, fmt.Errorf("--profile: %w", err)
	}
	diag, err := profile.Find(f.diagProfile)
	if err != nil {
		return cfg, fmt.Errorf("--diag-profile: %w", err)
	}
	diag = canSide(diag)
	key, err := hex.DecodeString(f.securityKey)
	if err != nil || len(key) != 16 {
		return cfg, fmt.Errorf("--security-key: want 32 hex digits")
	}
	if f.tx != "" && f.set != nil && !f.set["tx"] && !f.set["rx"] {
		ids := diag.Addressing.IDs()
		f.tx, f.rx = fmt.Sprintf("%#x", ids.Response), fmt.Sprintf("%#x", ids.Request)
	}
	if f.tx != "" {
		if f.txID, err = parseCANID("tx", f.tx); err != nil {
			return cfg, err
		}
		if f.rxID, err = parseCANID("rx", f.rx); err != nil {
			return cfg, err
		}
	}
	padding, err := ecu.ParsePadding(f.padding)
	if err != nil {
		return cfg, fmt.Errorf("--padding: %w", err)
	}
	if f.seedLength < 1 || f.seedLength > ecu.MaxSeedLength {
		return cfg, fmt.Errorf("--seed-length: want 1 to %d", ecu.MaxSeedLength)
	}
	if err := f.doipDefaults(diag, f.tx == ""); err != nil {
		return cfg, err
	}
	cfg = ecu.Config{UID: uid, Profile: sheProfile, StoreDir: f.store, NoSecurity: f.noSecurity, Faults: f.faults,
		RelockSameSession: f.relockSameSession, RNGInitAtBoot: f.rngInitAtBoot, DiagProfile: diag}
	f.overrides(&cfg, key, padding)
	if f.initialMaster != "" {
		m, err := hex.DecodeString(f.initialMaster)
		if err != nil || len(m) != 16 {
			return cfg, fmt.Errorf("--initial-master-key: want 32 hex digits")
		}
		master := [16]byte(m)
		cfg.InitialMasterKey = &master
	}
	return cfg, nil
}

// overrides puts into cfg the settings of the flags that override the diagnostic profile's:
// with the default profile all of them (their defaults are its values), with another only those
// given on the command line (all, when the flags were not parsed by runECU).
func (f *ecuFlags) overrides(cfg *ecu.Config, key []byte, padding ecu.Padding) {
	given := func(name string) bool {
		return f.set == nil || f.set[name] || ecu.IsDefaultDiagProfile(cfg.DiagProfile)
	}
	if given("security-key") {
		k := [16]byte(key)
		cfg.SecurityKey = &k
	}
	if given("seed-length") {
		cfg.SeedLength = f.seedLength
	}
	if given("padding") {
		cfg.Padding = padding
	}
}

// runECU runs the ecu or fleet command until ctx ends.
func runECU(ctx context.Context, name string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f ecuFlags
	f.register(fs, name == "fleet")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		fmt.Fprintf(stderr, "simulator %s: %v\n", name, err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "simulator %s: unexpected argument %q\n", name, fs.Arg(0))
		return exitUsage
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	cfg, err := f.config()
	if err == nil && name == "fleet" && f.count < 1 {
		err = fmt.Errorf("--count: want at least 1")
	}
	if err != nil {
		fmt.Fprintf(stderr, "simulator %s: %v\n", name, err)
		return exitUsage
	}
	if err := serveECUs(ctx, name, &f, cfg, stdout); err != nil {
		fmt.Fprintf(stderr, "simulator %s: %v\n", name, err)
		return 1
	}
	return 0
}

// serveECUs starts one ECU (or a fleet) on the chosen bus, logs the traffic if asked, and serves
// until ctx ends.
func serveECUs(ctx context.Context, name string, f *ecuFlags, cfg ecu.Config, stdout io.Writer) error {
	var dial ecu.Dialer
	var tap vcan.Conn
	if f.can == "mem" {
		if f.kernelISOTP {
			return errors.New("--kernel-isotp needs a CAN interface, not mem")
		}
		hub := vcan.NewHub()
		defer hub.Close()
		dial = ecu.HubDialer(hub)
		if f.log != "" {
			tap = hub.Connect()
		}
		fmt.Fprintln(stdout, "bus: in-memory (only this process can reach it)")
	} else {
		dial = ecu.SocketCANDialer(ctx, f.can, cfg.DiagProfile)
		if f.log != "" {
			s, err := dial()
			if err != nil {
				return err
			}
			tap = s
		}
	}
	if tap != nil {
		out, err := os.Create(f.log)
		if err != nil {
			return err
		}
		defer out.Close()
		stopLog := logTraffic(ctx, tap, vcan.NewLogWriter(out, f.can))
		defer stopLog()
	}
	opts := cfg.TransportOptions()
	open := func(tx, rx uint32) (isotp.Transport, error) { return ecu.Transport(dial, tx, rx, opts...) }
	if f.kernelISOTP {
		open = func(tx, rx uint32) (isotp.Transport, error) { return ecu.KernelTransport(f.can, tx, rx, opts...) }
	}
	gateway := func(ids profile.CANIDs) (isotp.Transport, error) {
		return gatewayTransport(dial, f.kernelISOTP, f.can, cfg.DiagProfile, ids)
	}
	if name == "ecu" {
		tx, rx := f.txID, f.rxID
		ids, err := ecu.DiagFleetIDs(cfg.DiagProfile, 0, 1)
		if err != nil {
			return err
		}
		ids.Request, ids.Response = rx, tx
		t, err := ecu.FunctionalOpener(dial, open, opts...)(ids)
		if err != nil {
			return err
		}
		defer t.Close()
		e, err := ecu.New(cfg, t)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "ECU %s listening on %s: request %#x, response %#x\n", cfg.UID, f.can, rx, tx)
		if f.doip != "" {
			wait, err := serveDoIP(ctx, f, f.firstECU, cfg.UID, []doipRoute{{f.firstECU, ids}}, gateway, stdout)
			if err != nil {
				return err
			}
			defer wait()
		}
		return e.Serve(ctx)
	}
	fleet, err := ecu.StartFleetAddressed(ctx, ecu.FunctionalOpener(dial, open, opts...), cfg, f.count)
	if err != nil {
		return err
	}
	if f.doip != "" {
		routes, err := fleetRoutes(cfg.DiagProfile, f.firstECU, f.count)
		if err != nil {
			fleet.Stop()
			return err
		}
		wait, err := serveDoIP(ctx, f, doipGatewayAddress, cfg.UID, routes, gateway, stdout)
		if err != nil {
			fleet.Stop()
			return err
		}
		defer wait()
	}
	ids, _ := ecu.DiagFleetIDs(cfg.DiagProfile, 0, f.count)
	fmt.Fprintf(stdout, "%d ECUs listening on %s (first: UID %s, request %#x, response %#x)\n",
		f.count, f.can, ecu.FleetUID(cfg.UID, 0), ids.Request, ids.Response)
	<-ctx.Done()
	return fleet.Stop()
}

// logTraffic writes every frame tap receives to lw until the returned function is called.
func logTraffic(ctx context.Context, tap vcan.Conn, lw *vcan.LogWriter) func() {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { vcan.Capture(ctx, tap, lw); close(done) }()
	return func() { cancel(); tap.Close(); <-done }
}
