package podman

import (
	"context"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
	"github.com/interlink-hq/interlink-dispatcher/shared/shim"
)

// Two containers of a pod share one network namespace: the client reaches the server on localhost.
func TestContainersTalkOverLocalhost(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	p := newPod("localhost",
		busybox("server", "mkdir -p /www && echo pong > /www/ping && exec httpd -f -p 127.0.0.1:8080 -h /www"),
		busybox("client", "for i in $(seq 50); do wget -q -O - http://localhost:8080/ping && exit 0; sleep 0.2; done; exit 1"),
	)
	create(t, b, p)
	st := waitFor(t, b, p, time.Minute, "the client to finish", func(st interlink.PodStatus) bool {
		return st.Containers[1].State.Terminated != nil
	})
	if cs := st.Containers[1]; cs.State.Terminated.ExitCode != 0 || cs.State.Terminated.Reason != pod.ReasonCompleted {
		t.Fatalf("client: %s, want terminated 0 Completed", stateString(cs))
	}
	if st.Containers[0].State.Running == nil || !st.Containers[0].Ready {
		t.Fatalf("server: %s, want running and ready", stateString(st.Containers[0]))
	}
	if got := logs(t, b, p, "client", interlink.LogOpts{}); strings.TrimSpace(got) != "pong" {
		t.Fatalf("client log = %q, want pong", got)
	}
}

