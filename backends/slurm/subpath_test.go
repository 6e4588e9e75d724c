package slurm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// An init container, or an earlier run of the container, replaces the directory of a subPath by a symbolic
// link to the host's root: the job binds each subPath anew before every start (interlink-shim pin), so the
// run that would write through it is refused with CreateContainerError and nothing reaches the host.
func TestLabSubPathSwappedForALinkOutIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		link   string
		byInit bool
	}{
		{"init-absolute", conformance.LinkToRootAbsolute, true},
		{"init-relative", conformance.LinkToRootRelative, true},
		{"restart-absolute", conformance.LinkToRootAbsolute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newLabBackend(t, labConfig(t))
			host := t.TempDir()
			defer conformance.SubPathEscaped(t, host) // also when a wait fails
			p := conformance.SubPathSwapPod("spswap", host, tc.link, tc.byInit)
			createPod(t, b, p, conformance.Objects{})
			st := waitFor(t, b, p, 2*time.Minute, "main refused", func(st interlink.PodStatus) bool {
				s := findStatus(st.Containers, "main")
				return s != nil && s.State.Waiting != nil && s.State.Waiting.Reason == "CreateContainerError"
			})
			conformance.SubPathRefused(t, st, "main")
			if !tc.byInit {
				if s := findStatus(st.Containers, "main"); s.RestartCount != 1 {
					t.Errorf("main's restart count %d, want 1 (its first run swapped, the restart was refused)", s.RestartCount)
				}
				if got := logsOf(t, b, p, "main", interlink.LogOpts{Previous: true}); !strings.Contains(got, "swapped") {
					t.Errorf("main's first run did not swap its subPath: log %q", got)
				}
			}
			// The refused start bound nothing new: the pinned target still shows the original directory.
			target := filepath.Join(b.podDir(string(p.UID)), "subpaths", "main", "1")
			if _, err := os.Stat(filepath.Join(target, "etc", "passwd")); err == nil {
				t.Errorf("the pinned target %s shows the host's root", target)
			}
		})
	}
}
