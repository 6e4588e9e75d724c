package slurm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/subpath"
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
			// The refused start left nothing on the pinned target.
			target := filepath.Join(b.podDir(string(p.UID)), "subpaths", "main", "1")
			if _, err := os.Stat(filepath.Join(target, "etc", "passwd")); err == nil {
				t.Errorf("the pinned target %s shows the host's root", target)
			}
		})
	}
}

// The job unmounts its pinned subPaths when it finishes, and Delete (which removes the pod's directory)
// never reaches the hostPath's data through a pin.
func TestLabSubPathPinsAreUndone(t *testing.T) {
	t.Parallel()
	b := newLabBackend(t, labConfig(t))
	host := t.TempDir()
	conformance.PrepareHostPathSubPath(t, host)
	p := conformance.HostPathSubPathPod("hpkeep", host)
	createPod(t, b, p, conformance.Objects{})
	dir := b.podDir(string(p.UID))
	waitFor(t, b, p, 2*time.Minute, "the job to finish", func(interlink.PodStatus) bool {
		_, err := os.Stat(filepath.Join(dir, "job.finished"))
		return err == nil
	})
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != "precious\n" {
		t.Errorf("main's log %q: the subPath of the hostPath was not mounted", got)
	}
	if m := conformance.MountsBelow(t, dir); len(m) > 0 {
		t.Errorf("the finished job left its subPaths pinned: %v", m)
	}
	// A pin left behind (a job killed before its end) is undone by Delete before it removes the directory.
	if err := subpath.Pin(host, "keep", filepath.Join(dir, "subpaths", "main", "0"), 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctxFor(t, time.Minute), backend.DeleteRequest{Pod: p, GracePeriod: time.Second}); err != nil {
		t.Fatal(err)
	}
	conformance.HostPathSurvived(t, host)
	if m := conformance.MountsBelow(t, dir); len(m) > 0 {
		t.Errorf("mounts left after Delete: %v", m)
	}
}
