package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	authnv1client "k8s.io/client-go/kubernetes/typed/authentication/v1"
	batchv1client "k8s.io/client-go/kubernetes/typed/batch/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest/labkube"
)

// The backends of the lab's dispatcher, which a pod chooses with backendAnnotation (docker when it has none).
// kubernetes offloads the pod to the lab's second cluster, whose virtual node runs it on a second dispatcher's
// Docker (deploy/lab/kube.sh, config.yaml): the chain twice over.
var backends = []string{"docker", "podman", "slurm", "kubernetes"}

const backendAnnotation = "dispatcher.interlink.eu/backend"

// Images the lab's registry mirror serves.
const (
	busybox = "busybox:latest"
	alpine  = "alpine:latest"
	python  = "python:3.11"
)

// Bounds of the waits. A pod's first status comes from the virtual kubelet's status loop (every 5 s, one pod
// after the other), so the bounds are generous; they only cost time when a case fails. A case on SLURM gets
// slurmQueueWait more (see env.startTimeout).
const (
	baseStartTimeout  = 2 * time.Minute // created to Running, or to a first container state
	baseFinishTimeout = 3 * time.Minute // created to Succeeded or Failed
	nsGoneTimeout     = 2 * time.Minute // a test's namespace deleted to gone
	// The suite runs its cases all at once (-parallel 96): more pods ask SLURM for a CPU at once than the lab's
	// node has (16), so a SLURM pod's job may wait in the queue for others to end, some of which run for a
	// minute or more.
	slurmQueueWait = 4 * time.Minute
	// A pod on the kubernetes backend goes through two virtual kubelets, each with its own 5 s status loop,
	// and two dispatchers, under the load of the whole suite.
	kubernetesChainWait = 2 * time.Minute
)

// runLabel labels every namespace of the suite with the run's runID, so that what a killed run left behind
// is found by a query (see sweepLeftovers).
const runLabel = "e2e.interlink.eu/run"

// leftoverAge is the age past which a namespace of the suite belongs to no running suite: a run is bounded by
// its go test -timeout (14 min in CI), so a namespace older than this was left by a run that was killed or
// timed out before its cleanups ran.
const leftoverAge = time.Hour

var runID = func() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}()

// TestMain raises -parallel when it is not given: the suite's subtests wait on pods, not on the CPU, and
// Go's default (GOMAXPROCS, 2 on the lab machine) would run them two at a time. It first deletes what earlier
// runs left behind.
func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", "96")
	}
	sweepLeftovers()
	os.Exit(m.Run())
}

// sweepLeftovers deletes the suite's namespaces (those with runLabel) older than leftoverAge: a run that timed
// out or was killed never ran its cleanups, and its namespaces, pods and the backends' containers and jobs
// would stay forever. Deleting a namespace makes the virtual kubelet delete its pods on their backends. Only
// old ones are deleted, since another run may be using the cluster at the same time; the deletion is not
// waited for. A cluster that cannot be reached is left to the cases to report.
func sweepLeftovers() {
	path, err := labkube.KubeconfigPath()
	if err != nil {
		return
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return
	}
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nss, err := core.Namespaces().List(ctx, metav1.ListOptions{LabelSelector: runLabel})
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot list the namespaces earlier runs left: %v\n", err)
		return
	}
	for _, ns := range nss.Items {
		if ns.DeletionTimestamp != nil || time.Since(ns.CreationTimestamp.Time) < leftoverAge {
			continue
		}
		err := core.Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			fmt.Fprintf(os.Stderr, "e2e: cannot delete namespace %s left by run %s: %v\n", ns.Name, ns.Labels[runLabel], err)
			continue
		}
		fmt.Fprintf(os.Stderr, "e2e: deleted namespace %s, left by run %s %s ago\n", ns.Name, ns.Labels[runLabel],
			time.Since(ns.CreationTimestamp.Time).Round(time.Minute))
	}
}

// cluster is the lab's cluster with the clients the cases use.
type cluster struct {
	*labkube.Cluster
	core  corev1client.CoreV1Interface
	batch batchv1client.BatchV1Interface
	apps  appsv1client.AppsV1Interface
	authn authnv1client.AuthenticationV1Interface
}

var clients struct {
	once sync.Once
	c    *cluster
	err  error
}

