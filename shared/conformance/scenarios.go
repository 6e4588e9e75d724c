package conformance

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	podlayer "github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// containerStatus returns the status of the container named name, among init containers too.
func containerStatus(t *testing.T, st interlink.PodStatus, name string) v1.ContainerStatus {
	t.Helper()
	for _, c := range append(append([]v1.ContainerStatus{}, st.InitContainers...), st.Containers...) {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no status for container %q:\n%s", name, FormatStatus(st))
	return v1.ContainerStatus{}
}

// terminated checks that container name has terminated with exit code and reason (reason "" is not
// checked) and returns its state.
func terminated(t *testing.T, st interlink.PodStatus, name string, code int32, reason string) *v1.ContainerStateTerminated {
	t.Helper()
	cs := containerStatus(t, st, name)
	term := cs.State.Terminated
	if term == nil {
		t.Fatalf("container %q is not terminated:\n%s", name, FormatStatus(st))
	}
	if term.ExitCode != code {
		t.Errorf("container %q exit code = %d, want %d", name, term.ExitCode, code)
	}
	if reason != "" && term.Reason != reason {
		t.Errorf("container %q terminated with reason %q, want %q", name, term.Reason, reason)
	}
	if term.StartedAt.IsZero() || term.FinishedAt.IsZero() {
		t.Errorf("container %q terminated without startedAt (%v) or finishedAt (%v)", name, term.StartedAt, term.FinishedAt)
	} else if term.FinishedAt.Before(&term.StartedAt) {
		t.Errorf("container %q finished (%v) before it started (%v)", name, term.FinishedAt, term.StartedAt)
	}
	return term
}

func logRequest(pod *v1.Pod, container string, opts interlink.LogOpts) backend.LogRequest {
	return backend.LogRequest{LogStruct: interlink.LogStruct{Namespace: pod.Namespace, PodUID: string(pod.UID),
		PodName: pod.Name, ContainerName: container, Opts: opts}}
}

// logsOf reads a container's log with opts.
func (h *harness) logsOf(t *testing.T, pod *v1.Pod, container string, opts interlink.LogOpts) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	err := h.b.Logs(h.ctx(t), logRequest(pod, container, opts), &buf)
	return buf.String(), err
}

func (h *harness) mustLogs(t *testing.T, pod *v1.Pod, container string, opts interlink.LogOpts) string {
	t.Helper()
	out, err := h.logsOf(t, pod, container, opts)
	if err != nil {
		t.Fatalf("Logs of %s/%s with %+v: %v", pod.Name, container, opts, err)
	}
	return out
}

func wantContains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q; it is:\n%s", what, w, got)
		}
	}
}

func (h *harness) singleContainer(t *testing.T) {
	pod := NewPod("single", ShellContainer("main", "echo hello from conformance"))
	h.create(t, pod, Objects{})
	st := h.waitPhase(t, pod, v1.PodSucceeded)
	terminated(t, st, "main", 0, "Completed")
	wantContains(t, "the log", h.mustLogs(t, pod, "main", interlink.LogOpts{}), "hello from conformance\n")
}

func (h *harness) failingContainer(t *testing.T) {
	pod := NewPod("failing", ShellContainer("main", "echo about to fail; exit 3"))
	h.create(t, pod, Objects{})
	st := h.waitPhase(t, pod, v1.PodFailed)
	terminated(t, st, "main", 3, "Error")
	wantContains(t, "the log", h.mustLogs(t, pod, "main", interlink.LogOpts{}), "about to fail\n")
}

