// Package kek holds the reference server's key-encryption key and seals secrets with it:
// AES-256-GCM, a random 96-bit nonce per secret, the secret's name as additional data.
package kek

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KEK is a key-encryption key.
type KEK struct {
	aead cipher.AEAD
}

// Load reads the 32-byte key at path, creating it with mode 0600 when it does not exist (the
// first start). An existing file readable by others is refused, and so is one that does not
// hold exactly 32 bytes: a key is never made anew over a file that is there.
func Load(path string) (*KEK, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if key, err = create(path); errors.Is(err, fs.ErrExist) { // another process created it meanwhile
			return Load(path)
		}
		if err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, fmt.Errorf("kek: %w", err)
	} else if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("kek: %s is readable by others (mode %o); want 0600", path, info.Mode().Perm())
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("kek: %s holds %d bytes, want 32: the key-encryption key is damaged; restore it "+
			"from a backup (the secrets in the store open only with it), or remove it if the store holds nothing yet", path, len(key))
	}
	return New([32]byte(key)), nil
}

// beforeLink, when set (by tests), runs after the new key is written and synced to its temporary
// file and before the file takes the key's name.
var beforeLink func()

// create makes a new key at path atomically: written to a temporary file in the same directory,
// synced, linked to path (which fails, with fs.ErrExist, when another process got there first:
// a link never replaces a file), the directory synced. A crash at any point leaves either no
// file at path or the whole key.
func create(path string) ([]byte, error) {
	key := make([]byte, 32)
	rand.Read(key)
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("kek: create %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	_, werr := f.Write(key)
	if err := errors.Join(werr, f.Chmod(0o600), f.Sync(), f.Close()); err != nil {
		return nil, fmt.Errorf("kek: write %s: %w", f.Name(), err)
	}
	if beforeLink != nil {
		beforeLink()
	}
	if err := os.Link(f.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fs.ErrExist
		}
		return nil, fmt.Errorf("kek: create %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err == nil {
		err = errors.Join(d.Sync(), d.Close())
	}
	if err != nil {
		return nil, fmt.Errorf("kek: sync %s: %w", dir, err)
	}
	return key, nil
}

// New returns a KEK with key.
func New(key [32]byte) *KEK {
	b, _ := aes.NewCipher(key[:])
	aead, _ := cipher.NewGCM(b)
	return &KEK{aead: aead}
}

// Seal encrypts the secret called name.
func (k *KEK) Seal(name string, secret []byte) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(secret)+k.aead.Overhead())
	rand.Read(nonce)
	return k.aead.Seal(nonce, nonce, secret, []byte(name))
}

// ErrOpen is returned when a sealed secret does not open: another KEK, another name, or damage.
var ErrOpen = errors.New("kek: sealed secret does not open with this key")

// Open decrypts the secret called name.
func (k *KEK) Open(name string, sealed []byte) ([]byte, error) {
	n := k.aead.NonceSize()
	if len(sealed) < n+k.aead.Overhead() {
		return nil, ErrOpen
	}
	out, err := k.aead.Open(nil, sealed[:n], sealed[n:], []byte(name))
	if err != nil {
		return nil, ErrOpen
	}
	return out, nil
}
