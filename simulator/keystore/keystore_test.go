package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/shekit/shekit/simulator/she"
)

// inode is a file in the model file system: what a process reads (data) and what would survive a
// crash for certain (synced).
type inode struct {
	data, synced []byte
}

// memFS models the durability rules a save relies on: file contents survive a crash only once
// fsynced, directory entries only once the directory is fsynced. It can fail the n-th operation,
// or crash at it (that operation and everything after it fail, as in a dead process).
type memFS struct {
	live, durable map[string]*inode
	ops           int
	failAt        int
	crashAt       int
	crashed       bool
	temps         int
}

var (
	errInjected = errors.New("injected failure")
	errCrashed  = errors.New("process crashed")
)

func newMemFS() *memFS {
	return &memFS{live: map[string]*inode{}, durable: map[string]*inode{}}
}

func (m *memFS) step() error {
	m.ops++
	switch {
	case m.crashed:
		return errCrashed
	case m.ops == m.crashAt:
		m.crashed = true
		return errCrashed
	case m.ops == m.failAt:
		return errInjected
	}
	return nil
}

type memFile struct {
	fs   *memFS
	name string
	ino  *inode
}

func (f *memFile) Write(p []byte) (int, error) {
	if err := f.fs.step(); err != nil {
		return 0, err
	}
	f.ino.data = append(f.ino.data, p...)
	return len(p), nil
}

func (f *memFile) Sync() error {
	if err := f.fs.step(); err != nil {
		return err
	}
	f.ino.synced = bytes.Clone(f.ino.data)
	return nil
}

func (f *memFile) Close() error { return f.fs.step() }
func (f *memFile) Name() string { return f.name }

func (m *memFS) CreateTemp(dir, pattern string) (tempFile, error) {
	if err := m.step(); err != nil {
		return nil, err
	}
	m.temps++
	name := filepath.Join(dir, strings.Replace(pattern, "*", fmt.Sprint(m.temps), 1))
	ino := &inode{}
	m.live[name] = ino
	return &memFile{fs: m, name: name, ino: ino}, nil
}

func (m *memFS) Rename(oldpath, newpath string) error {
	if err := m.step(); err != nil {
		return err
	}
	ino, ok := m.live[oldpath]
	if !ok {
		return fs.ErrNotExist
	}
	m.live[newpath] = ino
	delete(m.live, oldpath)
	return nil
}

func (m *memFS) Remove(name string) error {
	if err := m.step(); err != nil {
		return err
	}
	if _, ok := m.live[name]; !ok {
		return fs.ErrNotExist
	}
	delete(m.live, name)
	return nil
}

