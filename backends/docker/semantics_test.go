package docker

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"k8s.io/apimachinery/pkg/api/resource"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

func TestTwoContainersTalkOverLocalhost(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	server := v1.Container{Name: "server", Image: labtest.PythonImage, ImagePullPolicy: v1.PullIfNotPresent,
		Command: []string{"python", "-m", "http.server", "8080", "--bind", "127.0.0.1"},
		Ports:   []v1.ContainerPort{{ContainerPort: 8080, Protocol: v1.ProtocolTCP}}}
	client := conformance.ShellContainer("client", `for i in $(seq 1 100); do
  if wget -q -O - http://localhost:8080/ | grep -q "Directory listing"; then echo reached the server; exit 0; fi
  sleep 0.2
done; echo server unreachable; exit 1`)
	p := conformance.NewPod("localhost", server, client)
	create(t, b, p, conformance.Objects{})
	waitFor(t, b, p, "client terminated", func(st interlink.PodStatus) bool { return status(st, "client").State.Terminated != nil })
	st := conformance.StatusOf(t, b, p, time.Minute)
	if term := status(st, "client").State.Terminated; term.ExitCode != 0 {
		t.Fatalf("client exit %d, log %q", term.ExitCode, logsOf(t, b, p, "client", interlink.LogOpts{}))
	}
	if s := status(st, "server"); s.State.Running == nil || !s.Ready {
		t.Errorf("server should still run and be ready: %+v", s.State)
	}
	if got := logsOf(t, b, p, "client", interlink.LogOpts{}); !strings.Contains(got, "reached the server") {
		t.Errorf("client log %q", got)
	}
}

func TestInitContainerWritesFileMainReads(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	mem := v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: ptrQ("8Mi")}}}
	p := conformance.NewPod("initfile",
		conformance.Mount(conformance.Mount(conformance.ShellContainer("main",
			`cat /work/msg /mem/msg; grep " /mem " /proc/mounts | cut -d" " -f3`), "work", "/work", "", false), "mem", "/mem", "", false))
	conformance.WithInit(p, conformance.Mount(conformance.Mount(conformance.ShellContainer("writer",
		`echo "written by init" > /work/msg; echo "in memory" > /mem/msg`), "work", "/work", "", false), "mem", "/mem", "", false))
	conformance.WithVolumes(p, conformance.EmptyDirVolume("work"), mem)
	create(t, b, p, conformance.Objects{})
	waitPhase(t, b, p, v1.PodSucceeded)
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != "written by init\nin memory\ntmpfs\n" {
		t.Errorf("main's log = %q: the init container's files (disk and tmpfs) did not reach main", got)
	}
}