func requireCluster(t *testing.T) *cluster {
	t.Helper()
	lc := labkube.RequireKubernetes(t)
	clients.once.Do(func() {
		c := &cluster{Cluster: lc}
		if c.core, clients.err = corev1client.NewForConfig(lc.Config); clients.err != nil {
			return
		}
		if c.batch, clients.err = batchv1client.NewForConfig(lc.Config); clients.err != nil {
			return
		}
		if c.apps, clients.err = appsv1client.NewForConfig(lc.Config); clients.err != nil {
			return
		}
		if c.authn, clients.err = authnv1client.NewForConfig(lc.Config); clients.err != nil {
			return
		}
		clients.c = c
	})
	if clients.err != nil {
		t.Fatal(clients.err)
	}
	return clients.c
}

// env is one case on one backend: its own namespace, deleted when the case ends.
type env struct {
	t       *testing.T
	c       *cluster
	backend string
	ns      string
	ctx     context.Context
	// startTimeout bounds a pod's creation to Running or to a first container state, finishTimeout its
	// creation to Succeeded or Failed, on the case's backend.
	startTimeout, finishTimeout time.Duration
}

// forEachBackend runs f for each backend as parallel subtests of a parallel test, each in a namespace of its own.
// A panic in a case fails that case only: left to the testing package, it would end the whole process, and
// every other running case with it, before their cleanups delete their namespaces and pods.
func forEachBackend(t *testing.T, f func(e *env)) {
	t.Parallel()
	c := requireCluster(t)
	for _, b := range backends {
		t.Run(b, func(t *testing.T) {
			t.Parallel()
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("panic: %v\n%s", r, debug.Stack())
				}
			}()
			f(newEnv(t, c, b))
		})
	}
}

