package store

import (
	"errors"
	"slices"
	"testing"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/simulator/she"
)

// TestReturnedSlot: an upsert's returned row names a slot by a UID of 15 bytes and a key ID of
// one byte; anything else is an error (not a panic on the writer's goroutine).
func TestReturnedSlot(t *testing.T) {
	uid := []byte("0123456789abcde")
	got, err := returnedSlot(uid, 4)
	if want := (kms.Slot{UID: she.UID([]byte("0123456789abcde")), KeyID: 4}); err != nil || got != want {
		t.Fatalf("returnedSlot: %+v %v, want %+v", got, err, want)
	}
	for _, tc := range []struct {
		uid   []byte
		keyID int64
	}{{nil, 1}, {uid[:14], 1}, {append(uid, 'f'), 1}, {uid, 256}, {uid, -1}} {
		if got, err := returnedSlot(tc.uid, tc.keyID); err == nil {
			t.Errorf("returnedSlot(%x, %d) = %+v, want an error", tc.uid, tc.keyID, got)
		}
	}
}

// TestInRowRuns: rows are cut into runs of 1<<k rows, largest first, k at most multiRowMax, in
// the rows' order; a failed run ends it.
func TestInRowRuns(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want [][2]int // k, first row
	}{
		{0, nil},
		{1, [][2]int{{0, 0}}},
		{37, [][2]int{{5, 0}, {2, 32}, {0, 36}}},
		{1027, [][2]int{{9, 0}, {9, 512}, {1, 1024}, {0, 1026}}},
	} {
		var got [][2]int
		if err := inRowRuns(tc.n, func(k, first int) error { got = append(got, [2]int{k, first}); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%d rows: runs %v, want %v", tc.n, got, tc.want)
		}
	}
	failed, runs := errors.New("failed"), 0
	if err := inRowRuns(7, func(int, int) error { runs++; return failed }); err != failed || runs != 1 {
		t.Fatalf("a failed run: %v after %d runs, want it after 1", err, runs)
	}
}