func TestConfigMapAndSecretWithItemsAndSubPath(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	mode := int32(0o440)
	c := conformance.ShellContainer("main", `cat /etc/app/app.conf; echo; cat /cfg/sub/conf.txt; echo;
stat -c "%a" /sec/pass /cfg/sub/conf.txt /etc/app/app.conf; cat /sec/pass; echo; ls /cfg; ls /sec`)
	c = conformance.Mount(c, "cfg", "/etc/app/app.conf", "sub/conf.txt", false)
	c = conformance.Mount(c, "cfg", "/cfg", "", false)
	c = conformance.Mount(c, "sec", "/sec", "", false)
	secVol := conformance.SecretVolume("sec", "creds", []v1.KeyToPath{{Key: "password", Path: "pass", Mode: &mode}})
	p := conformance.WithVolumes(conformance.NewPod("items", c),
		conformance.ConfigMapVolume("cfg", "app", conformance.KeyToPaths("conf", "sub/conf.txt")), secVol)
	create(t, b, p, conformance.Objects{
		ConfigMaps: []v1.ConfigMap{conformance.NewConfigMap(p.Namespace, "app", map[string]string{"conf": "x=1", "other": "no"})},
		Secrets:    []v1.Secret{conformance.NewSecret(p.Namespace, "creds", map[string][]byte{"password": []byte("s3cret"), "user": []byte("u")})},
	})
	waitPhase(t, b, p, v1.PodSucceeded)
	want := "x=1\nx=1\n440\n644\n644\ns3cret\nsub\npass\n"
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

func TestSecretDefaultModeAndReadOnly(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	c := conformance.Mount(conformance.ShellContainer("main", `stat -c "%a" /sec/password; touch /sec/new 2>/dev/null && echo writable || echo read-only`), "sec", "/sec", "", false)
	p := conformance.WithVolumes(conformance.NewPod("secmode", c), conformance.SecretVolume("sec", "creds", nil))
	create(t, b, p, conformance.Objects{Secrets: []v1.Secret{conformance.NewSecret(p.Namespace, "creds", map[string][]byte{"password": []byte("x")})}})
	waitPhase(t, b, p, v1.PodSucceeded)
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != "400\nread-only\n" {
		t.Errorf("log = %q", got)
	}
}

func TestOOMKilled(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	c := v1.Container{Name: "hog", Image: labtest.PythonImage, ImagePullPolicy: v1.PullIfNotPresent,
		Command:   []string{"python", "-c", "b = b'x' * (512 * 1024 * 1024); print(len(b))"},
		Resources: v1.ResourceRequirements{Limits: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")}}}
	p := conformance.NewPod("oom", c)
	create(t, b, p, conformance.Objects{})
	st := waitPhase(t, b, p, v1.PodFailed)
	term := status(st, "hog").State.Terminated
	if term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Fatalf("hog = %+v, want OOMKilled with exit code 137", status(st, "hog"))
	}
}

func TestRestartOnFailureCountsRestarts(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	p := conformance.NewPod("onfailure", conformance.ShellContainer("flaky", `echo run; exit 3`))
	p.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	create(t, b, p, conformance.Objects{})
	st := waitFor(t, b, p, "a restart", func(st interlink.PodStatus) bool {
		s := status(st, "flaky")
		return s.RestartCount >= 1 && s.LastTerminationState.Terminated != nil
	})
	s := status(st, "flaky")
	if last := s.LastTerminationState.Terminated; last.ExitCode != 3 || last.Reason != "Error" {
		t.Errorf("lastState = %+v", last)
	}
	if s.State.Terminated != nil {
		t.Errorf("an OnFailure container that failed must not be reported terminated: %+v", s.State)
	}
	if got := logsOf(t, b, p, "flaky", interlink.LogOpts{Previous: true}); got != "run\n" {
		t.Errorf("previous log = %q", got)
	}
	// Always restarts a container that succeeded too; Never does not restart at all.
	p2 := conformance.NewPod("always", conformance.ShellContainer("ok", `echo done`))
	p2.Spec.RestartPolicy = v1.RestartPolicyAlways
	create(t, b, p2, conformance.Objects{})
	waitFor(t, b, p2, "a restart", func(st interlink.PodStatus) bool { return status(st, "ok").RestartCount >= 1 })
}

func TestFollowEndsWhenContainerEnds(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	p := conformance.NewPod("follow", conformance.ShellContainer("main", `for i in 1 2 3 4 5; do echo line $i; sleep 0.1; echo err $i >&2; sleep 0.3; done`))
	create(t, b, p, conformance.Objects{})
	waitFor(t, b, p, "main running", func(st interlink.PodStatus) bool { return status(st, "main").State.Running != nil })
	var buf labtest.Buffer
	done := make(chan error, 1)
	go func() {
		done <- b.Logs(context.Background(), backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: string(p.UID),
			ContainerName: "main", Opts: interlink.LogOpts{Follow: true}}}, &buf)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a Follow stream did not end after its container ended")
	}
	// The engine reads stdout and stderr through two pipes and stamps each line as it reads it, so the order
	// across the two streams is the engine's (on a busy machine a line of one came 0.4 s after a later line of
	// the other); within each stream it is the order of writing.
	got := buf.String()
	outLines, errLines := conformance.SplitByPrefix(strings.Split(strings.TrimSuffix(got, "\n"), "\n"), "err ")
	// A stream that ended before the container did (timing it would race a busy machine) lacks the last lines.
	if strings.Join(outLines, ",") != "line 1,line 2,line 3,line 4,line 5" || strings.Join(errLines, ",") != "err 1,err 2,err 3,err 4,err 5" {
		t.Errorf("followed log = %q, want lines 1-5 of stdout and of stderr, each stream in order", got)
	}
	// Tail, Bytes and timestamps, against the whole log as the engine ordered it.
	whole := logsOf(t, b, p, "main", interlink.LogOpts{})
	if whole != got {
		t.Errorf("the whole log %q differs from the followed one %q", whole, got)
	}
	lines := strings.SplitAfter(whole, "\n")
	lines = lines[:len(lines)-1] // after the last newline
	if got := logsOf(t, b, p, "main", interlink.LogOpts{Tail: 2}); got != strings.Join(lines[len(lines)-2:], "") {
		t.Errorf("tail 2 = %q, whole log %q", got, whole)
	}
	if got := logsOf(t, b, p, "main", interlink.LogOpts{LimitBytes: 9}); got != whole[:9] {
		t.Errorf("bytes 9 = %q, whole log %q", got, whole)
	}
	if got := logsOf(t, b, p, "main", interlink.LogOpts{Timestamps: true, Tail: 1}); !strings.HasSuffix(got, " "+lines[len(lines)-1]) ||
		!strings.HasPrefix(got, time.Now().UTC().Format("2006-01-02T")) {
		t.Errorf("timestamped = %q", got)
	}
	err := b.Logs(context.Background(), backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: string(p.UID),
		ContainerName: "main", Opts: interlink.LogOpts{Tail: 1, LimitBytes: 1}}}, &buf)
	if backend.KindOf(err) != backend.KindInvalid {
		t.Errorf("Tail with Bytes: %v", err)
	}
}