func newEnv(t *testing.T, c *cluster, backend string) *env {
	e := &env{t: t, c: c, backend: backend, ctx: t.Context(), startTimeout: baseStartTimeout, finishTimeout: baseFinishTimeout}
	switch backend {
	case "slurm":
		e.startTimeout += slurmQueueWait
		e.finishTimeout += slurmQueueWait
	case "kubernetes":
		e.startTimeout += kubernetesChainWait
		e.finishTimeout += kubernetesChainWait
	}
	e.ns = namespaceName(t.Name(), backend)
	ns := &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns, Labels: map[string]string{runLabel: runID}}}
	if _, err := c.core.Namespaces().Create(e.ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("cannot create namespace %s: %v", e.ns, err)
	}
	t.Cleanup(e.cleanup)
	// Pods are refused until the service account controller has made the namespace's default account.
	e.poll(30*time.Second, "the default service account of "+e.ns, func() (bool, string) {
		_, err := c.core.ServiceAccounts(e.ns).Get(e.ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	// The virtual kubelet reads the service-account volume's kube-root-ca.crt once, when the pod comes, and
	// never sends the create when it is missing; the controller manager publishes it into a new namespace
	// shortly after the namespace is made (CI saw a pod come first, and wait forever).
	e.poll(30*time.Second, "the kube-root-ca.crt ConfigMap of "+e.ns, func() (bool, string) {
		_, err := c.core.ConfigMaps(e.ns).Get(e.ctx, "kube-root-ca.crt", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	return e
}

var notDNS = regexp.MustCompile(`[^a-z0-9]+`)

// namespaceName is e2e-<case>-<backend>-<run>, a DNS label of at most 63 characters.
func namespaceName(testName, backend string) string {
	top, _, _ := strings.Cut(testName, "/")
	c := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(strings.TrimPrefix(top, "Test")), "-"), "-")
	if len(c) > 40 {
		c = strings.TrimRight(c[:40], "-")
	}
	return fmt.Sprintf("e2e-%s-%s-%s", c, backend, runID)
}

// cleanup deletes the namespace and waits, bounded, for it to be gone, which the namespace controller allows
// only once the virtual kubelet has deleted every pod in it. A failed case first logs what its pods and
// events looked like.
func (e *env) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), nsGoneTimeout+10*time.Second)
	defer cancel()
	if e.t.Failed() {
		e.dump(ctx)
	}
	err := e.c.core.Namespaces().Delete(ctx, e.ns, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		e.t.Errorf("cannot delete namespace %s: %v", e.ns, err)
		return
	}
	deadline := time.Now().Add(nsGoneTimeout)
	for time.Now().Before(deadline) {
		_, err := e.c.core.Namespaces().Get(ctx, e.ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(time.Second)
	}
	pods, _ := e.c.core.Pods(e.ns).List(ctx, metav1.ListOptions{})
	var left []string
	for _, p := range pods.Items {
		left = append(left, fmt.Sprintf("%s (%s)", p.Name, p.Status.Phase))
	}
	e.t.Errorf("namespace %s still there %s after its deletion; pods left: %v", e.ns, nsGoneTimeout, left)
}

// dump logs every pod of the namespace and its events.
func (e *env) dump(ctx context.Context) {
	pods, err := e.c.core.Pods(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Logf("cannot list the pods of %s: %v", e.ns, err)
		return
	}
	for i := range pods.Items {
		e.t.Logf("pod %s/%s: %s", e.ns, pods.Items[i].Name, describe(&pods.Items[i]))
	}
	evs, err := e.c.core.Events(e.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		e.t.Logf("cannot list the events of %s: %v", e.ns, err)
		return
	}
	for _, ev := range evs.Items {
		e.t.Logf("event %s %s/%s: %s %s: %s", ev.LastTimestamp.Format(time.TimeOnly), ev.InvolvedObject.Kind,
			ev.InvolvedObject.Name, ev.Type, ev.Reason, ev.Message)
	}
}

// small is what each container asks for: SLURM sizes the job by it (one CPU, 64 MiB), so that several pods'
// jobs fit on the lab's node at once.
var small = v1.ResourceRequirements{Requests: v1.ResourceList{
	v1.ResourceCPU:    resource.MustParse("100m"),
	v1.ResourceMemory: resource.MustParse("64Mi"),
}}

// sh is a container running script with the image's sh.
func sh(name, image, script string) v1.Container {
	return v1.Container{Name: name, Image: image, Command: []string{"sh", "-c", script},
		ImagePullPolicy: v1.PullIfNotPresent, Resources: *small.DeepCopy()}
}

// podSpec is the spec of a pod for the virtual node: its node selector and tolerations, restartPolicy Never
// and a short grace so that deleting it is quick.
func (e *env) podSpec(containers ...v1.Container) v1.PodSpec {
	grace := int64(2)
	return v1.PodSpec{
		RestartPolicy:                 v1.RestartPolicyNever,
		NodeSelector:                  map[string]string{labkube.NodeTypeLabel: labkube.NodeTypeValue, "kubernetes.io/hostname": e.c.Node},
		Tolerations:                   e.tolerations(),
		TerminationGracePeriodSeconds: &grace,
		Containers:                    containers,
	}
}

// tolerations lets a pod onto the virtual node (interLink's taint, and any other the node has of its own),
// and keeps it there through the 30 s windows in which the virtual kubelet's ping fails and the node is
// NotReady.
func (e *env) tolerations() []v1.Toleration {
	ts := []v1.Toleration{
		{Key: labkube.NodeTaint, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule},
		{Key: "node.kubernetes.io/not-ready", Operator: v1.TolerationOpExists},
		{Key: "node.kubernetes.io/unreachable", Operator: v1.TolerationOpExists},
	}
	for _, t := range e.c.Taints {
		if t.Key != labkube.NodeTaint {
			ts = append(ts, v1.Toleration{Key: t.Key, Operator: v1.TolerationOpExists, Effect: t.Effect})
		}
	}
	return ts
}

// objectMeta names an object of the case's namespace that goes to the case's backend.
func (e *env) objectMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: e.ns, Annotations: map[string]string{backendAnnotation: e.backend}}
}

func (e *env) pod(name string, containers ...v1.Container) *v1.Pod {
	return &v1.Pod{ObjectMeta: e.objectMeta(name), Spec: e.podSpec(containers...)}
}

func (e *env) create(p *v1.Pod) *v1.Pod {
	e.t.Helper()
	got, err := e.c.core.Pods(e.ns).Create(e.ctx, p, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatalf("cannot create pod %s: %v", p.Name, err)
	}
	return got
}

// waitPod watches the pod until done holds, and fails the case when it does not within timeout.
func (e *env) waitPod(name string, timeout time.Duration, what string, done func(*v1.Pod) bool) *v1.Pod {
	e.t.Helper()
	p, err := e.watchPod(name, timeout, done)
	if err != nil {
		e.t.Fatalf("pod %s: %s: %v; last seen: %s", name, what, err, describe(p))
	}
	return p
}