func (h *harness) initContainers(t *testing.T) {
	pod := NewPod("init",
		Mount(ShellContainer("main", "cat /work/order"), "work", "/work", "", false))
	WithInit(pod,
		Mount(ShellContainer("first", "echo one > /work/order"), "work", "/work", "", false),
		// Fails unless first has run before it.
		Mount(ShellContainer("second", "grep -q one /work/order && echo two >> /work/order && echo second ran"),
			"work", "/work", "", false))
	WithVolumes(pod, EmptyDirVolume("work"))
	h.create(t, pod, Objects{})
	st := h.waitPhase(t, pod, v1.PodSucceeded)
	first := terminated(t, st, "first", 0, "Completed")
	second := terminated(t, st, "second", 0, "Completed")
	terminated(t, st, "main", 0, "Completed")
	// Times are kept to the second in Kubernetes statuses, so only an inversion is an error.
	if second.StartedAt.Before(&first.FinishedAt) {
		t.Errorf("init container second started (%v) before first finished (%v)", second.StartedAt, first.FinishedAt)
	}
	if main := containerStatus(t, st, "main").State.Terminated; main.StartedAt.Before(&second.FinishedAt) {
		t.Errorf("container main started (%v) before init container second finished (%v)", main.StartedAt,
			second.FinishedAt)
	}
	if got := h.mustLogs(t, pod, "main", interlink.LogOpts{}); got != "one\ntwo\n" {
		t.Errorf("main's log = %q, want %q: the init containers did not run once each, in order", got, "one\ntwo\n")
	}
	wantContains(t, "init container second's log", h.mustLogs(t, pod, "second", interlink.LogOpts{}), "second ran\n")
}

// initFailureGrace is how long a backend may take to report the containers of a pod whose init container
// failed as terminated, once it reports the failure.
const initFailureGrace = 30 * time.Second

func (h *harness) initFailure(t *testing.T) {
	pod := NewPod("initfail", ShellContainer("main", "echo main ran"))
	WithInit(pod, ShellContainer("setup", "echo init failing; exit 4"))
	h.create(t, pod, Objects{})
	WaitFor(t, h.b, pod, h.o.PodTimeout, "the end of init container setup", func(st interlink.PodStatus) bool {
		return st.InitContainers[0].State.Terminated != nil
	})
	// The virtual kubelet marks the pod Failed only once every container is terminated: main, which never
	// ran, must be reported terminated, not waiting, or the pod stays Pending in Kubernetes forever.
	st := WaitFor(t, h.b, pod, min(initFailureGrace, h.o.PodTimeout), "main (which never ran) reported terminated after its init "+
		"container failed, so that the virtual kubelet marks the pod Failed", func(st interlink.PodStatus) bool {
		return st.Containers[0].State.Terminated != nil
	})
	terminated(t, st, "setup", 4, "")
	if p := podlayer.NextPhase(pod, st); p != v1.PodFailed {
		t.Errorf("pod reads as %s after its init container failed, want Failed:\n%s", p, FormatStatus(st))
	}
	wantContains(t, "init container setup's log", h.mustLogs(t, pod, "setup", interlink.LogOpts{}), "init failing\n")
	if out, _ := h.logsOf(t, pod, "main", interlink.LogOpts{}); strings.Contains(out, "main ran") {
		t.Errorf("main ran although its init container failed; its log: %q", out)
	}
}

func (h *harness) multiContainer(t *testing.T) {
	pod := NewPod("multi", ShellContainer("alpha", "echo from alpha"), ShellContainer("beta", "echo from beta"))
	h.create(t, pod, Objects{})
	st := h.waitPhase(t, pod, v1.PodSucceeded)
	terminated(t, st, "alpha", 0, "Completed")
	terminated(t, st, "beta", 0, "Completed")
	if got := h.mustLogs(t, pod, "alpha", interlink.LogOpts{}); got != "from alpha\n" {
		t.Errorf("alpha's log = %q, want %q", got, "from alpha\n")
	}
	if got := h.mustLogs(t, pod, "beta", interlink.LogOpts{}); got != "from beta\n" {
		t.Errorf("beta's log = %q, want %q", got, "from beta\n")
	}
}

// specialValue must reach the container byte for byte: quotes, a dollar, a backslash, a newline.
const specialValue = "it's \"quoted\" $HOME `id` \\ back\nsecond line"