func TestPathEscapeRefusedAndNothingCreated(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	for name, mutate := range map[string]func(p *v1.Pod){
		"item path": func(p *v1.Pod) {
			p.Spec.Volumes[0].ConfigMap.Items = conformance.KeyToPaths("conf", "../../escape")
		},
		"subPath": func(p *v1.Pod) { p.Spec.Containers[0].VolumeMounts[0].SubPath = "../../../etc" },
		"absolute item": func(p *v1.Pod) {
			p.Spec.Volumes[0].ConfigMap.Items = conformance.KeyToPaths("conf", "/etc/passwd")
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := conformance.Mount(conformance.ShellContainer("main", "true"), "cfg", "/cfg", "", false)
			p := conformance.WithVolumes(conformance.NewPod("escape", c), conformance.ConfigMapVolume("cfg", "app", nil))
			mutate(p)
			_, err := b.Create(context.Background(), conformance.NewCreateRequest(p, conformance.Objects{
				ConfigMaps: []v1.ConfigMap{conformance.NewConfigMap(p.Namespace, "app", map[string]string{"conf": "x"})}}))
			if backend.KindOf(err) != backend.KindInvalid || !strings.Contains(err.Error(), "..") && !strings.Contains(err.Error(), "relative") {
				t.Fatalf("Create = %v, want an invalid-pod error naming the path", err)
			}
			if cs := podContainersOf(t, b, string(p.UID)); len(cs) != 0 {
				t.Errorf("%d containers were created for a refused pod", len(cs))
			}
			if _, err := os.Stat(b.podDir(string(p.UID))); !os.IsNotExist(err) {
				t.Errorf("the refused pod's directory exists: %v", err)
			}
		})
	}
}

func TestSymlinkSubPathEscapeRefused(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	// An init container plants symlinks in a shared emptyDir; a container mounting a subPath through them
	// must fail to start instead of binding the host's directories.
	planter := conformance.Mount(conformance.ShellContainer("planter", `ln -s /etc /data/abs; ln -s ../../../../../../ /data/up`), "data", "/data", "", false)
	victim := conformance.Mount(conformance.Mount(conformance.ShellContainer("victim", `ls /x /y | head -3`),
		"data", "/x", "up", false), "data", "/y", "abs/ssl", false)
	p := conformance.WithVolumes(conformance.WithInit(conformance.NewPod("symlink", victim), planter), conformance.EmptyDirVolume("data"))
	create(t, b, p, conformance.Objects{})
	st := waitFor(t, b, p, "victim refused", func(st interlink.PodStatus) bool {
		w := status(st, "victim").State.Waiting
		return w != nil && w.Reason == "CreateContainerError"
	})
	if msg := status(st, "victim").State.Waiting.Message; !strings.Contains(msg, "leads outside the volume") {
		t.Errorf("message %q", msg)
	}
}