// Init containers run one after another, each to completion, before the regular container, and share the
// pod's emptyDir with it.
func TestInitContainersRunInOrder(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	mount := []v1.VolumeMount{{Name: "work", MountPath: "/work"}}
	first := busybox("first", "sleep 1; echo first >> /work/order")
	first.VolumeMounts = mount
	second := busybox("second", "test -f /work/order && echo second >> /work/order")
	second.VolumeMounts = mount
	main := busybox("main", "cat /work/order")
	main.VolumeMounts = mount
	p := newPod("init-order", main)
	p.Spec.InitContainers = []v1.Container{first, second}
	p.Spec.Volumes = []v1.Volume{{Name: "work", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	create(t, b, p)

	sawInitializing := false
	// Three containers one after another, each started, ended and cleaned up by the service: 15 s in one CI
	// run, 61 s in another, where libpod's TestPodLifecycle took 60 s too (13 s on an idle machine).
	st := waitFor(t, b, p, 2*time.Minute, "the pod to succeed", func(st interlink.PodStatus) bool {
		if w := st.Containers[0].State.Waiting; w != nil && w.Reason == pod.ReasonPodInitializing {
			sawInitializing = true
		}
		return pod.Phase(st) == v1.PodSucceeded
	})
	if !sawInitializing {
		t.Error("the regular container was never reported waiting with PodInitializing while init containers ran")
	}
	for _, cs := range st.InitContainers {
		if cs.State.Terminated == nil || cs.State.Terminated.Reason != pod.ReasonCompleted {
			t.Fatalf("init container %s: %s", cs.Name, stateString(cs))
		}
	}
	if st.InitContainers[1].State.Terminated.StartedAt.Before(&st.InitContainers[0].State.Terminated.FinishedAt) {
		t.Fatal("the second init container started before the first one finished")
	}
	if got := logs(t, b, p, "main", interlink.LogOpts{}); got != "first\nsecond\n" {
		t.Fatalf("main read %q, want first then second", got)
	}
}

// A failing init container ends the pod (restartPolicy Never): it is reported on that container, and the
// regular container never starts.
func TestInitContainerFailureFailsPod(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	p := newPod("init-fails", busybox("main", "echo must-not-run"))
	p.Spec.InitContainers = []v1.Container{busybox("setup", "echo broken >&2; exit 3"), busybox("later", "echo must-not-run")}
	create(t, b, p)
	st := waitFor(t, b, p, time.Minute, "the pod to fail", phaseIs(v1.PodFailed))
	if term := st.InitContainers[0].State.Terminated; term == nil || term.ExitCode != 3 || term.Reason != pod.ReasonError {
		t.Fatalf("init: %s, want terminated 3 Error", stateString(st.InitContainers[0]))
	}
	// Terminated, not waiting: the virtual kubelet fails a pod only once all its containers are terminated.
	if term := st.InitContainers[1].State.Terminated; term == nil || term.Reason != pod.ReasonUnknown || !strings.Contains(term.Message, "setup") {
		t.Fatalf("later init: %s, want terminated as never started, naming the failed init container", stateString(st.InitContainers[1]))
	}
	if out := logs(t, b, p, "later", interlink.LogOpts{}); out != "" {
		t.Errorf("the log of the init container that never ran = %q, want empty", out)
	}
	if term := st.Containers[0].State.Terminated; term == nil || term.Reason != pod.ReasonUnknown || !strings.Contains(term.Message, "setup") {
		t.Fatalf("main: %s, want terminated as never started, naming the init container", stateString(st.Containers[0]))
	}
	waitLaunchDone(t, b, p, time.Minute) // the only thing that could still start main
	ins, err := b.api.ContainerInspect(context.Background(), containerName(podmanName(p), "main"))
	if err != nil || !ins.State.StartedAt.IsZero() {
		t.Fatalf("main started after its init container failed (%v): %+v", err, ins.State)
	}
}

// configMap and secret volumes with items (key → nested path, modes) and subPath mounts of single files.
func TestVolumesItemsAndSubPath(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	mode := int32(0o440)
	c := busybox("reader", strings.Join([]string{
		"cat /etc/app/nested/app.conf", "cat /etc/only-token", "stat -c %a /etc/secret/token",
		"stat -c %a /etc/app/nested/app.conf", "ls /etc/app | tr '\\n' ' '; echo",
		"cat /etc/pem/ca.pem", "grep -c ' /scratch tmpfs ' /proc/mounts",
	}, " && "))
	c.VolumeMounts = []v1.VolumeMount{
		{Name: "cfg", MountPath: "/etc/app"},
		{Name: "sec", MountPath: "/etc/secret"},
		{Name: "sec", MountPath: "/etc/only-token", SubPath: "token"},
		{Name: "pem", MountPath: "/etc/pem"},
		{Name: "scratch", MountPath: "/scratch"},
	}
	p := newPod("volumes", c)
	p.Spec.Volumes = []v1.Volume{
		{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "app"},
			Items:                []v1.KeyToPath{{Key: "conf", Path: "nested/app.conf"}}}}},
		{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "creds",
			Items: []v1.KeyToPath{{Key: "password", Path: "token", Mode: &mode}}}}},
		{Name: "pem", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{}}},
		{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}},
	}
	pem := "-----BEGIN CERTIFICATE-----\nMIIB\nABCD\n-----END CERTIFICATE-----\n"
	objs := interlink.RetrievedContainer{
		Name:                "reader",
		ConfigMaps:          []v1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Data: map[string]string{"conf": "level=debug\n", "ignored": "x"}}},
		Secrets:             []v1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret\n"), "other": []byte("no")}}},
		ProjectedVolumeMaps: []v1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "pem"}, Data: map[string]string{"ca.pem": pem}}},
	}
	create(t, b, p, objs)
	st := waitFor(t, b, p, time.Minute, "the reader to finish", func(st interlink.PodStatus) bool { return st.Containers[0].State.Terminated != nil })
	out := logs(t, b, p, "reader", interlink.LogOpts{})
	if st.Containers[0].State.Terminated.ExitCode != 0 {
		t.Fatalf("reader failed: %s; log:\n%s", stateString(st.Containers[0]), out)
	}
	want := "level=debug\ns3cret\n440\n644\nnested \n" + pem + "1\n"
	if out != want {
		t.Fatalf("reader saw:\n%s\nwant:\n%s", out, want)
	}
}