func (h *harness) env(t *testing.T) {
	c := ShellContainer("main", `echo "greeting=$GREETING"; echo "name=$POD_NAME"; echo "namespace=$POD_NAMESPACE"; `+
		`echo "uid=$POD_UID"; printf 'special=%s|\n' "$SPECIAL"`)
	c.Env = []v1.EnvVar{
		{Name: "GREETING", Value: "hello world"},
		{Name: "SPECIAL", Value: specialValue},
		FieldRefEnv("POD_NAME", "metadata.name"),
		FieldRefEnv("POD_NAMESPACE", "metadata.namespace"),
		FieldRefEnv("POD_UID", "metadata.uid"),
	}
	pod := NewPod("env", c)
	h.create(t, pod, Objects{})
	h.waitPhase(t, pod, v1.PodSucceeded)
	wantContains(t, "the log", h.mustLogs(t, pod, "main", interlink.LogOpts{}),
		"greeting=hello world\n", "name="+pod.Name+"\n", "namespace="+pod.Namespace+"\n", "uid="+string(pod.UID)+"\n",
		"special="+specialValue+"|\n")
}

// terminationMessage runs the Kubernetes conformance cases of termination messages: the file at
// terminationMessagePath (also for a non-root user at a path of its own), and FallbackToLogsOnError, which
// takes the end of the log only when the run failed and left the file empty.
func (h *harness) terminationMessage(t *testing.T) {
	type tc struct {
		name, script string
		path         string
		policy       v1.TerminationMessagePolicy
		user         bool
		phase        v1.PodPhase
		exit         int32
		want         string
	}
	cases := []tc{
		{"file", "printf DONE > /dev/termination-log", "", v1.TerminationMessageReadFile, false, v1.PodSucceeded, 0, "DONE"},
		{"fallback-log", "printf DONE; exit 1", "", v1.TerminationMessageFallbackToLogsOnError, false, v1.PodFailed, 1, "DONE"},
		{"fallback-success", "echo DONE; true", "", v1.TerminationMessageFallbackToLogsOnError, false, v1.PodSucceeded, 0, ""},
		{"fallback-file", "printf OK > /dev/termination-log; echo DONE; true", "", v1.TerminationMessageFallbackToLogsOnError, false, v1.PodSucceeded, 0, "OK"},
	}
	if slices.Contains(h.caps.Features, backend.FeatureRunAsUser) {
		cases = append(cases, tc{"non-root-path", "printf DONE > /dev/termination-custom-log", "/dev/termination-custom-log",
			v1.TerminationMessageReadFile, true, v1.PodSucceeded, 0, "DONE"})
	}
	pods := make([]*v1.Pod, len(cases))
	for i, c := range cases {
		ctr := ShellContainer("main", c.script)
		ctr.TerminationMessagePath, ctr.TerminationMessagePolicy = podlayer.DefaultTerminationMessagePath, c.policy
		if c.path != "" {
			ctr.TerminationMessagePath = c.path
		}
		if c.user {
			uid := int64(1000)
			ctr.SecurityContext = &v1.SecurityContext{RunAsUser: &uid}
		}
		pods[i] = NewPod("termination-"+c.name, ctr)
		h.create(t, pods[i], Objects{})
	}
	for i, c := range cases {
		st := h.waitPhase(t, pods[i], c.phase)
		term := terminated(t, st, "main", c.exit, "")
		if term.Message != c.want {
			t.Errorf("%s: termination message %q, want %q", c.name, term.Message, c.want)
		}
		if c.name == "fallback-log" {
			// A last line without its newline is a line of its own, for a tail too.
			if got := h.mustLogs(t, pods[i], "main", interlink.LogOpts{Tail: 1}); got != "DONE" {
				t.Errorf("%s: log with Tail 1 = %q, want %q", c.name, got, "DONE")
			}
		}
	}
}

func (h *harness) configMapVolume(t *testing.T) {
	cm := NewConfigMap(DefaultNamespace, "cf-config", map[string]string{
		"app.conf": "key=value\nother=2\n", "unused": "not mounted through items\n"})
	c := ShellContainer("main", "cat /etc/cf/conf/app.conf; test -e /etc/cf/unused || echo no-unused; cat /etc/cf-all/unused")
	c = Mount(c, "items", "/etc/cf", "", true)
	c = Mount(c, "all", "/etc/cf-all", "", true)
	pod := WithVolumes(NewPod("configmap", c),
		ConfigMapVolume("items", "cf-config", KeyToPaths("app.conf", "conf/app.conf")),
		ConfigMapVolume("all", "cf-config", nil))
	h.create(t, pod, Objects{ConfigMaps: []v1.ConfigMap{cm}})
	h.waitPhase(t, pod, v1.PodSucceeded)
	if got := h.mustLogs(t, pod, "main", interlink.LogOpts{}); got != "key=value\nother=2\nno-unused\nnot mounted through items\n" {
		t.Errorf("log = %q: the configMap's items (key to path) or its keys as files were not honoured", got)
	}
}

