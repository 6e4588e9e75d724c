package docker

import (
	"context"
	"os"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

func TestEmptyDirSizeLimitEvicts(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	limit := resource.MustParse("1Mi")
	vol := v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{SizeLimit: &limit}}}
	c := conformance.Mount(conformance.ShellContainer("main", `head -c 4000000 /dev/urandom > /scratch/big; echo written; sleep 60`), "scratch", "/scratch", "", false)
	p := conformance.WithVolumes(conformance.NewPod("evict", c), vol)
	p.Spec.RestartPolicy = v1.RestartPolicyAlways
	create(t, b, p, conformance.Objects{})
	st := waitPhase(t, b, p, v1.PodFailed)
	term := status(st, "main").State.Terminated
	if term.Reason != pod.ReasonEvicted || !strings.Contains(term.Message, `"scratch" exceeds the limit "1Mi"`) {
		t.Errorf("main = %+v", term)
	}
	// Within its limit, a pod runs on.
	ok := conformance.WithVolumes(conformance.NewPod("within", conformance.Mount(conformance.ShellContainer("main",
		`head -c 100000 /dev/urandom > /scratch/small; echo done`), "scratch", "/scratch", "", false)), vol)
	create(t, b, ok, conformance.Objects{})
	waitPhase(t, b, ok, v1.PodSucceeded)
}

func TestCommandNotFoundIsTerminated(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	c := conformance.ShellContainer("main", "")
	c.Command = []string{"nonexistent-command"}
	p := conformance.NewPod("notfound", c)
	create(t, b, p, conformance.Objects{})
	st := waitPhase(t, b, p, v1.PodFailed)
	term := status(st, "main").State.Terminated
	if term.ExitCode == 0 || term.Reason != "StartError" || !strings.Contains(term.Message, "nonexistent-command") {
		t.Errorf("main = %+v", term)
	}
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); !strings.Contains(got, "nonexistent-command") {
		t.Errorf("log = %q, want the start error", got)
	}
	// Under OnFailure a run that cannot start is retried like any failed run.
	retried := conformance.NewPod("notfoundretry", c)
	retried.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	create(t, b, retried, conformance.Objects{})
	waitFor(t, b, retried, "a restart", func(st interlink.PodStatus) bool {
		s := status(st, "main")
		return s.RestartCount >= 1 && s.LastTerminationState.Terminated != nil && s.LastTerminationState.Terminated.Reason == "StartError"
	})
}

func TestHostNetworkAndHostname(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Skip("cannot read this process's network namespace:", err)
	}
	p := conformance.NewPod("hostnet", conformance.ShellContainer("main", `readlink /proc/self/ns/net`))
	p.Spec.HostNetwork = true
	pod2 := conformance.NewPod("podnet", conformance.ShellContainer("main", `readlink /proc/self/ns/net; hostname`))
	create(t, b, p, conformance.Objects{})
	create(t, b, pod2, conformance.Objects{})
	waitPhase(t, b, p, v1.PodSucceeded)
	waitPhase(t, b, pod2, v1.PodSucceeded)
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != hostNS+"\n" {
		t.Errorf("hostNetwork pod's namespace %q, want the host's %q", got, hostNS)
	}
	got := strings.Split(logsOf(t, b, pod2, "main", interlink.LogOpts{}), "\n")
	if got[0] == hostNS || got[1] != pod2.Name {
		t.Errorf("pod network namespace and hostname: %q (host %s, pod %s)", got, hostNS, pod2.Name)
	}
}

func TestHalfMadePodIsCleanedUp(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	p := conformance.NewPod("halfmade", conformance.ShellContainer("main", "true"))
	// A create that crashed after making the pause container, before recording its id.
	if err := os.MkdirAll(b.podDir(string(p.UID)), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := b.writeRecord(string(p.UID), &record{Pod: p}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.createPause(context.Background(), p, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(podContainersOf(t, b, string(p.UID))); n != 1 {
		t.Fatalf("%d containers", n)
	}
	b.Close()
	b2 := startBackend(t, b.env)
	if n := len(podContainersOf(t, b2, string(p.UID))); n != 0 {
		t.Errorf("%d containers of a half-made pod left after a restart", n)
	}
	if _, err := os.Stat(b2.podDir(string(p.UID))); !os.IsNotExist(err) {
		t.Errorf("the half-made pod's directory is left: %v", err)
	}
}

func TestLogsOfContainerThatNeverRanAreEmpty(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	p := conformance.WithInit(conformance.NewPod("neverran", conformance.ShellContainer("main", "echo main")),
		conformance.ShellContainer("init", "exit 1"))
	create(t, b, p, conformance.Objects{})
	waitPhase(t, b, p, v1.PodFailed)
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != "" {
		t.Errorf("log = %q", got)
	}
}

func TestPreExecAnnotationsRunFirstInPodNetwork(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	c := conformance.ShellContainer("main", `wget -q -O - http://127.0.0.1:9000/index.html http://127.0.0.1:9000/w.html`)
	p := conformance.NewPod("preexec", c)
	p.Annotations[pod.AnnotationPreExec] = `mkdir -p /www && echo pre-exec-ok > /www/index.html && httpd -p 127.0.0.1:9000 -h /www`
	p.Annotations[pod.AnnotationWstunnel] = `echo wstunnel-ok > /www/w.html`
	create(t, b, p, conformance.Objects{})
	waitPhase(t, b, p, v1.PodSucceeded)
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != "pre-exec-ok\nwstunnel-ok\n" {
		t.Errorf("main's log = %q: the pre-exec text did not run first, in the pod's network namespace, leaving its server up", got)
	}
	failing := conformance.NewPod("preexecfail", conformance.ShellContainer("main", "echo ran"))
	failing.Annotations[pod.AnnotationPreExec] = `exit 3`
	create(t, b, failing, conformance.Objects{})
	st := waitFor(t, b, failing, "a pre-exec error", func(st interlink.PodStatus) bool {
		w := status(st, "main").State.Waiting
		return w != nil && w.Reason == "PreExecError"
	})
	if msg := status(st, "main").State.Waiting.Message; !strings.Contains(msg, "exit code 3") {
		t.Errorf("message %q", msg)
	}
}

func TestPodsLimitAndTmpfsSize(t *testing.T) {
	t.Parallel()
	b := newBackend(t, map[string]any{"pods": 1})
	mem := v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: ptrQ("1Mi")}}}
	c := conformance.Mount(conformance.ShellContainer("main", `head -c 2000000 /dev/zero > /mem/big 2>/dev/null && echo fits || echo full`), "mem", "/mem", "", false)
	p := conformance.WithVolumes(conformance.NewPod("tmpfs", c), mem)
	create(t, b, p, conformance.Objects{})
	_, err := b.Create(context.Background(), conformance.NewCreateRequest(conformance.NewPod("second", conformance.ShellContainer("main", "true")), conformance.Objects{}))
	if backend.KindOf(err) != backend.KindUnavailable || !strings.Contains(err.Error(), "limit") {
		t.Errorf("a create beyond the pods limit: %v", err)
	}
	waitPhase(t, b, p, v1.PodSucceeded)
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != "full\n" {
		t.Errorf("writing 2 MB into a 1Mi Memory emptyDir: %q", got)
	}
}