// watchPod is waitPod without failing: the last pod seen, and an error when done did not hold in time.
func (e *env) watchPod(name string, timeout time.Duration, done func(*v1.Pod) bool) (*v1.Pod, error) {
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	var last *v1.Pod
	for {
		p, err := e.c.core.Pods(e.ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = p
			if done(p) {
				return p, nil
			}
			w, err := e.c.core.Pods(e.ns).Watch(ctx, metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(), ResourceVersion: p.ResourceVersion})
			if err == nil {
				for ev := range w.ResultChan() {
					if q, ok := ev.Object.(*v1.Pod); ok {
						last = q
						if done(q) {
							w.Stop()
							return q, nil
						}
					}
				}
				w.Stop()
			}
		}
		if ctx.Err() != nil {
			return last, fmt.Errorf("not within %s", timeout)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// poll calls check every second until it holds, failing the case when it does not within timeout; check
// returns whether it holds and what it saw.
func (e *env) poll(timeout time.Duration, what string, check func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, saw := check()
		if ok {
			return
		}
		if time.Now().After(deadline) || e.ctx.Err() != nil {
			e.t.Fatalf("%s: not within %s; last seen: %s", what, timeout, saw)
		}
		time.Sleep(time.Second)
	}
}

func phaseIs(phases ...v1.PodPhase) func(*v1.Pod) bool {
	return func(p *v1.Pod) bool { return slices.Contains(phases, p.Status.Phase) }
}

func finished(p *v1.Pod) bool { return phaseIs(v1.PodSucceeded, v1.PodFailed)(p) }

// containerStatus returns the status of the named container or init container, nil when there is none.
func containerStatus(p *v1.Pod, name string) *v1.ContainerStatus {
	for _, list := range [][]v1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// running tells whether the named container runs. The pod's phase must say so too: the virtual kubelet
// shows every container running (since the pod's creation) the moment it takes a pod without init
// containers, before its create has even reached the dispatcher; only the phase comes from the backend.
func running(name string) func(*v1.Pod) bool {
	return func(p *v1.Pod) bool {
		cs := containerStatus(p, name)
		return p.Status.Phase == v1.PodRunning && cs != nil && cs.State.Running != nil
	}
}

func podCondition(p *v1.Pod, t v1.PodConditionType) v1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}

// describe is what kubectl describe shows of a pod's status, on a few lines.
func describe(p *v1.Pod) string {
	if p == nil {
		return "<never seen>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s reason=%q message=%q node=%q", p.Status.Phase, p.Status.Reason, p.Status.Message, p.Spec.NodeName)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " %s=%s", c.Type, c.Status)
	}
	for _, group := range []struct {
		kind string
		list []v1.ContainerStatus
	}{{"init", p.Status.InitContainerStatuses}, {"container", p.Status.ContainerStatuses}} {
		for _, cs := range group.list {
			fmt.Fprintf(&b, "\n    %s %s: %s ready=%v restarts=%d", group.kind, cs.Name, stateString(cs.State), cs.Ready, cs.RestartCount)
			if cs.LastTerminationState != (v1.ContainerState{}) {
				fmt.Fprintf(&b, " last=%s", stateString(cs.LastTerminationState))
			}
		}
	}
	return b.String()
}

func stateString(s v1.ContainerState) string {
	switch {
	case s.Waiting != nil:
		return fmt.Sprintf("waiting(%s: %s)", s.Waiting.Reason, s.Waiting.Message)
	case s.Running != nil:
		return "running(since " + s.Running.StartedAt.Format(time.TimeOnly) + ")"
	case s.Terminated != nil:
		return fmt.Sprintf("terminated(exit %d, %s: %s)", s.Terminated.ExitCode, s.Terminated.Reason, s.Terminated.Message)
	}
	return "no state"
}

// events returns the events about the named object, as kubectl describe lists them.
func (e *env) events(name string) []v1.Event {
	e.t.Helper()
	evs, err := e.c.core.Events(e.ns).List(e.ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String()})
	if err != nil {
		e.t.Fatalf("cannot list the events of %s: %v", name, err)
	}
	return evs.Items
}

func eventsString(evs []v1.Event) string {
	var s []string
	for _, ev := range evs {
		s = append(s, fmt.Sprintf("%s %s: %s", ev.Type, ev.Reason, ev.Message))
	}
	return "[" + strings.Join(s, "; ") + "]"
}

// waitEvent waits for an event about name with the given reason whose message contains text, and returns it.
func (e *env) waitEvent(name, reason, text string, timeout time.Duration) v1.Event {
	e.t.Helper()
	var found v1.Event
	e.poll(timeout, fmt.Sprintf("an event %s about %s saying %q", reason, name, text), func() (bool, string) {
		evs := e.events(name)
		for _, ev := range evs {
			if ev.Reason == reason && strings.Contains(ev.Message, text) {
				found = ev
				return true, ""
			}
		}
		return false, eventsString(evs)
	})
	return found
}