func (h *harness) secretVolume(t *testing.T) {
	s := NewSecret(DefaultNamespace, "cf-secret", map[string][]byte{"password": []byte("s3cr3t\n"), "user": []byte("admin\n")})
	c := Mount(ShellContainer("main", "cat /etc/creds/auth/pw; test -e /etc/creds/user || echo no-user"),
		"creds", "/etc/creds", "", true)
	pod := WithVolumes(NewPod("secret", c), SecretVolume("creds", "cf-secret", KeyToPaths("password", "auth/pw")))
	h.create(t, pod, Objects{Secrets: []v1.Secret{s}})
	h.waitPhase(t, pod, v1.PodSucceeded)
	if got := h.mustLogs(t, pod, "main", interlink.LogOpts{}); got != "s3cr3t\nno-user\n" {
		t.Errorf("log = %q: the secret's decoded data at its item path was not found", got)
	}
}

func (h *harness) projectedVolume(t *testing.T) {
	const dir = "/var/run/secrets/kubernetes.io/serviceaccount"
	c := Mount(ShellContainer("main", "cat "+dir+"/ca.crt; echo; cat "+dir+"/namespace; echo; cat "+dir+"/token; echo"),
		"kube-api-access-cf", dir, "", true)
	pod := WithVolumes(NewPod("projected", c), ServiceAccountVolume("kube-api-access-cf"))
	files := ServiceAccountFiles(pod.Namespace)
	h.create(t, pod, Objects{Projected: map[string]map[string]string{"kube-api-access-cf": files}})
	h.waitPhase(t, pod, v1.PodSucceeded)
	want := files["ca.crt"] + "\n" + files["namespace"] + "\n" + files["token"] + "\n"
	if got := h.mustLogs(t, pod, "main", interlink.LogOpts{}); got != want {
		t.Errorf("log = %q, want %q: the projected volume's files were not materialised intact", got, want)
	}
}

func (h *harness) emptyDirVolume(t *testing.T) {
	writer := Mount(ShellContainer("writer", "echo shared-data > /data/f.tmp && mv /data/f.tmp /data/f"), "data", "/data", "", false)
	reader := Mount(ShellContainer("reader",
		"i=0; while [ $i -lt 60 ]; do if [ -f /data/f ]; then cat /data/f; exit 0; fi; i=$((i+1)); sleep 1; done; exit 1"),
		"data", "/data", "", false)
	pod := WithVolumes(NewPod("emptydir", writer, reader), EmptyDirVolume("data"))
	h.create(t, pod, Objects{})
	h.waitPhase(t, pod, v1.PodSucceeded)
	if got := h.mustLogs(t, pod, "reader", interlink.LogOpts{}); got != "shared-data\n" {
		t.Errorf("reader's log = %q: the emptyDir is not shared between the pod's containers", got)
	}
}

func (h *harness) subPathVolume(t *testing.T) {
	cm := NewConfigMap(DefaultNamespace, "cf-subpath", map[string]string{"app.conf": "from-subpath\n", "other": "x\n"})
	c := ShellContainer("main", "cat /etc/app.conf; test -e /etc/other || echo no-other; "+
		"echo via-subpath > /part/x; cat /full/nested/x")
	c = Mount(c, "config", "/etc/app.conf", "app.conf", true)
	c = Mount(c, "scratch", "/full", "", false)
	c = Mount(c, "scratch", "/part", "nested", false)
	pod := WithVolumes(NewPod("subpath", c), ConfigMapVolume("config", "cf-subpath", nil), EmptyDirVolume("scratch"))
	h.create(t, pod, Objects{ConfigMaps: []v1.ConfigMap{cm}})
	h.waitPhase(t, pod, v1.PodSucceeded)
	if got := h.mustLogs(t, pod, "main", interlink.LogOpts{}); got != "from-subpath\nno-other\nvia-subpath\n" {
		t.Errorf("log = %q: a configMap key mounted by subPath, or an emptyDir subdirectory mounted by subPath, "+
			"is not where it belongs", got)
	}
}

