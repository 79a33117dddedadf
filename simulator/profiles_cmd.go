package main

import (
	"fmt"
	"io"

	"github.com/shekit/shekit/vcan/uds/profile"
)

// runProfiles lists the built-in diagnostic profiles, one line each, and says how to use them
// or a file of one's own. With a file name it checks that file instead (exit 2 with the parser's
// error: file, line and field).
func runProfiles(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 1 && args[0] != "-h" && args[0] != "--help":
		p, err := profile.Find(args[0])
		if err != nil {
			fmt.Fprintf(stderr, "simulator profiles: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "%s\n  %s\n", p.Summary(), p.Description)
		return 0
	case len(args) > 1:
		fmt.Fprintf(stderr, "simulator profiles: unexpected argument %q (give at most one profile name or file)\n", args[1])
		return exitUsage
	}
	fmt.Fprintln(stdout, "built-in diagnostic profiles:")
	for _, p := range profile.Builtin() {
		fmt.Fprintf(stdout, "  %s\n", p.Summary())
	}
	fmt.Fprint(stdout, `
Use one with --diag-profile NAME on simulator ecu and fleet (default `+profile.DefaultName+`), or
describe your ECU in a YAML file (schema: vcan/uds/profile/doc.go; the built-in files are in
vcan/uds/profile/builtin/) and give --diag-profile FILE.yaml. simulator profiles NAME|FILE shows one
profile, or the file's first mistake with its line and field.
`)
	return 0
}
