// Package buildinfo says which build a binary of interlink-dispatcher is: every command's --version, the
// dispatcher's build_info metric, and what a backend reports of itself all read it from here, so that they
// agree.
//
// Each command declares `var version, commit string` in its package main, set at build time with
// -ldflags "-X main.version=v1.2.3 -X main.commit=abc123" (the Makefile, deploy/run.sh and the image build
// do), and hands them to Read or PrintIfAsked.
package buildinfo

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// Info is a binary's version, the commit it was built from, and the Go version that built it.
type Info struct {
	Version, Commit, GoVersion string
}

// Read completes version and commit (as set with -ldflags -X, possibly empty) from what the Go toolchain
// recorded in the binary: the main module's version and the VCS revision (with -dirty when the tree had
// changes). What neither says is "(devel)" and "unknown".
func Read(version, commit string) Info {
	bi := Info{Version: version, Commit: commit, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if bi.Version == "" {
			bi.Version = info.Main.Version
		}
		dirty := false
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if bi.Commit == "" {
					bi.Commit = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && commit == "" && bi.Commit != "" {
			bi.Commit += "-dirty"
		}
	}
	if bi.Version == "" {
		bi.Version = "(devel)"
	}
	if bi.Commit == "" {
		bi.Commit = "unknown"
	}
	return bi
}

// Line is the one line --version prints: the command's name, its version, commit and Go version.
func (i Info) Line(name string) string {
	return fmt.Sprintf("%s %s (commit %s, %s)", name, i.Version, i.Commit, i.GoVersion)
}

// Asked reports whether args (os.Args[1:]) ask only for the version: --version or -version, alone.
func Asked(args []string) bool {
	return len(args) == 1 && (args[0] == "--version" || args[0] == "-version")
}

// PrintIfAsked prints the version line of the command name to stdout and exits 0 when the command's
// arguments ask for it (see Asked); otherwise it returns. A command calls it first thing in main, before
// anything that would refuse to run by hand (a backend's handshake check).
func PrintIfAsked(name, version, commit string) {
	if Asked(os.Args[1:]) {
		fmt.Println(Read(version, commit).Line(name))
		os.Exit(0)
	}
}
