package profile

import (
	"bytes"
	"context"
	"crypto/aes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aead/cmac"
)

// SeedKeyCommand runs an external seed/key command: the program gets the seed in hex (upper
// case) as its last argument or as a line on standard input and prints the key in hex on
// standard output. It runs without a shell and is killed when its time limit passes.
type SeedKeyCommand struct {
	Path      string // the program
	Args      []string
	Input     SeedInput
	Timeout   time.Duration
	KeyLength int
	tempDir   string // holds an embedded script of a built-in profile; removed by Close
}

// maxOutput bounds what is read from the command's standard output and error.
const maxOutput = 4096

// textBusyTries is how often Key tries again to run a program that is busy being written, or
// whose output pipes another child held open.
const textBusyTries = 5

// SeedKeyCommand returns the runner of the profile's external seed/key command. A program path
// with a slash that is not absolute is relative to the profile's directory; for a built-in
// profile it names one of its embedded scripts, written to a private temporary directory that
// Close removes. A bare program name is looked up in PATH when the command runs.
func (p *Profile) SeedKeyCommand() (*SeedKeyCommand, error) {
	s := p.Security
	if s.Algorithm != AlgorithmExternal {
		return nil, fmt.Errorf("profile %s: the seed/key algorithm is %s, not an external command", p.Name, s.Algorithm)
	}
	c := &SeedKeyCommand{Path: s.Command[0], Args: s.Command[1:], Input: s.Input, Timeout: s.Timeout, KeyLength: s.KeyLength}
	if filepath.IsAbs(c.Path) || !strings.ContainsRune(c.Path, '/') {
		return c, nil
	}
	if p.Dir != "" || !strings.HasPrefix(p.Source, "builtin:") {
		c.Path = filepath.Join(p.Dir, c.Path)
		return c, nil
	}
	script, err := builtinScript(c.Path)
	if err != nil {
		return nil, fmt.Errorf("profile %s: seed/key command %s: %w", p.Name, c.Path, err)
	}
	if c.tempDir, err = os.MkdirTemp("", "shekit-seedkey-"); err != nil {
		return nil, fmt.Errorf("profile %s: seed/key command: %w", p.Name, err)
	}
	c.Path = filepath.Join(c.tempDir, filepath.Base(c.Path))
	if err := os.WriteFile(c.Path, script, 0o700); err != nil {
		c.Close()
		return nil, fmt.Errorf("profile %s: seed/key command: %w", p.Name, err)
	}
	return c, nil
}

// Close removes the temporary copy of an embedded script, if any.
func (c *SeedKeyCommand) Close() error {
	if c.tempDir == "" {
		return nil
	}
	return os.RemoveAll(c.tempDir)
}

// cappedBuffer keeps the first maxOutput bytes written to it and notes the rest.
type cappedBuffer struct {
	bytes.Buffer
	overflow bool
}

// Write keeps what fits and reports every byte written, so the command is never blocked.
func (b *cappedBuffer) Write(p []byte) (int, error) {
	room := maxOutput - b.Len()
	if len(p) > room {
		b.overflow = true
		b.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

// Key runs the command on seed and returns the key it prints. The key is never part of an error.
func (c *SeedKeyCommand) Key(ctx context.Context, seed []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	seedHex := strings.ToUpper(hex.EncodeToString(seed))
	args := append([]string(nil), c.Args...)
	if c.Input == SeedArgument {
		args = append(args, seedHex)
	}
	var stdout, stderr cappedBuffer
	run := func() error {
		stdout, stderr = cappedBuffer{}, cappedBuffer{}
		cmd := exec.CommandContext(ctx, c.Path, args...)
		if c.Input == SeedStdin {
			cmd.Stdin = strings.NewReader(seedHex + "\n")
		}
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.WaitDelay = time.Second // a child that keeps the pipes open does not hold Key up
		return cmd.Run()
	}
	name := filepath.Base(c.Path)
	err := run()
	// A script written just now may still be open for writing in a child another goroutine
	// forked meanwhile, until that child execs: executing it then fails with ETXTBSY. Such a
	// child may likewise hold the command's output pipes open past its exit (ErrWaitDelay).
	for try := 1; (errors.Is(err, syscall.ETXTBSY) || errors.Is(err, exec.ErrWaitDelay)) && try <= textBusyTries && ctx.Err() == nil; try++ {
		time.Sleep(time.Duration(try) * 10 * time.Millisecond)
		err = run()
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("seed/key command %s: no key within %v", name, c.Timeout)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("seed/key command %s: %w", name, ctx.Err())
	case err != nil:
		return nil, fmt.Errorf("seed/key command %s: %v%s", name, err, firstLine(stderr.String()))
	case stdout.overflow:
		return nil, fmt.Errorf("seed/key command %s: more than %d bytes on standard output", name, maxOutput)
	}
	key, err := hex.DecodeString(strings.TrimSpace(stdout.String()))
	if err != nil {
		return nil, fmt.Errorf("seed/key command %s: standard output is not a key in hex", name)
	}
	if len(key) != c.KeyLength {
		return nil, fmt.Errorf("seed/key command %s: a %d-byte key, want %d", name, len(key), c.KeyLength)
	}
	return key, nil
}

// firstLine is ": " and the first line of a command's error output, at most 200 bytes, or "".
func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return ""
	}
	return ": " + s
}

// KeyFunc computes the SecurityAccess key for a seed.
type KeyFunc func(ctx context.Context, seed []byte) ([]byte, error)

// SeedKey returns the profile's seed/key algorithm as a function, and a function to call once it
// is no longer needed (it removes a built-in script's temporary copy). Algorithm none has none.
func (p *Profile) SeedKey() (KeyFunc, func() error, error) {
	switch p.Security.Algorithm {
	case AlgorithmAESCMAC:
		block, err := aes.NewCipher(p.Security.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("profile %s: security key: %w", p.Name, err)
		}
		return func(_ context.Context, seed []byte) ([]byte, error) {
			return cmac.Sum(seed, block, block.BlockSize())
		}, func() error { return nil }, nil
	case AlgorithmExternal:
		c, err := p.SeedKeyCommand()
		if err != nil {
			return nil, nil, err
		}
		return c.Key, c.Close, nil
	}
	return nil, nil, fmt.Errorf("profile %s: no SecurityAccess (algorithm %s)", p.Name, p.Security.Algorithm)
}
