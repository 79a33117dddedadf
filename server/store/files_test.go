package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestSQLiteFilesArePrivate: kms.db and its -wal and -shm files are readable by the owner only,
// also when an older version left the database readable by others.
func TestSQLiteFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kms.db")
	check := func(when string) {
		t.Helper()
		s, err := OpenSQLite(path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.SetSecret(context.Background(), "x", []byte("y")); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			info, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s has mode %o, want 600", when, filepath.Base(p), info.Mode().Perm())
			}
		}
	}
	check("created")
	os.Chmod(path, 0o644)
	check("reopened after a chmod 644")
}
