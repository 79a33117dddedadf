package conformance_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shekit/shekit/conformance/report"
)

// buildSimulator builds the simulator command (go run ./simulator) into dir.
func buildSimulator(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "simulator")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/shekit/shekit/simulator").CombinedOutput(); err != nil {
		t.Fatalf("go build ./simulator: %v\n%s", err, out)
	}
	return bin
}

// doipEntityLine is what `simulator fleet --doip` prints once its entity listens.
var doipEntityLine = regexp.MustCompile(`^DoIP entity (0x[0-9a-f]+) on (\S+) \(TCP and UDP\)`)

// startDoIPFleet starts `simulator fleet --doip 127.0.0.1:0` with args as its own process and
// returns the entity's host:port once it listens; the process is stopped when the test ends.
func startDoIPFleet(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"fleet", "--doip", "127.0.0.1:0"}, args...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		for {
			line, err := r.ReadString('\n')
			if m := doipEntityLine.FindStringSubmatch(line); m != nil {
				found <- m[2]
				io.Copy(io.Discard, r)
				return
			}
			if err != nil {
				close(found)
				return
			}
		}
	}()
	select {
	case addr, ok := <-found:
		if !ok {
			t.Fatal("simulator fleet --doip ended before its entity listened")
		}
		return addr
	case <-time.After(2 * time.Minute):
		t.Fatal("simulator fleet --doip: no entity within 2 minutes")
	}
	return ""
}

// doipSuitesProfile is the built-in DoIP diagnostic profile TestSuitesOverDoIP drives.
const doipSuitesProfile = "doip-default"

// profileWithEntity writes doipSuitesProfile with its entity at addr into a file of the test's.
func profileWithEntity(t *testing.T, addr string) string {
	t.Helper()
	data, err := os.ReadFile("../vcan/uds/profile/builtin/" + doipSuitesProfile + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "  tester_address: 0x0E80\n", "  tester_address: 0x0E80\n  entity: "+addr+"\n", 1)
	if text == string(data) {
		t.Fatalf("%s: no tester_address line to add the entity after", doipSuitesProfile)
	}
	file := filepath.Join(t.TempDir(), doipSuitesProfile+".yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestSuitesOverDoIP runs the ecu and e2e suites over DoIP against `simulator fleet --doip` in a
// process of its own: three ECUs behind a gateway serving the built-in DoIP profile, which the
// suites take as CONF_DIAG_PROFILE with the entity in it, found by probing from the profile's
// logical address, the ecu suite on the first and the station on the others. Then the ecu target's certification
// against the same ECUs, twice in a row, as a supplier re-runs it, and the replayed scenarios
// with no master key declared; and the LoadKey test against a fleet whose ECUs answer a wrong
// proof must fail, so a pass over DoIP means something.
func TestSuitesOverDoIP(t *testing.T) {
	dir := t.TempDir()
	bin := buildSimulator(t, dir)
	// The ECUs leave the factory with an all-zero MASTER_ECU_KEY, which the runs declare: the ecu
	// suite then loads master keys of its own and puts the declared one back, as on a real ECU. The
	// timing margin is for a loaded machine: a tester's lateness is not under test.
	// The fleet serves the built-in DoIP profile; the suites get it with the entity written in
	// (CONF_DIAG_PROFILE alone: no CONF_DOIP, CONF_ECU_ADDRESSES or CONF_TESTER_ADDRESS).
	addr := startDoIPFleet(t, bin, "--count", "3", "--initial-master-key", "00000000000000000000000000000000",
		"--diag-profile", doipSuitesProfile)
	declared := []string{"CONF_TIMING_MARGIN=1s", "CONF_ECU_MASTER_KEY=00000000000000000000000000000000",
		"CONF_ECU_SACRIFICIAL_KEY_ID=9"}

	start := time.Now()
	res, output, err := runSuites(t, append(declared, "CONF_SUITES=ecu,e2e", "CONF_DIAG_PROFILE="+profileWithEntity(t, addr))...)
	t.Logf("ecu and e2e suites over DoIP: %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("the suites failed over DoIP: %v\n%s", err, output)
	}
	if c := res.Config; c["ecu.doip"] != addr || c["ecu.can"] != "" || c["ecu.tester_address"] != "0x0e80" {
		t.Errorf("the run's configuration: ecu.doip %q, ecu.can %q, ecu.tester_address %q; want the profile's entity %s and tester 0x0e80, no CAN",
			c["ecu.doip"], c["ecu.can"], c["ecu.tester_address"], addr)
	}
	var passed []string
	for _, tr := range res.Tests {
		if tr.Outcome == report.Pass {
			passed = append(passed, tr.Name)
		}
	}
	for _, want := range []string{
		"ECU: SHE through UDS / answers LoadKey with the M4 and M5 of the SHE model",
		"ECU: SHE through UDS / refuses updates of a write-protected key with ERC_KEY_WRITE_PROTECTED, and the key stays",
		"End to end: station, KMS and ECUs / provisions every ECU through the station: master, supplier and nine SecOC keys, each synced",
	} {
		if !slices.Contains(passed, want) {
			t.Errorf("%q did not pass over DoIP", want)
		}
	}

	for run := 1; run <= 2; run++ {
		res, output, err := runSuites(t, append(declared, "CONF_DOIP="+addr, "CONF_DIAG_PROFILE="+doipSuitesProfile,
			"CONF_TARGETS=ecu", "CONF_SECURITY_KEY=5348452d6b69742064656d6f206b6579")...)
		if err != nil {
			t.Fatalf("certification of target ecu over DoIP, run %d: %v\n%s", run, err, output)
		}
		if len(res.Tests) == 0 {
			t.Fatalf("certification run %d ran no test", run)
		}
		for _, tr := range res.Tests {
			if tr.Outcome != report.Pass && tr.Outcome != report.NotApplicable {
				t.Errorf("certification run %d: %s: %s %s", run, tr.Name, tr.Outcome, tr.Message)
			}
		}
	}

	// ECUs in the factory state, their empty master key left undeclared, as a supplier may: the
	// scenarios run without loading one and leave the master key alone.
	factory := startDoIPFleet(t, bin, "--count", "1")
	const replay = "replays the engine-rule scenarios of she-engine-rules.json over UDS where they can be"
	res, output, err = runFocused(t, replay, "CONF_DOIP="+factory, "CONF_SUITES=ecu", "CONF_TIMING_MARGIN=1s")
	if err != nil || len(res.Tests) == 0 {
		t.Fatalf("the replayed scenarios with no master key declared: %v\n%s", err, output)
	}

	wrong := startDoIPFleet(t, bin, "--count", "1", "--fault-wrong-proof")
	const loadKey = "answers LoadKey with the M4 and M5 of the SHE model"
	res, output, err = runFocused(t, loadKey, "CONF_DOIP="+wrong, "CONF_SUITES=ecu", "CONF_TIMING_MARGIN=1s")
	if err == nil {
		t.Fatalf("the LoadKey test passed against ECUs answering a wrong proof over DoIP:\n%s", output)
	}
	failed := false
	for _, tr := range res.Tests {
		failed = failed || (strings.HasSuffix(tr.Name, loadKey) && tr.Outcome == report.Fail)
	}
	if !failed {
		t.Errorf("against a wrong proof, %q did not fail:\n%s", loadKey, output)
	}
}
