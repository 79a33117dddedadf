// Package proccpu measures the CPU time the running process uses, for benchmarks that report the
// server's CPU per operation beside the wall-clock time (which a loaded machine inflates).
package proccpu

import (
	"syscall"
	"testing"
	"time"
)

// Used returns the CPU time (user and system) the process has used so far; it fails tb when the
// system does not say.
func Used(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("proccpu: getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// PerOp returns d per operation of b, in microseconds.
func PerOp(b *testing.B, d time.Duration) float64 {
	return float64(d) / float64(time.Microsecond) / float64(b.N)
}
