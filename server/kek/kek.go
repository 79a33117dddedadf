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
)

// KEK is a key-encryption key.
type KEK struct {
	aead cipher.AEAD
}

// Load reads the 32-byte key at path, creating it with mode 0600 when it does not exist (the
// first start). An existing file readable by others is refused.
func Load(path string) (*KEK, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, 32)
		rand.Read(key)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) { // another process created it meanwhile
			return Load(path)
		}
		if err != nil {
			return nil, fmt.Errorf("kek: create %s: %w", path, err)
		}
		_, werr := f.Write(key)
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("kek: write %s: %w", path, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("kek: %w", err)
	} else if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("kek: %s is readable by others (mode %o); want 0600", path, info.Mode().Perm())
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("kek: %s holds %d bytes, want 32", path, len(key))
	}
	return New([32]byte(key)), nil
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
