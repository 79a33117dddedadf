package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/shekit/shekit/simulator/she"
)

// runSHE runs "simulator she SUBCOMMAND".
func runSHE(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmds := map[string]func([]string) (any, error){
		"m1m5":   sheM1M5,
		"open":   sheOpen,
		"verify": sheVerify,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "simulator she: unknown subcommand %q (want m1m5, open or verify)\n", args[0])
		return exitUsage
	}
	out, err := cmd(args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "simulator she %s: %v\n", args[0], err)
		return exitUsage
	}
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "simulator she %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// flagSet is a set of required string flags, parsed without printing anything.
type flagSet struct {
	fs     *flag.FlagSet
	values map[string]*string
}

func newFlagSet(name string, names ...string) *flagSet {
	s := &flagSet{fs: flag.NewFlagSet(name, flag.ContinueOnError), values: map[string]*string{}}
	s.fs.SetOutput(io.Discard)
	for _, n := range names {
		s.values[n] = s.fs.String(n, "", "")
	}
	return s
}

// parse reads args and requires every flag to be given.
func (s *flagSet) parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		return err
	}
	if s.fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", s.fs.Arg(0))
	}
	for _, name := range slices.Sorted(maps.Keys(s.values)) {
		if *s.values[name] == "" {
			return fmt.Errorf("--%s is required", name)
		}
	}
	return nil
}

// hexN decodes flag name's value, which must be exactly n bytes of hex.
func (s *flagSet) hexN(name string, n int) ([]byte, error) {
	v := *s.values[name]
	b, err := hex.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("--%s: not hex: %v", name, err)
	}
	if len(b) != n {
		return nil, fmt.Errorf("--%s: want %d bytes (%d hex digits), got %d", name, n, 2*n, len(b))
	}
	return b, nil
}

// keyID reads a KeyID or AuthID written in decimal or as 0x-hex.
func (s *flagSet) keyID(name string) (she.KeyID, error) {
	v := *s.values[name]
	base := 10
	if strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X") {
		v, base = v[2:], 16
	}
	n, err := strconv.ParseUint(v, base, 8)
	if err != nil || n > 15 {
		return 0, fmt.Errorf("--%s: %q is not a key slot 0..15 (decimal or 0x-hex)", name, *s.values[name])
	}
	return she.KeyID(n), nil
}

type messagesJSON struct {
	M1 string `json:"M1"`
	M2 string `json:"M2"`
	M3 string `json:"M3"`
	M4 string `json:"M4"`
	M5 string `json:"M5"`
}

func sheM1M5(args []string) (any, error) {
	s := newFlagSet("m1m5", "uid", "key-id", "auth-id", "auth-key", "new-key", "counter", "flags")
	if err := s.parse(args); err != nil {
		return nil, err
	}
	var u she.KeyUpdate
	uid, err := s.hexN("uid", 15)
	if err != nil {
		return nil, err
	}
	u.UID = she.UID(uid)
	if u.KeyID, err = s.keyID("key-id"); err != nil {
		return nil, err
	}
	if u.AuthID, err = s.keyID("auth-id"); err != nil {
		return nil, err
	}
	authKey, err := s.hexN("auth-key", 16)
	if err != nil {
		return nil, err
	}
	newKey, err := s.hexN("new-key", 16)
	if err != nil {
		return nil, err
	}
	u.AuthKey, u.NewKey = [16]byte(authKey), [16]byte(newKey)
	counter, err := strconv.ParseUint(*s.values["counter"], 10, 32)
	if err != nil || counter > she.MaxCounter {
		return nil, fmt.Errorf("--counter: %q is not a 28-bit counter 0..%d", *s.values["counter"], she.MaxCounter)
	}
	u.Counter = uint32(counter)
	if u.Flags, err = she.ParseFlags(*s.values["flags"]); err != nil {
		return nil, fmt.Errorf("--flags: %w", err)
	}
	m, err := she.BuildMessages(u)
	if err != nil {
		return nil, err
	}
	return messagesJSON{M1: hex.EncodeToString(m.M1[:]), M2: hex.EncodeToString(m.M2[:]),
		M3: hex.EncodeToString(m.M3[:]), M4: hex.EncodeToString(m.M4[:]), M5: hex.EncodeToString(m.M5[:])}, nil
}

type openedJSON struct {
	UID     string `json:"uid"`
	KeyID   uint8  `json:"keyId"`
	AuthID  uint8  `json:"authId"`
	Counter uint32 `json:"counter"`
	Flags   string `json:"flags"`
	NewKey  string `json:"newKey"`
	M3Valid bool   `json:"m3Valid"`
}

func sheOpen(args []string) (any, error) {
	s := newFlagSet("open", "auth-key", "m1", "m2", "m3")
	if err := s.parse(args); err != nil {
		return nil, err
	}
	authKey, err := s.hexN("auth-key", 16)
	if err != nil {
		return nil, err
	}
	m1, err := s.hexN("m1", 16)
	if err != nil {
		return nil, err
	}
	m2, err := s.hexN("m2", 32)
	if err != nil {
		return nil, err
	}
	m3, err := s.hexN("m3", 16)
	if err != nil {
		return nil, err
	}
	o := she.OpenM1M3([16]byte(authKey), [16]byte(m1), [32]byte(m2), [16]byte(m3))
	return openedJSON{UID: o.UID.String(), KeyID: uint8(o.KeyID), AuthID: uint8(o.AuthID), Counter: o.Counter,
		Flags: o.Flags.String(), NewKey: hex.EncodeToString(o.NewKey[:]), M3Valid: o.M3Valid}, nil
}

type verifiedJSON struct {
	M5Valid bool   `json:"m5Valid"`
	Counter uint32 `json:"counter"`
}

func sheVerify(args []string) (any, error) {
	s := newFlagSet("verify", "new-key", "m4", "m5")
	if err := s.parse(args); err != nil {
		return nil, err
	}
	newKey, err := s.hexN("new-key", 16)
	if err != nil {
		return nil, err
	}
	m4, err := s.hexN("m4", 32)
	if err != nil {
		return nil, err
	}
	m5, err := s.hexN("m5", 16)
	if err != nil {
		return nil, err
	}
	p := she.VerifyM4M5([16]byte(newKey), [32]byte(m4), [16]byte(m5))
	return verifiedJSON{M5Valid: p.M5Valid, Counter: p.Counter}, nil
}
