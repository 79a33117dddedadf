package profile

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

//go:embed builtin
var builtinFS embed.FS

// DefaultName is the name of the profile used when none is given.
const DefaultName = "shekit-default"

// Builtin returns the built-in profiles, sorted by name, the default first.
func Builtin() []*Profile {
	entries, err := fs.ReadDir(builtinFS, "builtin")
	if err != nil {
		panic(err) // the embedded directory is part of the binary
	}
	var out []*Profile
	for _, e := range entries {
		if path.Ext(e.Name()) != ".yaml" {
			continue
		}
		data, _ := builtinFS.ReadFile("builtin/" + e.Name())
		p, err := Parse("builtin/"+e.Name(), data)
		if err != nil {
			panic(fmt.Sprintf("built-in profile: %v", err)) // TestBuiltin keeps them valid
		}
		p.Source = "builtin:" + p.Name
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == DefaultName) != (out[j].Name == DefaultName) {
			return out[i].Name == DefaultName
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Default returns the default built-in profile.
func Default() *Profile {
	p, err := Find(DefaultName)
	if err != nil {
		panic(err)
	}
	return p
}

// Find returns the built-in profile called nameOrFile or, when nameOrFile names a file (it
// contains a path separator or ends in .yaml or .yml), the profile in that file.
func Find(nameOrFile string) (*Profile, error) {
	if strings.ContainsRune(nameOrFile, os.PathSeparator) || strings.ContainsRune(nameOrFile, '/') ||
		strings.HasSuffix(nameOrFile, ".yaml") || strings.HasSuffix(nameOrFile, ".yml") {
		return Load(nameOrFile)
	}
	var names []string
	for _, p := range Builtin() {
		if p.Name == nameOrFile {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return nil, fmt.Errorf("profile %q: no such built-in profile (have %s) and not a file name (give a path or a .yaml name)",
		nameOrFile, strings.Join(names, ", "))
}

// builtinScript returns an embedded script of the built-in profiles.
func builtinScript(name string) ([]byte, error) {
	return builtinFS.ReadFile(path.Join("builtin", name))
}