func TestCPUAndMemoryLimitsExact(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	c := conformance.ShellContainer("main", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max; sleep 30")
	c.Resources = v1.ResourceRequirements{
		Limits:   v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("96Mi")},
		Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("32Mi")},
	}
	p := conformance.NewPod("limits", c)
	create(t, b, p, conformance.Objects{})
	st := waitPhase(t, b, p, v1.PodRunning)
	id := strings.TrimPrefix(status(st, "main").ContainerID, "docker://")
	in, err := b.cli.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	r := in.HostConfig.Resources
	if r.NanoCPUs != 500_000_000 || r.Memory != 96<<20 || r.MemoryReservation != 32<<20 || r.CPUShares != 256 {
		t.Errorf("resources: NanoCPUs %d Memory %d Reservation %d Shares %d", r.NanoCPUs, r.Memory, r.MemoryReservation, r.CPUShares)
	}
	if got := conformance.WaitForLog(t, b, p, "main", "100000\n", time.Minute); got != "50000\n100000\n" && got != "50000 100000\n" {
		t.Errorf("cgroup CPU quota = %q, want half a CPU", got)
	}
}

func TestImagePullErrorsAndPolicies(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	missing := conformance.ShellContainer("missing", "true")
	missing.Image = labtest.RegistryAddr + "/library/no-such-image:1"
	missing.ImagePullPolicy = v1.PullIfNotPresent
	never := conformance.ShellContainer("never", "true")
	never.Image = "no-such-local-image:1"
	never.ImagePullPolicy = v1.PullNever
	always := conformance.ShellContainer("always", "echo pulled")
	always.ImagePullPolicy = v1.PullAlways
	p := conformance.NewPod("pull", missing, never, always)
	create(t, b, p, conformance.Objects{})
	st := waitFor(t, b, p, "pull errors", func(st interlink.PodStatus) bool {
		m, n := status(st, "missing").State.Waiting, status(st, "never").State.Waiting
		return m != nil && m.Reason == "ErrImagePull" && n != nil && n.Reason == "ErrImageNeverPull" &&
			status(st, "always").State.Terminated != nil
	})
	if msg := status(st, "missing").State.Waiting.Message; !strings.Contains(msg, "no-such-image") || len(msg) < 40 {
		t.Errorf("ErrImagePull message lacks the engine's words: %q", msg)
	}
	// The failure survives a restart of the backend (it is on disk, not only in memory).
	b.Close()
	b2 := startBackend(t, b.env)
	st2 := conformance.StatusOf(t, b2, p, time.Minute)
	if w := status(st2, "missing").State.Waiting; w == nil || w.Reason != "ErrImagePull" {
		t.Errorf("after a restart: %+v", status(st2, "missing").State)
	}
}

func TestSecurityContextAndEnv(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	uid, gid, yes, no := int64(1234), int64(2345), true, false
	c := conformance.ShellContainer("main", `id -u; id -g; touch /rootfs-file 2>/dev/null && echo rw || echo ro;
echo $MY_NAME $MY_NS $MY_IP $APP $GREETING; pwd; grep CapEff /proc/self/status | cut -f2; grep NoNewPrivs /proc/self/status | cut -f2`)
	c.WorkingDir = "/tmp"
	c.SecurityContext = &v1.SecurityContext{RunAsUser: &uid, RunAsGroup: &gid, ReadOnlyRootFilesystem: &yes,
		AllowPrivilegeEscalation: &no, Capabilities: &v1.Capabilities{Drop: []v1.Capability{"ALL"}}}
	c.Env = []v1.EnvVar{conformance.FieldRefEnv("MY_NAME", "metadata.name"), conformance.FieldRefEnv("MY_NS", "metadata.namespace"),
		conformance.FieldRefEnv("MY_IP", "status.podIP"), conformance.FieldRefEnv("APP", "metadata.labels['app']"),
		{Name: "GREETING", Value: "hello-$(MY_NAME)"}}
	p := conformance.NewPod("secctx", c)
	p.Annotations["interlink.eu/pod-ip"] = "10.1.2.3"
	create(t, b, p, conformance.Objects{})
	waitPhase(t, b, p, v1.PodSucceeded)
	want := "1234\n2345\nro\n" + p.Name + " conformance 10.1.2.3 conformance hello-" + p.Name + "\n/tmp\n0000000000000000\n1\n"
	if got := logsOf(t, b, p, "main", interlink.LogOpts{}); got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}