// subPathExprVolume is Kubernetes' conformance case of subPathExpr ("should allow substituting values in a
// volume subpath"): the expression expands with the container's environment, here the pod's name; an
// expression naming a variable without a value, or leading out of its volume, is refused at create.
func (h *harness) subPathExprVolume(t *testing.T) {
	c := ShellContainer("main", `echo via-expr > /logs/x; cat "/all/$POD_NAME/x"`)
	c.Env = []v1.EnvVar{FieldRefEnv("POD_NAME", "metadata.name")}
	c = Mount(c, "scratch", "/all", "", false)
	c = Mount(c, "scratch", "/logs", "", false)
	c.VolumeMounts[1].SubPathExpr = "$(POD_NAME)"
	pod := WithVolumes(NewPod("subpathexpr", c), EmptyDirVolume("scratch"))
	h.create(t, pod, Objects{})
	h.waitPhase(t, pod, v1.PodSucceeded)
	if got := h.mustLogs(t, pod, "main", interlink.LogOpts{}); got != "via-expr\n" {
		t.Errorf("log = %q: the emptyDir subdirectory named by subPathExpr $(POD_NAME) is not where it belongs", got)
	}
	for expr, env := range map[string]v1.EnvVar{"$(MISSING)": {Name: "OTHER", Value: "x"}, "$(UP)/x": {Name: "UP", Value: ".."}} {
		c := Mount(ShellContainer("main", "true"), "scratch", "/logs", "", false)
		c.Env = []v1.EnvVar{env}
		c.VolumeMounts[0].SubPathExpr = expr
		bad := WithVolumes(NewPod("subpathexpr-bad", c), EmptyDirVolume("scratch"))
		res, err := h.b.Create(h.ctx(t), h.request(bad, Objects{}))
		h.deleteAtEnd(t, bad, &res)
		if backend.KindOf(err) != backend.KindInvalid || !strings.Contains(err.Error(), "subPathExpr") {
			t.Errorf("Create with subPathExpr %q (env %s=%q): %v, want it refused as invalid, naming subPathExpr", expr, env.Name, env.Value, err)
		}
	}
}

func (h *harness) deleteRunning(t *testing.T) {
	pod := NewPod("delrunning", ShellContainer("main", "echo running; sleep 3600"))
	res := h.create(t, pod, Objects{})
	h.waitPhase(t, pod, v1.PodRunning)
	start := time.Now()
	h.delete(t, pod, res.RemoteID)
	if d := time.Since(start); d > h.o.GracePeriod+30*time.Second {
		t.Errorf("Delete of a running pod took %v with a grace period of %v", d, h.o.GracePeriod)
	}
	h.checkGone(t, pod)
}

func (h *harness) deleteFinished(t *testing.T) {
	pod := NewPod("delfinished", ShellContainer("main", "echo done"))
	res := h.create(t, pod, Objects{})
	h.waitPhase(t, pod, v1.PodSucceeded)
	h.delete(t, pod, res.RemoteID)
	h.checkGone(t, pod)
}

