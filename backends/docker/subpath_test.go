package docker

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// An init container, or an earlier run of the container, replaces the directory of a subPath by a symbolic
// link to the host's root: the subPath is resolved again at each start, so the run that would write through
// it is refused with CreateContainerError and nothing reaches the host.
func TestSubPathSwappedForALinkOutIsRefused(t *testing.T) {
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
			b := newBackend(t, nil)
			host := t.TempDir()
			defer conformance.SubPathEscaped(t, host) // also when a wait fails
			p := conformance.SubPathSwapPod("spswap", host, tc.link, tc.byInit)
			create(t, b, p, conformance.Objects{})
			st := waitFor(t, b, p, "main refused", func(st interlink.PodStatus) bool {
				w := status(st, "main").State.Waiting
				return w != nil && w.Reason == "CreateContainerError"
			})
			conformance.SubPathRefused(t, st, "main")
			// The refused restart made no run: the log is the first run's, which swapped.
			if got := logsOf(t, b, p, "main", interlink.LogOpts{}); !tc.byInit && !strings.Contains(got, "swapped") || strings.Contains(got, "wrote through") {
				t.Errorf("main's log %q: want only its first run, which swapped its subPath", got)
			}
		})
	}
}

// Deleting a pod removes its directory, where its subPaths are pinned: the pins are unmounted first, so
// the removal never reaches the hostPath's data through them.
func TestDeleteKeepsTheHostPathBehindASubPath(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	host := t.TempDir()
	conformance.PrepareHostPathSubPath(t, host)
	p := conformance.HostPathSubPathPod("hpkeep", host)
	create(t, b, p, conformance.Objects{})
	waitPhase(t, b, p, v1.PodSucceeded)
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != "precious\n" {
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