func TestCommandAndArgsSemantics(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	argsOnly := v1.Container{Name: "args", Image: labtest.BusyboxImage, ImagePullPolicy: v1.PullIfNotPresent, Args: []string{"echo", "args", "$(X)"},
		Env: []v1.EnvVar{{Name: "X", Value: "expanded"}}}
	cmdOnly := v1.Container{Name: "cmd", Image: labtest.BusyboxImage, ImagePullPolicy: v1.PullIfNotPresent, Command: []string{"echo", "command"}}
	both := v1.Container{Name: "both", Image: labtest.BusyboxImage, ImagePullPolicy: v1.PullIfNotPresent, Command: []string{"echo"}, Args: []string{"a", "b"}}
	p := conformance.NewPod("cmdargs", argsOnly, cmdOnly, both)
	create(t, b, p, conformance.Objects{})
	waitPhase(t, b, p, v1.PodSucceeded)
	for c, want := range map[string]string{"args": "args expanded\n", "cmd": "command\n", "both": "a b\n"} {
		if got := logsOf(t, b, p, c, interlink.LogOpts{}); got != want {
			t.Errorf("%s: %q, want %q", c, got, want)
		}
	}
}

func TestGracefulDeleteRemovesEverything(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	c := conformance.ShellContainer("main", `trap 'echo got TERM; exit 0' TERM; echo trapped; while true; do sleep 0.1; done`)
	mem := v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}}
	p := conformance.WithVolumes(conformance.NewPod("delete", conformance.Mount(c, "mem", "/mem", "", false)), mem)
	grace := int64(300) // a container not sent SIGTERM would take it all
	p.Spec.TerminationGracePeriodSeconds = &grace
	create(t, b, p, conformance.Objects{})
	waitPhase(t, b, p, v1.PodRunning)
	conformance.WaitForLog(t, b, p, "main", "trapped\n", time.Minute)
	start := time.Now()
	if err := b.Delete(context.Background(), backend.DeleteRequest{Pod: p}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("a container that exits on SIGTERM took %v to delete: it was not sent SIGTERM", d)
	}
	if cs := podContainersOf(t, b, string(p.UID)); len(cs) != 0 {
		t.Errorf("%d containers left after delete", len(cs))
	}
	vols, _ := b.cli.VolumeList(context.Background(), volumeFilter(b, string(p.UID)))
	if len(vols.Volumes) != 0 {
		t.Errorf("%d volumes left after delete", len(vols.Volumes))
	}
	if _, err := os.Stat(b.podDir(string(p.UID))); !os.IsNotExist(err) {
		t.Errorf("pod directory left after delete: %v", err)
	}
	st := conformance.StatusOf(t, b, p, time.Minute)
	if term := status(st, "main").State.Terminated; term == nil || term.Reason != "NotFound" {
		t.Errorf("status after delete = %+v", status(st, "main").State)
	}
	// A container that ignores SIGTERM is killed after the grace period.
	stubborn := conformance.NewPod("stubborn", conformance.ShellContainer("main", `trap '' TERM; echo trapped; while true; do sleep 0.1; done`))
	stubborn.Spec.TerminationGracePeriodSeconds = &grace // the request's 2 s overrides it
	create(t, b, stubborn, conformance.Objects{})
	waitPhase(t, b, stubborn, v1.PodRunning)
	conformance.WaitForLog(t, b, stubborn, "main", "trapped\n", time.Minute)
	var id string
	for _, c := range podContainersOf(t, b, string(stubborn.UID)) {
		if c.Labels[pod.LabelRole] == pod.RoleContainer {
			id = c.ID
		}
	}
	since := time.Now().Add(-time.Second)
	if err := b.Delete(context.Background(), backend.DeleteRequest{Pod: stubborn, GracePeriod: 2 * time.Second}); err != nil {
		t.Fatal(err)
	}
	// The shim kills it when the request's grace is over; the engine's own kill, shimStopMargin later, is
	// only the backstop. The engine's events tell them apart whatever the load: its SIGTERM, then the end,
	// with no SIGKILL of its own between.
	term, died, engineKilled := stopEvents(t, b, id, since)
	switch {
	case term.IsZero() || died.IsZero():
		t.Errorf("the engine logged no stop signal (%v) or no end (%v) for the container", term, died)
	case engineKilled:
		t.Errorf("the engine had to kill the container that ignores SIGTERM: the shim did not at the 2 s grace period")
	case died.Sub(term) < 2*time.Second-100*time.Millisecond:
		t.Errorf("the container that ignores SIGTERM ended %v after it, before the 2 s grace period", died.Sub(term))
	}
	if err := b.Delete(context.Background(), backend.DeleteRequest{Pod: conformance.NewPod("ghost")}); err != nil {
		t.Errorf("deleting an unknown pod: %v", err)
	}
}

