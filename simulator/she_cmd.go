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

// hexField names a flag and the array its hex value must fill exactly.
type hexField struct {
	name string
	dst  []byte
}

// hexInto decodes each field's flag value into its destination.
func (s *flagSet) hexInto(fields ...hexField) error {
	for _, f := range fields {
		v := *s.values[f.name]
		b, err := hex.DecodeString(v)
		if err != nil {
			return fmt.Errorf("--%s: not hex: %v", f.name, err)
		}
		if len(b) != len(f.dst) {
			return fmt.Errorf("--%s: want %d bytes (%d hex digits), got %d", f.name, len(f.dst), 2*len(f.dst), len(b))
		}
		copy(f.dst, b)
	}
	return nil
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
	err := s.hexInto(hexField{"uid", u.UID[:]}, hexField{"auth-key", u.AuthKey[:]}, hexField{"new-key", u.NewKey[:]})
	if err != nil {
		return nil, err
	}
	if u.KeyID, err = s.keyID("key-id"); err != nil {
		return nil, err
	}
	if u.AuthID, err = s.keyID("auth-id"); err != nil {
		return nil, err
	}
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
	var authKey, m1, m3 [16]byte
	var m2 [32]byte
	err := s.hexInto(hexField{"auth-key", authKey[:]}, hexField{"m1", m1[:]}, hexField{"m2", m2[:]}, hexField{"m3", m3[:]})
	if err != nil {
		return nil, err
	}
	o := she.OpenM1M3(authKey, m1, m2, m3)
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
	var newKey, m5 [16]byte
	var m4 [32]byte
	if err := s.hexInto(hexField{"new-key", newKey[:]}, hexField{"m4", m4[:]}, hexField{"m5", m5[:]}); err != nil {
		return nil, err
	}
	p := she.VerifyM4M5(newKey, m4, m5)
	return verifiedJSON{M5Valid: p.M5Valid, Counter: p.Counter}, nil
}
