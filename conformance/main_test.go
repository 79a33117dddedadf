package conformance_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"testing"

	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan/isotp"
)

// fleetProcessEnv, set to N, makes this test binary a separate process serving N simulated ECUs
// on vcan0 (kernel ISO-TP, IDs 0x7E0+i / 0x7E8+i) until it is stopped: the real-bus peer of
// TestSuitesOnVCAN0.
const fleetProcessEnv = "SHEKIT_FLEET_PROCESS"

// postProcessEnv, set to a URL, makes this test binary POST to it and exit: the restart command
// of the teeth table's KMS targets (CONF_KMS_RESTART), with no tool but the binary itself.
const postProcessEnv = "SHEKIT_POST_URL"

func TestMain(m *testing.M) {
	if u := os.Getenv(postProcessEnv); u != "" {
		resp, err := http.Post(u, "text/plain", nil)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", u, resp.Status)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "post:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if n := os.Getenv(fleetProcessEnv); n != "" {
		if err := serveFleetProcess(n); err != nil {
			fmt.Fprintln(os.Stderr, "fleet process:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveFleetProcess serves n ECUs of the demo supplier on vcan0 until SIGTERM or SIGINT; it
// prints "ready" once every ECU listens.
func serveFleetProcess(n string) error {
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 || count > 8 {
		return fmt.Errorf("%s=%q: want 1..8", fleetProcessEnv, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	base := she.UID{0x00, 0x01, 0x00, 0x1d}
	rand.Read(base[4:11])
	open := func(tx, rx uint32) (isotp.Transport, error) { return ecu.KernelTransport("vcan0", tx, rx) }
	// The ECUs leave the factory with an all-zero MASTER_ECU_KEY (it authorizes as an empty one
	// does under autosar): TestSuitesOnVCAN0 declares it, so that the ecu suite loads master keys
	// of its own and puts the declared one back, as on a real ECU.
	fleet, err := ecu.StartFleetOn(ctx, open, ecu.Config{UID: base, InitialMasterKey: &[16]byte{}}, count)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "ready")
	w.Flush()
	<-ctx.Done()
	return fleet.Stop()
}