// logs is `kubectl logs` through the pods/log subresource: API server, virtual kubelet, interLink, dispatcher.
func (e *env) logs(pod string, opts v1.PodLogOptions) string {
	e.t.Helper()
	out, err := e.logsErr(pod, opts)
	if err != nil {
		e.t.Fatalf("kubectl logs %s %+v: %v", pod, opts, err)
	}
	return out
}

func (e *env) logsErr(pod string, opts v1.PodLogOptions) (string, error) {
	ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
	defer cancel()
	b, err := e.c.core.Pods(e.ns).GetLogs(pod, &opts).Do(ctx).Raw()
	return string(b), err
}

// waitLogs polls the logs until they contain text, and returns them.
func (e *env) waitLogs(pod, container, text string, timeout time.Duration) string {
	e.t.Helper()
	var out string
	e.poll(timeout, fmt.Sprintf("logs of %s/%s containing %q", pod, container, text), func() (bool, string) {
		var err error
		out, err = e.logsErr(pod, v1.PodLogOptions{Container: container})
		return err == nil && strings.Contains(out, text), fmt.Sprintf("%q (%v)", out, err)
	})
	return out
}

// logLine is one line of a followed log with when it arrived.
type logLine struct {
	text string
	at   time.Time
}

// follow is `kubectl logs -f`: it streams the container's log and sends each line as it arrives; the channel
// is closed when the stream ends, and end then holds why (nil for the end of the stream).
type follow struct {
	lines chan logLine
	end   error
}

func (e *env) follow(pod string, opts v1.PodLogOptions, timeout time.Duration) *follow {
	e.t.Helper()
	f, err := e.openFollow(pod, opts, timeout)
	if err != nil {
		e.t.Fatalf("kubectl logs -f %s: %v", pod, err)
	}
	return f
}

// openFollow is follow without failing the case when the stream cannot be opened.
func (e *env) openFollow(pod string, opts v1.PodLogOptions, timeout time.Duration) (*follow, error) {
	opts.Follow = true
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	rc, err := e.c.core.Pods(e.ns).GetLogs(pod, &opts).Stream(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	f := &follow{lines: make(chan logLine, 1024)}
	go func() {
		defer cancel()
		defer close(f.lines)
		defer rc.Close()
		r := bufio.NewReader(rc)
		for {
			line, err := r.ReadString('\n')
			if line != "" {
				select {
				case f.lines <- logLine{strings.TrimRight(line, "\n"), time.Now()}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					f.end = err
				}
				return
			}
		}
	}()
	return f, nil
}

// until reads the followed log until a line contains text, and returns the lines read so far.
func (f *follow) until(t *testing.T, text string, timeout time.Duration) []logLine {
	t.Helper()
	var got []logLine
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-f.lines:
			if !ok {
				t.Fatalf("the followed log ended (%v) before a line with %q; it had %q", f.end, text, texts(got))
			}
			got = append(got, l)
			if strings.Contains(l.text, text) {
				return got
			}
		case <-deadline:
			t.Fatalf("no line with %q in the followed log within %s; it had %q", text, timeout, texts(got))
		}
	}
}

// rest reads the followed log to its end, failing when it does not end within timeout.
func (f *follow) rest(t *testing.T, timeout time.Duration) []logLine {
	t.Helper()
	var got []logLine
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-f.lines:
			if !ok {
				if f.end != nil {
					t.Fatalf("the followed log broke: %v; it had %q", f.end, texts(got))
				}
				return got
			}
			got = append(got, l)
		case <-deadline:
			t.Fatalf("the followed log did not end within %s; it had %q", timeout, texts(got))
		}
	}
}

func texts(lines []logLine) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.text
	}
	return out
}

// keyValues reads the lines "key=value" a checking script prints.
func keyValues(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return m
}

// wantValues reports every key whose value differs from want.
func wantValues(t *testing.T, out string, want map[string]string) {
	t.Helper()
	got := keyValues(out)
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if got[k] != want[k] {
			t.Errorf("%s = %q, want %q", k, got[k], want[k])
		}
	}
	if t.Failed() {
		t.Logf("the pod printed:\n%s", out)
	}
}

func ptr[T any](v T) *T { return &v }
