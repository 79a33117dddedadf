package kek

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestLoadCreatesOnceWithMode0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kek.key")
	k1, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 || info.Size() != 32 {
		t.Fatalf("key file %v %v", info.Mode(), err)
	}
	k2, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed := k1.Seal("root", []byte("secret"))
	if got, err := k2.Open("root", sealed); err != nil || string(got) != "secret" {
		t.Fatalf("reloaded key: %q %v", got, err)
	}
	os.Chmod(path, 0o644)
	if _, err := Load(path); err == nil {
		t.Fatal("a key file readable by others was accepted")
	}
}

func TestSealedSecretsAreBound(t *testing.T) {
	k := New([32]byte{1})
	sealed := k.Seal("kms-root:Dev", []byte("0123456789abcdef"))
	if bytes.Contains(sealed, []byte("0123456789abcdef")) {
		t.Fatal("plaintext visible in the sealed secret")
	}
	if _, err := k.Open("kms-root:Prod", sealed); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened under another name: %v", err)
	}
	if _, err := New([32]byte{2}).Open("kms-root:Dev", sealed); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened with another key: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := k.Open("kms-root:Dev", sealed); !errors.Is(err, ErrOpen) {
		t.Fatal("opened a damaged secret")
	}
	if _, err := k.Open("x", []byte{1, 2}); !errors.Is(err, ErrOpen) {
		t.Fatal("opened a truncated secret")
	}
	if bytes.Equal(k.Seal("a", []byte("s")), k.Seal("a", []byte("s"))) {
		t.Fatal("two seals of one secret are equal: the nonce repeats")
	}
}