func TestGPURefusedWithoutGPUs(t *testing.T) {
	t.Parallel()
	b := newBackend(t, map[string]any{"gpus": 0})
	c := conformance.ShellContainer("main", "true")
	c.Resources.Limits = v1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
	_, err := b.Create(context.Background(), conformance.NewCreateRequest(conformance.NewPod("gpu", c), conformance.Objects{}))
	if backend.KindOf(err) != backend.KindInvalid || !strings.Contains(err.Error(), "has no GPUs") {
		t.Errorf("Create = %v", err)
	}
}

// A batch Status answers from the view: pods nothing happened to cost no list, whatever the batch.
func TestStatusOfABatchOfUnchangedPodsListsNothing(t *testing.T) {
	t.Parallel()
	b := newBackend(t, nil)
	var pods []*v1.Pod
	for i := 0; i < 3; i++ {
		p := conformance.NewPod("batch", conformance.ShellContainer("main", "sleep 30"))
		create(t, b, p, conformance.Objects{})
		pods = append(pods, p)
	}
	for _, p := range pods {
		waitPhase(t, b, p, v1.PodRunning)
	}
	asked := append(pods, conformance.NewPod("unknown", conformance.ShellContainer("x", "true")))
	if _, err := b.Status(context.Background(), asked); err != nil { // the first look inspects
		t.Fatal(err)
	}
	// Counted over many calls: each pod's runner may still make a call of its own (one list, one inspect
	// per pod at most, on a busy machine) while the status calls run. A list per call would be 20.
	const calls = 20
	lists, inspects := callCount(t, b, "container_list"), callCount(t, b, "container_inspect")
	var sts []interlink.PodStatus
	for i := 0; i < calls; i++ {
		var err error
		if sts, err = b.Status(context.Background(), asked); err != nil || len(sts) != 4 {
			t.Fatalf("Status: %v, %d statuses", err, len(sts))
		}
	}
	if got := callCount(t, b, "container_list") - lists; got > uint64(len(pods)) {
		t.Errorf("%d Status calls of unchanged pods made %d list queries, want none", calls, got)
	}
	if got := callCount(t, b, "container_inspect") - inspects; got > uint64(len(pods)) {
		t.Errorf("%d Status calls of unchanged pods made %d inspects, want none", calls, got)
	}
	if sts[3].Containers[0].State.Terminated == nil || sts[3].Containers[0].State.Terminated.Reason != "NotFound" {
		t.Errorf("unknown pod: %+v", sts[3])
	}
}

func TestCapacityAndDescribe(t *testing.T) {
	t.Parallel()
	b := newBackend(t, map[string]any{"pods": 42})
	c, err := b.Capacity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.CPUMilli == nil || *c.CPUMilli <= 0 || c.MemoryBytes == nil || *c.MemoryBytes <= 0 || c.Pods == nil || *c.Pods != 42 {
		t.Errorf("capacity = %+v", c)
	}
	d, _ := b.Describe(context.Background())
	if d.ProtocolVersion != backend.ProtocolVersion || !strings.HasPrefix(d.Engine, "Docker Engine ") || len(d.Capabilities.VolumeKinds) != 6 {
		t.Errorf("description = %+v", d)
	}
}

// stopEvents reads the engine's events for container id since then: when it was sent SIGTERM, when it died,
// and whether the engine sent it SIGKILL before it died.
func stopEvents(t *testing.T, b *Backend, id string, since time.Time) (term, died time.Time, engineKilled bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, errs := b.cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(filters.Arg("container", id)),
		Since: strconv.FormatInt(since.Unix(), 10), Until: strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)})
	for {
		select {
		case m := <-msgs:
			at := time.Unix(0, m.TimeNano)
			switch {
			case m.Action == events.ActionKill && m.Actor.Attributes["signal"] == "15" && term.IsZero():
				term = at
			case m.Action == events.ActionKill && m.Actor.Attributes["signal"] == "9" && died.IsZero():
				engineKilled = true
			case m.Action == events.ActionDie && died.IsZero():
				died = at
			}
		case err := <-errs:
			if !errors.Is(err, io.EOF) {
				t.Fatalf("reading the container's events: %v", err)
			}
			return term, died, engineKilled
		}
	}
}