func (m *memFS) ReadFile(name string) ([]byte, error) {
	ino, ok := m.live[name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return bytes.Clone(ino.data), nil
}

func (m *memFS) ReadDirNames(dir string) ([]string, error) {
	var names []string
	for name := range m.live {
		if filepath.Dir(name) == dir {
			names = append(names, filepath.Base(name))
		}
	}
	sort.Strings(names)
	return names, nil
}

func (m *memFS) SyncDir(string) error {
	if err := m.step(); err != nil {
		return err
	}
	m.durable = make(map[string]*inode, len(m.live))
	for name, ino := range m.live {
		m.durable[name] = ino
	}
	return nil
}

// crashVariant is one way a machine may come back: with the fsynced directory or the one a
// process saw, and with file contents as fsynced, as written, or torn half-way.
type crashVariant struct {
	liveDir bool
	content string // "synced", "written", "torn"
}

var crashVariants = []crashVariant{
	{false, "synced"}, {false, "written"}, {false, "torn"},
	{true, "synced"}, {true, "written"}, {true, "torn"},
}

// reboot returns the file system as it is found after a crash in variant v.
func (m *memFS) reboot(v crashVariant) *memFS {
	dir := m.durable
	if v.liveDir {
		dir = m.live
	}
	out := newMemFS()
	for name, ino := range dir {
		var content []byte
		switch {
		case v.content == "synced":
			content = ino.synced
		case v.content == "written" || bytes.Equal(ino.synced, ino.data):
			content = ino.data
		default:
			content = ino.data[:len(ino.data)/2]
		}
		n := &inode{data: bytes.Clone(content), synced: bytes.Clone(content)}
		out.live[name], out.durable[name] = n, n
	}
	return out
}

func nvmWith(counter uint32) she.NVM {
	nvm := she.NVM{UID: she.UID{0x00, 0x01, 0x00, 0x1d, 14: 0x0b}, PRNGSeed: [16]byte{byte(counter)}}
	nvm.Slots[she.SecretKey] = she.Slot{Key: [16]byte{0x0f}, Loaded: true}
	nvm.Slots[she.MasterECUKey] = she.Slot{Key: [16]byte{byte(counter), 0x39}, Counter: counter, Flags: 0x0D, Loaded: true}
	nvm.Slots[she.Key1] = she.Slot{Key: [16]byte{0x44, byte(counter)}, Counter: counter, Flags: 0x0F, Loaded: true}
	return nvm
}

const storePath = "/ecu/000100 1d.json"

// saved returns a model file system holding old durably.
func saved(t *testing.T, old she.NVM) *memFS {
	m := newMemFS()
	f, _, found, err := open(storePath, m)
	if err != nil || found {
		t.Fatalf("open empty store: found=%v err=%v", found, err)
	}
	if err := f.Save(&old); err != nil {
		t.Fatal(err)
	}
	return m
}

// mustHoldOneOf opens the store on m and requires it to hold one of the states.
func mustHoldOneOf(t *testing.T, m *memFS, what string, states ...she.NVM) she.NVM {
	t.Helper()
	_, got, found, err := open(storePath, m)
	if err != nil {
		t.Fatalf("%s: open after the fault: %v", what, err)
	}
	if !found {
		t.Fatalf("%s: store file gone", what)
	}
	for _, s := range states {
		if got == s {
			for name := range m.live {
				if strings.Contains(name, ".tmp-") {
					t.Fatalf("%s: temporary file %s left after open", what, name)
				}
			}
			return got
		}
	}
	t.Fatalf("%s: store holds a state that is neither the old nor the new one:\n%s", what, Encode(&got))
	return got
}

func TestSaveIsAtomicUnderFailureAndCrashAtEveryStep(t *testing.T) {
	old, new := nvmWith(1), nvmWith(2)
	// A save takes six operations (create, write, fsync, close, rename, fsync directory); go
	// two beyond so that the last injections hit nothing and the save succeeds.
	for at := 1; at <= 8; at++ {
		t.Run(fmt.Sprintf("error at op %d", at), func(t *testing.T) {
			m := saved(t, old)
			m.ops, m.failAt = 0, at
			f, _, _, err := open(storePath, m)
			if err != nil {
				t.Fatal(err)
			}
			saveErr := f.Save(&new)
			m.failAt = 0
			got := mustHoldOneOf(t, m, "process goes on", old, new)
			if saveErr == nil && got != new {
				t.Fatal("Save succeeded but the store holds the old state")
			}
			for _, v := range crashVariants {
				mustHoldOneOf(t, m.reboot(v), fmt.Sprintf("then crash %+v", v), old, new)
			}
		})
		t.Run(fmt.Sprintf("crash at op %d", at), func(t *testing.T) {
			m := saved(t, old)
			f, _, _, err := open(storePath, m)
			if err != nil {
				t.Fatal(err)
			}
			m.ops, m.crashAt = 0, at
			saveErr := f.Save(&new)
			for _, v := range crashVariants {
				got := mustHoldOneOf(t, m.reboot(v), fmt.Sprintf("crash %+v", v), old, new)
				if saveErr == nil && got != new {
					t.Fatalf("crash %+v: Save returned nil but the new state did not survive", v)
				}
			}
		})
	}
}

func TestSaveIsDurableWhenItReturns(t *testing.T) {
	m := saved(t, nvmWith(1))
	f, _, _, err := open(storePath, m)
	if err != nil {
		t.Fatal(err)
	}
	new := nvmWith(7)
	if err := f.Save(&new); err != nil {
		t.Fatal(err)
	}
	// The most pessimistic crash: only what was fsynced survives.
	if got := mustHoldOneOf(t, m.reboot(crashVariant{false, "synced"}), "pessimistic crash", new); got != new {
		t.Fatal("new state lost")
	}
}

func TestRealFileSystemRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ecu.json")
	f, nvm, found, err := Open(path)
	if err != nil || found || nvm != (she.NVM{}) {
		t.Fatalf("fresh store: found=%v err=%v", found, err)
	}
	for c := uint32(1); c <= 3; c++ {
		want := nvmWith(c)
		if err := f.Save(&want); err != nil {
			t.Fatal(err)
		}
		_, got, found, err := Open(path)
		if err != nil || !found || got != want {
			t.Fatalf("after save %d: found=%v err=%v equal=%v", c, found, err, got == want)
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("mode %o, want 600", mode)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the store file", len(entries))
	}
}

func TestOpenRemovesTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ecu.json")
	stale := filepath.Join(dir, "ecu.json.tmp-123")
	other := filepath.Join(dir, "other.json.tmp-9")
	for _, name := range []string{stale, other} {
		if err := os.WriteFile(name, []byte("{partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, err := Open(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale temporary file still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another store's temporary file was touched: %v", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := string(Encode(ptr(nvmWith(3))))
	for _, tc := range []struct{ name, data, want string }{
		{"not JSON", "{", "not a key store file"},
		{"other format", strings.Replace(good, Format, "x", 1), "format"},
		{"other version", strings.Replace(good, `"version": 1`, `"version": 2`, 1), "version 2"},
		{"short UID", strings.Replace(good, `"uid": "0001001d00`, `"uid": "0001001d0`, 1), "UID"},
		{"bad seed", strings.Replace(good, `"prngSeed": "03`, `"prngSeed": "zz`, 1), "prngSeed"},
		{"RAM key slot", strings.Replace(good, `"id": 4`, `"id": 14`, 1), "not a persistent key slot"},
		{"slot twice", strings.Replace(good, `"id": 4`, `"id": 1`, 1), "given twice"},
		{"counter overflow", strings.Replace(good, `"counter": 3,
      "flags": "01111"`, `"counter": 268435456,
      "flags": "01111"`, 1), "exceeds 28 bits"},
		{"bad flags", strings.Replace(good, `"01111"`, `"0111x"`, 1), "flags"},
		{"short key", strings.Replace(good, `"key": "4403`, `"key": "44`, 1), "want 32 hex digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.data == good {
				t.Fatal("test case did not change the document")
			}
			_, err := Decode([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func FuzzDecode(f *testing.F) {
	f.Add(Encode(ptr(nvmWith(1))))
	f.Add(Encode(&she.NVM{}))
	f.Add([]byte(`{"format":"she-keystore","version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		nvm, err := Decode(data)
		if err != nil {
			return
		}
		again, err := Decode(Encode(&nvm))
		if err != nil || again != nvm {
			t.Fatalf("round trip: err=%v equal=%v", err, again == nvm)
		}
	})
}