// Names and paths that would leave the pod's directory are refused at create, and nothing is made.
func TestPathEscapeRefused(t *testing.T) {
	t.Parallel()
	env := testEnv(t)
	b := newTestBackend(t, env)
	cases := map[string]func(p *v1.Pod){
		"item path": func(p *v1.Pod) {
			p.Spec.Volumes[0].ConfigMap.Items = []v1.KeyToPath{{Key: "conf", Path: "../../escape"}}
		},
		"subPath": func(p *v1.Pod) {
			p.Spec.Containers[0].VolumeMounts[0].SubPath = "../../../etc"
		},
		"absolute item path": func(p *v1.Pod) {
			p.Spec.Volumes[0].ConfigMap.Items = []v1.KeyToPath{{Key: "conf", Path: "/etc/passwd"}}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := busybox("c", "true")
			c.VolumeMounts = []v1.VolumeMount{{Name: "cfg", MountPath: "/cfg"}}
			p := newPod("escape", c)
			p.Spec.Volumes = []v1.Volume{{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
				LocalObjectReference: v1.LocalObjectReference{Name: "app"}}}}}
			mutate(p)
			objs := interlink.RetrievedContainer{Name: "c", ConfigMaps: []v1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Data: map[string]string{"conf": "x"}}}}
			_, err := b.Create(context.Background(), createReq(p, objs))
			if err == nil || kindOf(err) != "invalid" {
				t.Fatalf("create = %v, want an invalid-pod error", err)
			}
			ctrs, err := b.api.ContainerList(context.Background(), b.podLabels(string(p.UID)))
			if err != nil || len(ctrs) != 0 {
				t.Fatalf("the engine has %d containers for the refused pod (%v)", len(ctrs), err)
			}
			if _, err := statDir(b.podDir(string(p.UID))); err == nil {
				t.Fatalf("the refused pod left its directory %s", b.podDir(string(p.UID)))
			}
			if st := status(t, b, p); st.Containers[0].State.Terminated == nil || st.Containers[0].State.Terminated.Reason != pod.ReasonNotFound {
				t.Fatalf("status of the refused pod: %s, want NotFound", describe(st))
			}
		})
	}
}

// A container over its memory limit is OOM-killed and reported so.
func TestOOMKilled(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	c := busybox("hog", "exec dd if=/dev/zero of=/dev/null bs=64M count=1")
	c.Resources.Limits = v1.ResourceList{v1.ResourceMemory: resource.MustParse("16Mi")}
	p := newPod("oom", c)
	create(t, b, p)
	st := waitFor(t, b, p, time.Minute, "the hog to end", func(st interlink.PodStatus) bool { return st.Containers[0].State.Terminated != nil })
	if term := st.Containers[0].State.Terminated; term.Reason != pod.ReasonOOMKilled || term.ExitCode != 137 {
		t.Fatalf("hog: %s, want terminated 137 OOMKilled", stateString(st.Containers[0]))
	}
	if pod.Phase(st) != v1.PodFailed {
		t.Fatalf("phase %s, want Failed", pod.Phase(st))
	}
}

// CPU limits are exact (500m is half a CPU: 50 ms per 100 ms), memory limits and requests land on the engine.
func TestResourceLimitsExact(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	c := busybox("limited", "sleep 30")
	c.Resources.Limits = v1.ResourceList{v1.ResourceCPU: resource.MustParse("500m"), v1.ResourceMemory: resource.MustParse("64Mi")}
	c.Resources.Requests = v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("32Mi")}
	p := newPod("limits", c)
	create(t, b, p)
	waitFor(t, b, p, time.Minute, "the container to run", phaseIs(v1.PodRunning))
	ins, err := b.api.ContainerInspect(context.Background(), containerName(podmanName(p), "limited"))
	if err != nil {
		t.Fatal(err)
	}
	if ins.HostConfig.CPUQuota != 50000 || ins.HostConfig.CPUPeriod != 100000 {
		t.Fatalf("CPU quota/period = %d/%d, want 50000/100000", ins.HostConfig.CPUQuota, ins.HostConfig.CPUPeriod)
	}
	if ins.HostConfig.Memory != 64<<20 {
		t.Fatalf("memory limit = %d, want %d", ins.HostConfig.Memory, 64<<20)
	}
}

// restartPolicy OnFailure: Podman restarts the failing container; restartCount and lastState are reported.
func TestRestartOnFailure(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	// Fails twice, then stays up: the count lives in an emptyDir that survives restarts.
	c := busybox("flaky", "n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n; echo run$n; if [ $n -lt 3 ]; then exit 2; fi; sleep 60")
	c.VolumeMounts = []v1.VolumeMount{{Name: "state", MountPath: "/state"}}
	p := newPod("restarts", c)
	p.Spec.RestartPolicy = v1.RestartPolicyOnFailure
	p.Spec.Volumes = []v1.Volume{{Name: "state", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}}}
	create(t, b, p)
	st := waitFor(t, b, p, time.Minute, "the container to run after restarts", func(st interlink.PodStatus) bool {
		cs := st.Containers[0]
		return cs.State.Running != nil && cs.RestartCount >= 2
	})
	cs := st.Containers[0]
	last := cs.LastTerminationState.Terminated
	if last == nil || last.ExitCode != 2 || last.Reason != pod.ReasonError {
		t.Fatalf("lastState = %+v, want terminated with exit 2", cs.LastTerminationState)
	}
	if got := logs(t, b, p, "flaky", interlink.LogOpts{Previous: true}); !strings.Contains(got, "run2") || strings.Contains(got, "run3") {
		t.Errorf("previous log = %q, want the second run's", got)
	}
	conformance.WaitForLog(t, b, p, "flaky", "run3\n", time.Minute) // Running comes a moment before the line
	if got := logs(t, b, p, "flaky", interlink.LogOpts{Tail: 1}); got != "run3\n" {
		t.Errorf("tail 1 = %q, want run3", got)
	}
}

