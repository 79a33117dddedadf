package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/simulator/she"
)

// BenchmarkIssueAuditIndexes measures what the console's audit indexes cost an issue (one
// counter and one audit entry): SQLite with them, and without them (dropped after the open).
func BenchmarkIssueAuditIndexes(b *testing.B) {
	for _, indexes := range []bool{true, false} {
		name := map[bool]string{true: "with", false: "without"}[indexes]
		b.Run(name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "kms.db")
			s, err := OpenSQLite(path)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if !indexes {
				db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
				if err != nil {
					b.Fatal(err)
				}
				for _, ix := range []string{"audit_uid_seq", "audit_actor_seq", "audit_at_seq"} {
					if _, err := db.Exec("DROP INDEX " + ix); err != nil {
						b.Fatal(err)
					}
				}
				db.Close()
			}
			var n atomic.Uint32
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var uid she.UID
					binary.BigEndian.PutUint32(uid[11:], n.Add(1))
					is := kms.Issue{Slot: kms.Slot{UID: uid, KeyID: she.MasterECUKey}, Type: kms.EcuMasterKey, Phase: kms.Dev}
					if _, _, err := s.Issue(context.Background(), is, 0, "supplier:0001"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
