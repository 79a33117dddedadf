package console_test

import (
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/shekit/shekit/server/reference"
)

// seedLarge writes n ECUs (one injected master key slot each) and n audit entries into a
// server's SQLite database directly, in one transaction: UIDs 0001 0001 then the ECU's number;
// audit entries round-robin over 64 suppliers, one minute apart up to now, but for the oldest,
// whose actor ("supplier:rare") is the only one of its kind.
func seedLarge(b *testing.B, dataDir string, n int) {
	b.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dataDir, "kms.db")+"?_pragma=busy_timeout(60000)&_txlock=immediate")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	slot, _ := tx.Prepare(`INSERT INTO slots (uid, key_id, last_counter, injected_counter, injected_phase) VALUES (?, 1, 1, 1, 'Dev')`)
	audit, _ := tx.Prepare(`INSERT INTO audit (at, actor, action, uid, key_id, counter, outcome, message) VALUES (?, ?, ?, ?, 1, 1, ?, '')`)
	start := time.Now().UTC().Add(-time.Duration(n) * time.Minute)
	for i := range n {
		uid := make([]byte, 15)
		copy(uid, []byte{0, 1, 0, 1})
		binary.BigEndian.PutUint32(uid[11:], uint32(i+1))
		if _, err := slot.Exec(uid); err != nil {
			b.Fatal(err)
		}
		actor, action, outcome := fmt.Sprintf("supplier:%04X", i%64), "result:EcuMasterKey", "Success"
		if i == 0 {
			actor = "supplier:rare"
		}
		at := start.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano)
		if _, err := audit.Exec(at, actor, action, fmt.Sprintf("%x", uid), outcome); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPages loads each console page (the HTML, as a browser asks for it first) with
// 100,000 ECUs and 100,000 audit entries in the store, and exports the whole audit log.
func BenchmarkPages(b *testing.B) {
	const n = 100_000
	token := randomHex(32)
	dir := b.TempDir()
	srv, err := reference.New(b.Context(), reference.Config{DataDir: dir, AdminToken: token, Console: true, CLMKeys: "ecdsa"})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	seedLarge(b, dir, n)
	ts := httpServer(srv)
	defer ts.Close()
	client := signIn(b, ts.URL, token, &http.Client{})
	mid := fmt.Sprintf("00010001000000000000000%07x", n/2)
	old := time.Now().UTC().Add(-time.Duration(n-10) * time.Minute).Format("2006-01-02T15:04")
	recent := time.Now().UTC().Add(-100 * time.Minute).Format("2006-01-02T15:04")
	for _, page := range []string{
		"/console/suppliers", "/console/suppliers/001D", "/console/ecus", "/console/ecus?by=uid&q=0001000100000000000000000c",
		"/console/ecus?after=" + mid, "/console/ecus/" + mid, "/console/audit", "/console/audit?before=50000",
		"/console/audit?uid=" + mid, "/console/audit?actor=supplier:0005", "/console/audit?actor=supplier:rare",
		"/console/audit?action=result:EcuMasterKey", "/console/audit?to=" + old,
		"/console/audit?to=" + recent, "/console/audit?from=" + recent, "/console/audit?from=" + old + "&to=" + recent,
		"/console/audit?from=" + old + "&to=" + recent + "&before=50000", "/console/numbers", "/console/clm", "/console/clm/certs",
		"/console/audit.csv", "/console/audit.jsonl",
	} {
		b.Run(page, func(b *testing.B) {
			for b.Loop() {
				resp, err := client.Get(ts.URL + page)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%s: %s", page, resp.Status)
				}
			}
		})
	}
}
