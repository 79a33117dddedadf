package store

import (
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
