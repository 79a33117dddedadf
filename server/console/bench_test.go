package console_test

import (
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

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

// benchPages are the pages BenchmarkPages loads; mid is the UID of the middle ECU, old and recent
// times near the oldest and the newest audit entries.
func benchPages(mid, old, recent string) []string {
	return []string{
		"/console/suppliers", "/console/suppliers/001D", "/console/ecus", "/console/ecus?by=uid&q=0001000100000000000000000c",
		"/console/ecus?after=" + mid, "/console/ecus/" + mid, "/console/audit", "/console/audit?before=50000",
		"/console/audit?uid=" + mid, "/console/audit?actor=supplier:0005", "/console/audit?actor=supplier:rare",
		"/console/audit?action=result:EcuMasterKey", "/console/audit?to=" + old,
		"/console/audit?to=" + recent, "/console/audit?from=" + recent, "/console/audit?from=" + old + "&to=" + recent,
		"/console/audit?from=" + old + "&to=" + recent + "&before=50000",
		"/console/numbers", "/console/clm", "/console/clm/certs",
		"/console/audit.csv", "/console/audit.jsonl",
	}
}

// BenchmarkPages loads each console page (the HTML, as a browser asks for it first) with
// 100,000 ECUs and 100,000 audit entries in the store, and exports the whole audit log: on
// SQLite, and on PostgreSQL when SHEKIT_TEST_POSTGRES names a server (a database of its own,
// dropped after).
func BenchmarkPages(b *testing.B) {
	const n = 100_000
	b.Run("sqlite", func(b *testing.B) {
		dir := b.TempDir()
		benchServer(b, reference.Config{DataDir: dir}, func() { seedLarge(b, dir, n) }, n)
	})
	url := os.Getenv("SHEKIT_TEST_POSTGRES")
	if url == "" {
		return
	}
	b.Run("postgres", func(b *testing.B) {
		db := postgresDatabase(b, url)
		benchServer(b, reference.Config{DataDir: b.TempDir(), DB: db}, func() { seedPostgres(b, db, n) }, n)
	})
}

// benchServer starts a server of cfg with the console, seeds it and loads every page.
func benchServer(b *testing.B, cfg reference.Config, seed func(), n int) {
	token := randomHex(32)
	cfg.AdminToken, cfg.Console, cfg.CLMKeys = token, true, "ecdsa"
	srv, err := reference.New(b.Context(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	seed()
	ts := httpServer(srv)
	defer ts.Close()
	client := signIn(b, ts.URL, token, &http.Client{})
	mid := fmt.Sprintf("00010001000000000000000%07x", n/2)
	old := time.Now().UTC().Add(-time.Duration(n-10) * time.Minute).Format("2006-01-02T15:04")
	recent := time.Now().UTC().Add(-100 * time.Minute).Format("2006-01-02T15:04")
	for _, page := range benchPages(mid, old, recent) {
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

// postgresDatabase creates a database of its own on the server at url and returns its URL; it
// is dropped when the benchmark ends.
func postgresDatabase(b *testing.B, url string) string {
	admin, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("console_bench_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		admin.Exec("DROP DATABASE " + name + " WITH (FORCE)")
		admin.Close()
	})
	u, err := neturl.Parse(url)
	if err != nil {
		b.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// seedPostgres writes what seedLarge writes, into PostgreSQL, in two statements.
func seedPostgres(b *testing.B, url string, n int) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	start := time.Now().UTC().Add(-time.Duration(n) * time.Minute)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO slots (uid, key_id, last_counter, injected_counter, injected_phase)
			SELECT decode('0001000100000000000000' || lpad(to_hex(i), 8, '0'), 'hex'), 1, 1, 1, 'Dev' FROM generate_series(1, $1) i`, []any{n}},
		{`INSERT INTO audit (at, actor, action, uid, key_id, counter, outcome, message)
			SELECT to_char(($2::timestamp + (i - 1) * interval '1 minute'), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
				CASE WHEN i = 1 THEN 'supplier:rare' ELSE 'supplier:' || upper(lpad(to_hex((i - 1) % 64), 4, '0')) END,
				'result:EcuMasterKey', '0001000100000000000000' || lpad(to_hex(i), 8, '0'), 1, 1, 'Success', ''
			FROM generate_series(1, $1) i`, []any{n, start}},
	} {
		if _, err := db.Exec(q.sql, q.args...); err != nil {
			b.Fatal(err)
		}
	}
}
