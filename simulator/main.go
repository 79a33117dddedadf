// Command simulator is the supplier side of the SHE provisioning kit.
//
// Usage:
//
//	simulator she m1m5   --uid HEX --key-id N --auth-id N --auth-key HEX --new-key HEX --counter N --flags BBBBB
//	simulator she open   --auth-key HEX --m1 HEX --m2 HEX --m3 HEX
//	simulator she verify --new-key HEX --m4 HEX --m5 HEX
//	simulator ecu   --can mem|IFACE --uid HEX --tx 0x7E8 --rx 0x7E0 --store DIR --profile autosar|csec [faults]
//	simulator fleet --can mem|IFACE --count N [--uid HEX] [--store DIR] [--profile …] [faults]
//	simulator profiles [NAME|FILE]
//	simulator station --kms URL --can mem|IFACE --ecu TX:RX [--ecu …] | --fleet N
//	                  --types master,supplier,secoc:4-C [--sync] [--cluster HEX --model HEX --secret HEX]
//
// ecu and fleet take --diag-profile NAME|FILE: how the ECU is reached and how each SHE operation
// travels in UDS; profiles lists the built-in ones.
//
// The she commands are a calculator for the SHE memory update protocol: they print one JSON
// object on standard output. ecu and fleet run simulated ECUs until interrupted. station provisions ECUs
// from a KMS, prints a JSON summary and exits 0 when every key went in (1 otherwise). Bad input prints
// one line on standard error and exits with status 2.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// exitUsage is the exit status for bad input.
const exitUsage = 2

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// usage is printed for -h and for a missing or unknown command.
const usage = `usage:
  simulator she m1m5   --uid HEX --key-id N --auth-id N --auth-key HEX --new-key HEX --counter N --flags BBBBB
  simulator she open   --auth-key HEX --m1 HEX --m2 HEX --m3 HEX
  simulator she verify --new-key HEX --m4 HEX --m5 HEX
  simulator ecu   --can mem|IFACE --uid HEX --tx 0x7E8 --rx 0x7E0 --store DIR --profile autosar|csec [options]
  simulator fleet --can mem|IFACE --count N [--uid HEX] [--store DIR] [options]
  simulator profiles [NAME|FILE]   (the diagnostic profiles for --diag-profile NAME|FILE)
  simulator station --kms URL --can mem|IFACE (--ecu TX:RX ... | --fleet N) [--types master,supplier,secoc:4-C] [--sync]
  (simulator ecu -h and simulator station -h list the options)
`

// run executes the command line args until ctx ends and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "she":
		return runSHE(args[1:], stdout, stderr)
	case "ecu", "fleet":
		return runECU(ctx, args[0], args[1:], stdout, stderr)
	case "station":
		return runStation(ctx, args[1:], stdout, stderr)
	case "profiles":
		return runProfiles(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "simulator: unknown command %q (try: simulator help)\n", args[0])
	return exitUsage
}