// checkGone checks that a deleted pod is no longer listed and that its status can no longer read as alive.
func (h *harness) checkGone(t *testing.T, pod *v1.Pod) {
	t.Helper()
	recs, err := h.b.List(h.ctx(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, r := range recs {
		if r.UID == string(pod.UID) {
			t.Errorf("deleted pod %s is still listed: %+v", pod.Name, r)
		}
	}
	st := StatusOf(t, h.b, pod, h.o.CallTimeout)
	for _, c := range st.Containers {
		if c.State.Terminated == nil {
			t.Errorf("deleted pod %s: container %q is not reported terminated:\n%s", pod.Name, c.Name, FormatStatus(st))
		}
	}
}

func (h *harness) deleteUnknown(t *testing.T) {
	pod := NewPod("delunknown", ShellContainer("main", "true"))
	if err := h.b.Delete(h.ctx(t), backend.DeleteRequest{Pod: pod, GracePeriod: h.o.GracePeriod}); err != nil {
		t.Errorf("Delete of a pod the backend never saw: %v; it must succeed", err)
	}
}

func (h *harness) idempotentCreate(t *testing.T) {
	pod := NewPod("idempotent", ShellContainer("main", "echo started-once; sleep 2"))
	first := h.create(t, pod, Objects{})
	again, err := h.b.Create(h.ctx(t), h.request(pod, Objects{}))
	if err != nil {
		t.Fatalf("second Create of the same pod: %v", err)
	}
	if again.RemoteID != first.RemoteID {
		t.Errorf("second Create returned remote id %q, the first %q", again.RemoteID, first.RemoteID)
	}
	h.waitPhase(t, pod, v1.PodSucceeded)
	if n := strings.Count(h.mustLogs(t, pod, "main", interlink.LogOpts{}), "started-once"); n != 1 {
		t.Errorf("the container started %d times for two creates of one pod", n)
	}
	recs, err := h.b.List(h.ctx(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	n := 0
	for _, r := range recs {
		if r.UID == string(pod.UID) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("List shows the pod %d times, want once", n)
	}
}

// checkNotFound checks the status of a pod the backend does not know: every container terminated with a
// non-zero exit code and reason NotFound, so that Kubernetes sees it Failed instead of Pending forever.
func checkNotFound(t *testing.T, pod *v1.Pod, st interlink.PodStatus) {
	t.Helper()
	if err := CheckStatus(pod, st); err != nil {
		t.Fatalf("status of an unknown pod: %v\n%s", err, FormatStatus(st))
	}
	for _, c := range append(append([]v1.ContainerStatus{}, st.InitContainers...), st.Containers...) {
		term := c.State.Terminated
		if term == nil || term.ExitCode == 0 || term.Reason != "NotFound" {
			t.Errorf("unknown pod: container %q is not terminated with a non-zero exit code and reason NotFound:\n%s",
				c.Name, FormatStatus(st))
		}
	}
	if p := podlayer.NextPhase(pod, st); p != v1.PodFailed {
		t.Errorf("unknown pod reads as %s, want Failed", p)
	}
}

func (h *harness) statusUnknown(t *testing.T) {
	pod := WithInit(NewPod("unknown", ShellContainer("a", "true"), ShellContainer("b", "true")),
		ShellContainer("setup", "true"))
	sts, err := h.b.Status(h.ctx(t), []*v1.Pod{pod})
	if err != nil {
		t.Fatalf("Status of a pod the backend never saw: %v; it must answer, not fail", err)
	}
	if len(sts) != 1 {
		t.Fatalf("Status of one pod answered %d statuses", len(sts))
	}
	checkNotFound(t, pod, sts[0])
}

func (h *harness) statusBatch(t *testing.T) {
	ok := NewPod("batchok", ShellContainer("main", "echo fine"))
	bad := NewPod("batchbad", ShellContainer("main", "exit 3"))
	unknown := NewPod("batchunknown", ShellContainer("main", "true"))
	h.create(t, ok, Objects{})
	h.create(t, bad, Objects{})
	h.waitPhase(t, ok, v1.PodSucceeded)
	h.waitPhase(t, bad, v1.PodFailed)

	order := []*v1.Pod{bad, unknown, ok}
	sts, err := h.b.Status(h.ctx(t), order)
	if err != nil {
		t.Fatalf("Status of three pods: %v", err)
	}
	if len(sts) != len(order) {
		t.Fatalf("Status of three pods answered %d statuses", len(sts))
	}
	for i, pod := range order {
		if err := CheckStatus(pod, sts[i]); err != nil {
			t.Errorf("status %d (pod %s): %v", i, pod.Name, err)
		}
	}
	if p := podlayer.NextPhase(bad, sts[0]); p != v1.PodFailed {
		t.Errorf("pod %s reads as %s in the batch, want Failed", bad.Name, p)
	}
	checkNotFound(t, unknown, sts[1])
	if p := podlayer.NextPhase(ok, sts[2]); p != v1.PodSucceeded {
		t.Errorf("pod %s reads as %s in the batch, want Succeeded", ok.Name, p)
	}

	none, err := h.b.Status(h.ctx(t), nil)
	if err != nil || len(none) != 0 {
		t.Errorf("Status of no pods = %v, %v; want no statuses and no error", none, err)
	}
}

func (h *harness) list(t *testing.T) {
	pods := []*v1.Pod{
		NewPod("lista", ShellContainer("main", "sleep 60")),
		NewPod("listb", ShellContainer("main", "sleep 60")),
	}
	ids := map[string]string{}
	for _, pod := range pods {
		ids[string(pod.UID)] = h.create(t, pod, Objects{}).RemoteID
	}
	recs, err := h.b.List(h.ctx(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, pod := range pods {
		var found *backend.PodRecord
		for i := range recs {
			if recs[i].UID == string(pod.UID) {
				found = &recs[i]
			}
		}
		if found == nil {
			t.Errorf("List does not show pod %s (uid %s)", pod.Name, pod.UID)
			continue
		}
		if found.Namespace != pod.Namespace || found.Name != pod.Name || found.RemoteID != ids[string(pod.UID)] {
			t.Errorf("List shows pod %s as %+v, want namespace %q, name %q, remote id %q", pod.Name, *found,
				pod.Namespace, pod.Name, ids[string(pod.UID)])
		}
		switch found.Phase {
		case v1.PodPending, v1.PodRunning, v1.PodSucceeded, v1.PodFailed, v1.PodUnknown:
		default:
			t.Errorf("List shows pod %s in phase %q, which is not a pod phase", pod.Name, found.Phase)
		}
		if found.Created.IsZero() || time.Since(found.Created) > time.Hour || time.Until(found.Created) > time.Minute {
			t.Errorf("List shows pod %s created at %v, not about now", pod.Name, found.Created)
		}
	}
}

// waitWriter is an io.Writer that notes when each write arrived, to tell streaming from buffering.
type waitWriter struct {
	buf    bytes.Buffer
	writes []time.Time
	texts  []string
}

func (w *waitWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, time.Now())
	w.texts = append(w.texts, string(p))
	return w.buf.Write(p)
}

// invalidPod checks that a pod using a feature the backend does not honour is refused as invalid, naming
// the field, and that nothing of it is left behind: no backend may drop a pod field silently.
func (h *harness) invalidPod(t *testing.T) {
	if slices.Contains(h.caps.VolumeKinds, "nfs") {
		h.skip(t, ScenarioInvalidPod, "the backend declares nfs volumes, the feature this scenario relies on it lacking")
	}
	c := Mount(ShellContainer("main", "true"), "remote", "/mnt", "", false)
	pod := WithVolumes(NewPod("invalid", c), v1.Volume{Name: "remote", VolumeSource: v1.VolumeSource{
		NFS: &v1.NFSVolumeSource{Server: "nfs.example.org", Path: "/export"}}})
	res, err := h.b.Create(h.ctx(t), h.request(pod, Objects{}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), h.o.CallTimeout)
		defer cancel()
		_ = h.b.Delete(ctx, backend.DeleteRequest{Pod: pod, RemoteID: res.RemoteID, GracePeriod: h.o.GracePeriod})
	})
	if backend.KindOf(err) != backend.KindInvalid {
		t.Fatalf("Create of a pod with an nfs volume: %v (kind %v), want an invalid-input error", err, backend.KindOf(err))
	}
	if msg := err.Error(); !strings.Contains(msg, "nfs") || (!strings.Contains(msg, "spec.volumes[0]") &&
		!strings.Contains(msg, "spec.containers[0].volumeMounts[0]")) {
		t.Errorf("the refusal %q does not name the field (spec.volumes[0] or spec.containers[0].volumeMounts[0]) "+
			"and the nfs kind", msg)
	}
	recs, err := h.b.List(h.ctx(t))
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, r := range recs {
		if r.UID == string(pod.UID) {
			t.Errorf("a refused pod is listed: %+v", r)
		}
	}
}