// A followed log streams until the container ends, then the call returns.
func TestFollowLogsEndWithContainer(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	p := newPod("follow", busybox("talker", "for i in 1 2 3 4; do echo line$i; echo err$i >&2; sleep 0.5; done"))
	create(t, b, p)
	waitFor(t, b, p, time.Minute, "the talker to start", func(st interlink.PodStatus) bool {
		return st.Containers[0].State.Running != nil || st.Containers[0].State.Terminated != nil
	})
	start := time.Now()
	got := logs(t, b, p, "talker", interlink.LogOpts{Follow: true, Timestamps: true})
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 8 {
		t.Fatalf("followed %d lines, want 8:\n%s", len(lines), got)
	}
	// conmon reads stdout and stderr through two pipes: within each stream the order is the writing's,
	// across the two it is conmon's (the Docker engine was seen to swap them on a busy machine).
	texts := make([]string, len(lines))
	for i, l := range lines {
		ts, text, _ := strings.Cut(l, " ")
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("line %d %q has no RFC3339 timestamp", i, l)
		}
		texts[i] = text
	}
	out, errs := conformance.SplitByPrefix(texts, "err")
	if strings.Join(out, ",") != "line1,line2,line3,line4" || strings.Join(errs, ",") != "err1,err2,err3,err4" {
		t.Errorf("followed log:\n%s\nwant line1-4 on stdout and err1-4 on stderr, each stream in order", got)
	}
	if time.Since(start) > 20*time.Second {
		t.Fatal("the follow did not end with the container")
	}
	whole := logs(t, b, p, "talker", interlink.LogOpts{})
	if got := logs(t, b, p, "talker", interlink.LogOpts{LimitBytes: 8}); len(whole) < 8 || got != whole[:8] {
		t.Errorf("Bytes 8 = %q, want the first 8 bytes of %q", got, whole)
	}
}

// An image that cannot be pulled shows as ErrImagePull with the registry's message, and Never with a
// missing image as ErrImageNeverPull; nothing is left on the engine.
func TestImagePullFailures(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	missing := v1.Container{Name: "missing", Image: "127.0.0.1:5000/does-not-exist:v1", ImagePullPolicy: v1.PullIfNotPresent}
	p := newPod("pull-fails", missing)
	create(t, b, p)
	st := waitFor(t, b, p, time.Minute, "the pull to fail", func(st interlink.PodStatus) bool {
		w := st.Containers[0].State.Waiting
		return w != nil && w.Reason == pod.ReasonErrImagePull
	})
	if msg := st.Containers[0].State.Waiting.Message; !strings.Contains(msg, "does-not-exist") {
		t.Fatalf("ErrImagePull message %q does not name the image", msg)
	}
	never := v1.Container{Name: "never", Image: "127.0.0.1:5000/not-here:v2", ImagePullPolicy: v1.PullNever}
	p2 := newPod("never-pull", never)
	create(t, b, p2)
	waitFor(t, b, p2, time.Minute, "ErrImageNeverPull", func(st interlink.PodStatus) bool {
		w := st.Containers[0].State.Waiting
		return w != nil && w.Reason == pod.ReasonErrImageNeverPull
	})
	ctrs, _ := b.api.ContainerList(context.Background(), b.podLabels(string(p.UID)))
	pods, _ := b.api.PodList(context.Background(), b.podLabels(string(p.UID)))
	if len(ctrs)+len(pods) != 0 {
		t.Fatalf("a pod whose image failed left %d containers and %d pods on the engine", len(ctrs), len(pods))
	}
}

