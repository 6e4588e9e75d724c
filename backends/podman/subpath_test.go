package podman

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// An init container replaces the directory of main's subPath by a symbolic link to the host's root: main's
// subPath is resolved when the backend starts it, after the init container, so main is refused with
// CreateContainerError and nothing reaches the host.
func TestSubPathSwappedByInitIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, link string }{
		{"absolute", conformance.LinkToRootAbsolute},
		{"relative", conformance.LinkToRootRelative},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newTestBackend(t, testEnv(t))
			host := t.TempDir()
			defer conformance.SubPathEscaped(t, host) // also when a wait fails
			p := conformance.SubPathSwapPod("spswap", host, tc.link, true)
			create(t, b, p)
			st := waitFor(t, b, p, 2*time.Minute, "main refused", func(st interlink.PodStatus) bool {
				w := st.Containers[0].State.Waiting
				return w != nil && w.Reason == "CreateContainerError"
			})
			conformance.SubPathRefused(t, st, "main")
			if s := st.InitContainers[0].State.Terminated; s == nil || s.ExitCode != 0 {
				t.Errorf("the init container should have swapped the subPath and succeeded: %s", describe(st))
			}
		})
	}
}

// main swaps its own subPath for a symbolic link to the host's root and fails; Podman restarts it by its
// restart policy (OnFailure), reusing the mount pinned at the backend's start: the next run still gets the
// original directory (moved aside to e/orig), never the host's root.
func TestSubPathSwappedByAnEarlierRunIsHarmless(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	host := t.TempDir()
	defer conformance.SubPathEscaped(t, host) // also when a wait fails
	p := conformance.SubPathSwapPod("sprestart", host, conformance.LinkToRootAbsolute, false)
	create(t, b, p)
	st := waitFor(t, b, p, 2*time.Minute, "main to succeed", func(st interlink.PodStatus) bool {
		s := st.Containers[0].State.Terminated
		return s != nil && s.ExitCode == 0
	})
	if st.Containers[0].RestartCount < 1 {
		t.Errorf("main was not restarted: %s", describe(st))
	}
	if got := logs(t, b, p, "main", interlink.LogOpts{}); !strings.Contains(got, "wrote through the subPath") {
		t.Errorf("main's second run did not write: log %q", got)
	}
	inVolume := filepath.Join(b.podDir(string(p.UID)), "volumes", "e", "orig", host, "marker")
	if _, err := os.Stat(inVolume); err != nil {
		t.Errorf("the restarted run should have written into the original directory (%s): %v", inVolume, err)
	}
}

// Deleting a pod removes its directory, where its subPaths are pinned: the pins are unmounted first, so
// the removal never reaches the hostPath's data through them.
func TestDeleteKeepsTheHostPathBehindASubPath(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	host := t.TempDir()
	conformance.PrepareHostPathSubPath(t, host)
	p := conformance.HostPathSubPathPod("hpkeep", host)
	create(t, b, p)
	waitFor(t, b, p, 2*time.Minute, "the pod to succeed", phaseIs(v1.PodSucceeded))
	if got := logs(t, b, p, "main", interlink.LogOpts{}); got != "precious\n" {
		t.Errorf("main's log %q: the subPath of the hostPath was not mounted", got)
	}
	dir := b.podDir(string(p.UID))
	if len(conformance.MountsBelow(t, dir)) == 0 {
		t.Fatalf("no subPath is pinned below %s", dir)
	}
	if err := b.Delete(context.Background(), backend.DeleteRequest{Pod: p, GracePeriod: time.Second}); err != nil {
		t.Fatal(err)
	}
	conformance.DeletedWithoutHarm(t, host, dir)
}
