package proccpu

import (
	"crypto/sha256"
	"testing"
	"time"
)

// TestUsedGrowsWithWork: the CPU time used is positive and grows while the process works.
func TestUsedGrowsWithWork(t *testing.T) {
	start := Used(t)
	if start <= 0 {
		t.Fatalf("CPU used so far %v, want more than none", start)
	}
	sum := sha256.Sum256(nil)
	for Used(t) == start { // the clock ticks in steps: work until it moves
		for range 1000 {
			sum = sha256.Sum256(sum[:])
		}
	}
	if now := Used(t); now < start {
		t.Fatalf("CPU used went back from %v to %v", start, now)
	}
}

// TestPerOp: a duration per operation, in microseconds.
func TestPerOp(t *testing.T) {
	b := &testing.B{N: 4}
	if got := PerOp(b, 10*time.Millisecond); got != 2500 {
		t.Fatalf("PerOp(10ms over 4) = %v, want 2500", got)
	}
}