// A container the engine refuses to create: the pod made so far is removed, and every container says why;
// a command that does not exist is the shim's StartError (exit 127), so the pod ends Failed.
func TestCreateAndStartErrors(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	bad := busybox("bad", "true")
	bad.SecurityContext = &v1.SecurityContext{Capabilities: &v1.Capabilities{Add: []v1.Capability{"BOGUS"}}}
	p := newPod("create-error", busybox("good", "sleep 30"), bad)
	create(t, b, p)
	st := waitFor(t, b, p, time.Minute, "CreateContainerError", func(st interlink.PodStatus) bool {
		w := st.Containers[1].State.Waiting
		return w != nil && w.Reason == pod.ReasonCreateContainerError
	})
	if !strings.Contains(st.Containers[1].State.Waiting.Message, "BOGUS") {
		t.Errorf("bad: %s, want the engine's message naming the capability", stateString(st.Containers[1]))
	}
	if w := st.Containers[0].State.Waiting; w == nil || w.Reason != pod.ReasonCreateContainerError || !strings.Contains(w.Message, `"bad"`) {
		t.Errorf("good: %s, want waiting CreateContainerError naming bad", stateString(st.Containers[0]))
	}
	ctrs, _ := b.api.ContainerList(context.Background(), b.podLabels(string(p.UID)))
	pods, _ := b.api.PodList(context.Background(), b.podLabels(string(p.UID)))
	if len(ctrs)+len(pods) != 0 {
		t.Fatalf("the half-made pod left %d containers and %d pods", len(ctrs), len(pods))
	}

	p2 := newPod("start-error", v1.Container{Name: "nocmd", Image: "busybox:latest", ImagePullPolicy: v1.PullIfNotPresent, Command: []string{"/does/not/exist"}})
	create(t, b, p2)
	st = waitFor(t, b, p2, time.Minute, "the start error", func(st interlink.PodStatus) bool { return st.Containers[0].State.Terminated != nil })
	if term := st.Containers[0].State.Terminated; term.ExitCode != shim.ExitNotFound || term.Reason != shim.ReasonStartError || !strings.Contains(term.Message, "/does/not/exist") {
		t.Fatalf("nocmd: %s, want terminated 127 StartError naming the command", stateString(st.Containers[0]))
	}
	if pod.Phase(st) != v1.PodFailed {
		t.Fatalf("phase %s, want Failed", pod.Phase(st))
	}
}

// A pod of one container is a Podman pod without an infra container (one container on the engine, not
// two), whose container has the pod's hostname and a network of its own; a pod of two keeps its infra
// container (TestContainersTalkOverLocalhost).
func TestLoneContainerPodWithoutInfra(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	p := newPod("lone", busybox("web", "hostname; mkdir -p /www && echo pong > /www/ping && httpd -p 127.0.0.1:8080 -h /www && wget -q -O - http://localhost:8080/ping"))
	p.Spec.Hostname = "lone-host"
	create(t, b, p)
	st := waitFor(t, b, p, time.Minute, "the pod to end", func(st interlink.PodStatus) bool { return st.Containers[0].State.Terminated != nil })
	if cs := st.Containers[0]; cs.State.Terminated.ExitCode != 0 {
		t.Fatalf("web: %s, want terminated 0", stateString(cs))
	}
	if got := strings.Fields(logs(t, b, p, "web", interlink.LogOpts{})); len(got) != 2 || got[0] != "lone-host" || got[1] != "pong" {
		t.Fatalf("log %q, want the hostname lone-host and pong from its own localhost", got)
	}
	pair := newPod("pair", busybox("a", "exec sleep 300"), busybox("b", "exec sleep 300"))
	create(t, b, pair)
	waitFor(t, b, pair, time.Minute, "the pair to run", phaseIs(v1.PodRunning))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, want := range []struct {
		p     *v1.Pod
		infra bool
	}{{p, false}, {pair, true}} {
		pods, err := b.api.PodList(ctx, b.podLabels(string(want.p.UID)))
		if err != nil {
			t.Fatal(err)
		}
		if len(pods) != 1 || (pods[0].InfraID != "") != want.infra {
			t.Fatalf("pod %s: Podman pods %+v, want one, with an infra container: %v", want.p.Name, pods, want.infra)
		}
	}
}
