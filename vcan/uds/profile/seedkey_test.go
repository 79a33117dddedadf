package profile

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testCommand(script string, input SeedInput, timeout time.Duration) *SeedKeyCommand {
	return &SeedKeyCommand{Path: filepath.Join("testdata", script), Input: input, Timeout: timeout, KeyLength: 3}
}

func TestSeedKeyCommand(t *testing.T) {
	ctx := context.Background()
	for _, in := range []SeedInput{SeedArgument, SeedStdin} {
		key, err := testCommand("reverse.sh", in, time.Minute).Key(ctx, []byte{0x0A, 0x0B, 0xFC})
		if err != nil || !bytes.Equal(key, []byte{0xFC, 0x0B, 0x0A}) {
			t.Fatalf("%s: Key = % X, %v, want FC 0B 0A", in, key, err)
		}
	}
	for _, tt := range []struct{ script, want string }{
		{"fail.sh", "seed/key command fail.sh: exit status 3: level 7 is not supported"},
		{"short.sh", "seed/key command short.sh: a 2-byte key, want 3"},
		{"nothex.sh", "seed/key command nothex.sh: standard output is not a key in hex"},
		{"missing.sh", "seed/key command missing.sh: fork/exec testdata/missing.sh: no such file or directory"},
	} {
		_, err := testCommand(tt.script, SeedArgument, time.Minute).Key(ctx, []byte{1, 2, 3})
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: %v, want %s", tt.script, err, tt.want)
		}
	}
}

// A command that never answers is killed at its time limit (the script sleeps ten minutes).
func TestSeedKeyCommandTimeLimit(t *testing.T) {
	_, err := testCommand("sleep.sh", SeedArgument, 100*time.Millisecond).Key(context.Background(), []byte{1})
	if err == nil || err.Error() != "seed/key command sleep.sh: no key within 100ms" {
		t.Fatalf("Key = %v, want the time limit", err)
	}
}

// The built-in extended-seedkey profile runs its embedded script; key by hand:
// ((seed[i] ^ 5A C3 96 3C[i%4]) + i) & 0xFF.
func TestBuiltinExternalSeedKey(t *testing.T) {
	p, err := Find("extended-seedkey")
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.SeedKeyCommand()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(c.Path)
	key, err := c.Key(context.Background(), []byte{0x00, 0x01, 0x02, 0x03})
	if err != nil || !bytes.Equal(key, []byte{0x5A, 0xC3, 0x96, 0x42}) {
		t.Fatalf("Key = % X, %v, want 5A C3 96 42", key, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Close left %s: %v", dir, err)
	}
	if _, err := Default().SeedKeyCommand(); err == nil || !strings.Contains(err.Error(), "not an external command") {
		t.Fatalf("SeedKeyCommand of an aes-cmac profile: %v", err)
	}
}

// A profile file's relative command is relative to the file's directory.
func TestFileProfileCommandPath(t *testing.T) {
	dir := t.TempDir()
	src := strings.Replace(base, "algorithm: aes-cmac\n  key: \"000102030405060708090A0B0C0D0E0F\"",
		"algorithm: external\n  key_length: 3\n  seed_input: stdin\n  command: [./reverse.sh]", 1)
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("testdata/reverse.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "reverse.sh"), script, 0o700); err != nil {
		t.Fatal(err)
	}
	p, err := Find(filepath.Join(dir, "p.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.SeedKeyCommand()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Path != filepath.Join(dir, "reverse.sh") {
		t.Fatalf("Path = %s", c.Path)
	}
	if key, err := c.Key(context.Background(), []byte{1, 2, 3}); err != nil || !bytes.Equal(key, []byte{3, 2, 1}) {
		t.Fatalf("Key = % X, %v", key, err)
	}
}

// aes-cmac: RFC 4493's example 2 (key 2b7e1516…, a 16-byte message); external: the built-in script.
func TestSeedKeyFunc(t *testing.T) {
	p := Default()
	p.Security.Key = unhex(t, "2b7e151628aed2a6abf7158809cf4f3c")
	key, done, err := p.SeedKey()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	got, err := key(context.Background(), unhex(t, "6bc1bee22e409f96e93d7e117393172a"))
	if want := unhex(t, "070a16b46b4d4144f79bdd9dd04a287c"); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("aes-cmac key = % X, %v, want % X", got, err, want)
	}
	ext, _ := Find("extended-seedkey")
	key, done, err = ext.SeedKey()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	if got, err := key(context.Background(), []byte{0xFF, 0xFF, 0xFF, 0xFF}); err != nil || !bytes.Equal(got, []byte{0xA5, 0x3D, 0x6B, 0xC6}) {
		t.Fatalf("external key = % X, %v, want A5 3D 6B C6", got, err)
	}
	none := mustParse(t, didProfile)
	if _, _, err := none.SeedKey(); err == nil {
		t.Fatal("SeedKey of a profile without SecurityAccess succeeded")
	}
}

func TestBuiltinSeedKeyCommandsRunConcurrently(t *testing.T) {
	// Each command writes the built-in script to a temporary file and runs it while other
	// goroutines fork theirs: a child forked while a script is open for writing makes running
	// that script fail with ETXTBSY for a moment, which Key rides out.
	p, err := Find("extended-seedkey")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8*25)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				c, err := p.SeedKeyCommand()
				if err == nil {
					// 200 scripts forked at once take more than the profile's 5 s on an
					// emulated VM beside a CPU hog; this test is about ETXTBSY, not time.
					c.Timeout = time.Minute
					var key []byte
					key, err = c.Key(context.Background(), []byte{1, 2, 3, 4})
					c.Close()
					if err == nil && hex.EncodeToString(key) != "5bc2973b" {
						err = fmt.Errorf("key %x, want 5bc2973b", key)
					}
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
