package backend

import "runtime/debug"

// BuildVersion is the version a backend binary reports in its Description: stamped, as set at build time
// with -ldflags "-X main.version=..." (make build and deploy/run.sh do), else what the Go toolchain recorded
// in the binary (the main module's version, or its VCS revision, "-dirty" when the tree had changes), else
// "(devel)".
func BuildVersion(stamped string) string {
	if stamped != "" {
		return stamped
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "(devel)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}
