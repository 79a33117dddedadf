package console_test

import (
	"context"
	"testing"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
	"github.com/shekit/shekit/simulator/she"
)

// seedAudit issues the master key of n ECUs (UIDs 0001 0001 … 01..n) through the store.
func seedAudit(t *testing.T, srv *reference.Server, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		is := kms.Issue{Slot: kms.Slot{UID: she.UID{0, 1, 0, 1, 14: byte(i)}, KeyID: she.MasterECUKey}, Type: kms.EcuMasterKey, Phase: kms.Dev}
		if _, _, err := srv.Store.Issue(context.Background(), is, 0, "supplier:0001"); err != nil {
			t.Fatal(err)
		}
	}
}
