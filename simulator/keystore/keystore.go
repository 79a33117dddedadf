// Package keystore persists a simulated SHE's non-volatile memory: one file per ECU, in a
// versioned JSON format, replaced atomically.
//
// A save writes the whole state to a temporary file in the same directory, fsyncs it, renames it
// over the store file and fsyncs the directory. Whatever step fails or wherever the process or the
// machine stops, the file afterwards holds the previous state or the new one, never a mix, and
// opens without error. Left-over temporary files are removed on open.
//
// The file holds the keys in plain text, as a SHE's flash does; it is created with mode 0600.
package keystore

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/shekit/shekit/simulator/she"
)

// Format and Version identify the file format.
const (
	Format  = "she-keystore"
	Version = 1
)

// File is a she.Store that keeps one SHE's non-volatile memory in one file.
type File struct {
	path string
	fs   fileSystem
}

var _ she.Store = (*File)(nil)

// Open opens the store at path, creating nothing yet. It returns the stored memory and found =
// true, or found = false when no file exists (a factory-fresh SHE). Temporary files of an
// interrupted save are removed.
func Open(path string) (*File, she.NVM, bool, error) {
	return open(path, osFS{})
}

func open(path string, fsys fileSystem) (*File, she.NVM, bool, error) {
	f := &File{path: path, fs: fsys}
	if err := f.removeTemps(); err != nil {
		return nil, she.NVM{}, false, err
	}
	data, err := fsys.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, she.NVM{}, false, nil
	}
	if err != nil {
		return nil, she.NVM{}, false, fmt.Errorf("keystore: read %s: %w", path, err)
	}
	nvm, err := Decode(data)
	if err != nil {
		return nil, she.NVM{}, false, fmt.Errorf("keystore: %s: %w", path, err)
	}
	return f, nvm, true, nil
}

// Path returns the store file's path.
func (f *File) Path() string { return f.path }

// tempPrefix is the name prefix of a save's temporary file.
func (f *File) tempPrefix() string { return filepath.Base(f.path) + ".tmp-" }

func (f *File) removeTemps() error {
	dir := filepath.Dir(f.path)
	names, err := f.fs.ReadDirNames(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("keystore: list %s: %w", dir, err)
	}
	for _, name := range names {
		if strings.HasPrefix(name, f.tempPrefix()) {
			if err := f.fs.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("keystore: remove %s: %w", name, err)
			}
		}
	}
	return nil
}

// Save replaces the stored state with nvm durably: it returns nil only once the new state will
// survive a crash. On error the file holds the old or the new state.
func (f *File) Save(nvm *she.NVM) error {
	data := Encode(nvm)
	dir := filepath.Dir(f.path)
	tmp, err := f.fs.CreateTemp(dir, f.tempPrefix()+"*")
	if err != nil {
		return fmt.Errorf("keystore: save: %w", err)
	}
	name := tmp.Name()
	fail := func(step string, err error) error {
		tmp.Close()
		f.fs.Remove(name)
		return fmt.Errorf("keystore: save: %s: %w", step, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail("write", err)
	}
	if err := tmp.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := tmp.Close(); err != nil {
		f.fs.Remove(name)
		return fmt.Errorf("keystore: save: close: %w", err)
	}
	if err := f.fs.Rename(name, f.path); err != nil {
		f.fs.Remove(name)
		return fmt.Errorf("keystore: save: rename: %w", err)
	}
	if err := f.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("keystore: save: fsync directory: %w", err)
	}
	return nil
}

// fileJSON is the file format, version 1.
type fileJSON struct {
	Format   string     `json:"format"`
	Version  int        `json:"version"`
	UID      string     `json:"uid"`
	PRNGSeed string     `json:"prngSeed"`
	Slots    []slotJSON `json:"slots"`
}

type slotJSON struct {
	ID      uint8  `json:"id"`
	Key     string `json:"key"`
	Counter uint32 `json:"counter"`
	Flags   string `json:"flags"`
}

// Encode writes nvm in the file format. Empty slots are left out.
func Encode(nvm *she.NVM) []byte {
	doc := fileJSON{Format: Format, Version: Version, UID: nvm.UID.String(),
		PRNGSeed: hex.EncodeToString(nvm.PRNGSeed[:]), Slots: []slotJSON{}}
	for id, s := range nvm.Slots {
		if s.Loaded {
			doc.Slots = append(doc.Slots, slotJSON{ID: uint8(id), Key: hex.EncodeToString(s.Key[:]),
				Counter: s.Counter, Flags: s.Flags.String()})
		}
	}
	data, _ := json.MarshalIndent(doc, "", "  ") // cannot fail: plain strings and numbers
	return append(data, '\n')
}

// Decode reads the file format. It rejects another format or version, malformed values, slot
// numbers outside SECRET_KEY..KEY_10, a slot given twice and counters beyond 28 bits.
func Decode(data []byte) (she.NVM, error) {
	var nvm she.NVM
	var doc fileJSON
	if err := json.Unmarshal(data, &doc); err != nil {
		return nvm, fmt.Errorf("not a key store file: %w", err)
	}
	if doc.Format != Format || doc.Version != Version {
		return nvm, fmt.Errorf("format %q version %d, want %q version %d", doc.Format, doc.Version, Format, Version)
	}
	uid, err := she.ParseUID(doc.UID)
	if err != nil {
		return nvm, err
	}
	nvm.UID = uid
	if err := decodeBlock(&nvm.PRNGSeed, doc.PRNGSeed, "prngSeed"); err != nil {
		return nvm, err
	}
	for _, s := range doc.Slots {
		if int(s.ID) >= len(nvm.Slots) {
			return she.NVM{}, fmt.Errorf("slot %d: not a persistent key slot", s.ID)
		}
		slot := &nvm.Slots[s.ID]
		if slot.Loaded {
			return she.NVM{}, fmt.Errorf("slot %d: given twice", s.ID)
		}
		if s.Counter > she.MaxCounter {
			return she.NVM{}, fmt.Errorf("slot %d: counter %d exceeds 28 bits", s.ID, s.Counter)
		}
		if err := decodeBlock(&slot.Key, s.Key, fmt.Sprintf("slot %d key", s.ID)); err != nil {
			return she.NVM{}, err
		}
		if slot.Flags, err = she.ParseFlags(s.Flags); err != nil {
			return she.NVM{}, fmt.Errorf("slot %d: %w", s.ID, err)
		}
		slot.Counter, slot.Loaded = s.Counter, true
	}
	return nvm, nil
}

func decodeBlock(dst *[16]byte, s, what string) error {
	if len(s) != 32 {
		return fmt.Errorf("%s: want 32 hex digits, got %d", what, len(s))
	}
	if _, err := hex.Decode(dst[:], []byte(s)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// fileSystem is what a save needs from the operating system; tests replace it with a model that
// fails or crashes at any step.
type fileSystem interface {
	CreateTemp(dir, pattern string) (tempFile, error)
	Rename(oldpath, newpath string) error
	Remove(name string) error
	ReadFile(name string) ([]byte, error)
	ReadDirNames(dir string) ([]string, error)
	SyncDir(dir string) error
}

type tempFile interface {
	io.Writer
	Sync() error
	Close() error
	Name() string
}

// osFS is the real file system.
type osFS struct{}

func (osFS) CreateTemp(dir, pattern string) (tempFile, error) {
	return os.CreateTemp(dir, pattern) // mode 0600
}
func (osFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
func (osFS) Remove(name string) error             { return os.Remove(name) }
func (osFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

func (osFS) ReadDirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, err
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
