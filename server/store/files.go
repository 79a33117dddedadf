package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// privateFiles makes the SQLite database at path and its -wal and -shm files readable by the
// owner only (0600), whatever the umask: the database is created 0600 before SQLite opens it
// (SQLite gives its -wal and -shm files the database's mode), and files an older version left
// readable by others are restricted.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("store: restrict %s: %w", p, err)
		}
	}
	return nil
}
