//go:build bench

package faults

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest/labkube"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// The Kubernetes backend in `make bench` (BENCH_BACKENDS=kubernetes): the dispatcher offloads each pod to a
// remote cluster, the lab's second one (lab.sh kubeconfig remote: its virtual node runs the pods on a second
// dispatcher's Docker), or the lab's own when there is no second one; BENCH_KUBECONFIG names another. The raw
// engine is that cluster's API server: a pod created there and waited for until Running, deleted and waited
// for until gone, listed by label. The poll loop's figure is the backend's own count of requests to the
// remote API server (interlink_backend_kubernetes_api_requests_total): its status answers from a watch.

// remoteKubeconfig is the lab's second cluster's admin kubeconfig (deploy/lab/kube.sh).
const remoteKubeconfig = "/var/lib/interlink-lab/remote/kube/admin.kubeconfig"

// kubeKind is not among allKinds: the fault tests do not run on it, only the benchmark.
var kubeKind = kind{"kubernetes", func(tb testing.TB) { benchCluster(tb) }, nil}

// benchCluster is the remote cluster of the benchmark: its kubeconfig and a client, failing (CI) or skipping
// the benchmark when none answers.
func benchCluster(tb testing.TB) (string, kubernetes.Interface) {
	tb.Helper()
	path := os.Getenv("BENCH_KUBECONFIG")
	if path == "" {
		if _, err := os.Stat(remoteKubeconfig); err == nil {
			path = remoteKubeconfig
		} else {
			path = labkube.RequireKubernetes(tb).Kubeconfig
		}
	}
	rc, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		tb.Fatalf("kubeconfig %s: %v", path, err)
	}
	rc.QPS, rc.Burst = 100, 200
	cli, err := kubernetes.NewForConfig(rc)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := cli.Discovery().ServerVersion(); err != nil {
		// A benchmark asked for (BENCH_BACKENDS names it) whose cluster does not answer fails.
		tb.Fatalf("the benchmark's remote cluster (%s) does not answer: %v", path, err)
	}
	return path, cli
}

// withRemoteNamespace is k (kubernetes) with a namespace of its own on the remote cluster, made now and
// deleted, with every pod in it, when the benchmark ends; other kinds as they are.
func withRemoteNamespace(tb testing.TB, k kind) kind {
	if k.name != kubeKind.name {
		return k
	}
	path, cli := benchCluster(tb)
	ns := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := cli.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("cannot create the benchmark's remote namespace %s: %v", ns, err)
	}
	tb.Cleanup(func() { deleteNamespace(tb, cli, ns) })
	k.config = map[string]any{"kubeconfig": path, "namespace": ns, "qps": 200, "burst": 400,
		"node_selector": map[string]string{labkube.NodeTypeLabel: labkube.NodeTypeValue},
		"tolerations":   []v1.Toleration{{Key: labkube.NodeTaint, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}}}
	return k
}

// deleteNamespace deletes the remote namespace and waits, bounded, until it is gone: the remote virtual
// kubelet deletes its pods on the dispatcher behind it first.
func deleteNamespace(tb testing.TB, cli kubernetes.Interface, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := cli.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		tb.Logf("cannot delete the remote namespace %s: %v", ns, err)
		return
	}
	for ctx.Err() == nil {
		if _, err := cli.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			return
		}
		time.Sleep(time.Second)
	}
	tb.Logf("the remote namespace %s is still there 5 minutes after its deletion", ns)
}

// kubeRaw is the raw engine of the kubernetes kind: the remote API server.
type kubeRaw struct {
	cli kubernetes.Interface
	ns  string
}

func newKubeRaw(tb testing.TB, k kind) *kubeRaw {
	_, cli := benchCluster(tb)
	return &kubeRaw{cli: cli, ns: k.config["namespace"].(string)}
}

func (r *kubeRaw) name(instance string, i int) string { return fmt.Sprintf("%s-%d", instance, i) }

// create makes pod i as the backend makes a remote pod (busybox running sleep, on the virtual node) and
// waits until the remote cluster reports it Running, as the benchmark waits for the backend's pods.
func (r *kubeRaw) create(instance string, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	grace := int64(1)
	p := &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: r.name(instance, i), Namespace: r.ns,
		Labels: map[string]string{pod.LabelInstance: instance}},
		Spec: v1.PodSpec{RestartPolicy: v1.RestartPolicyNever, TerminationGracePeriodSeconds: &grace,
			AutomountServiceAccountToken: new(bool), EnableServiceLinks: new(bool),
			NodeSelector: map[string]string{labkube.NodeTypeLabel: labkube.NodeTypeValue},
			Tolerations:  []v1.Toleration{{Key: labkube.NodeTaint, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule}},
			Containers: []v1.Container{{Name: "main", Image: labtest.BusyboxImage, Command: []string{"sh", "-c", "sleep 3600"},
				ImagePullPolicy: v1.PullIfNotPresent}}}}
	if _, err := r.cli.CoreV1().Pods(r.ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		return err
	}
	for {
		got, err := r.cli.CoreV1().Pods(r.ns).Get(ctx, p.Name, metav1.GetOptions{})
		if err == nil && got.Status.Phase == v1.PodRunning {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("remote pod %s not Running within 10 minutes: %v", p.Name, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// remove deletes pod i with a grace period of one second and waits until it is gone, as the backend's
// Delete does.
func (r *kubeRaw) remove(instance string, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	grace := int64(1)
	name := r.name(instance, i)
	if err := r.cli.CoreV1().Pods(r.ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		return err
	}
	for {
		_, err := r.cli.CoreV1().Pods(r.ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("remote pod %s still there 5 minutes after its deletion", name)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// list is one list of the instance's remote pods by label.
func (r *kubeRaw) list(instance string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := r.cli.CoreV1().Pods(r.ns).List(ctx, metav1.ListOptions{LabelSelector: pod.LabelInstance + "=" + instance})
	return err
}

// kubeStatusSources says how the backend answered the statuses between two scrapes: from its watch, by a
// GET, or absent, and how many requests it sent the remote API server meanwhile.
func kubeStatusSources(before, after map[string]*dto.MetricFamily, name string) string {
	diff := func(family string, labels ...string) float64 {
		c0, _, _ := total(before, family, labels...)
		c1, _, _ := total(after, family, labels...)
		return c1 - c0
	}
	watch := diff("interlink_backend_kubernetes_pod_statuses_total", "backend="+name, "source=watch")
	get := diff("interlink_backend_kubernetes_pod_statuses_total", "backend="+name, "source=get")
	absent := diff("interlink_backend_kubernetes_pod_statuses_total", "backend="+name, "source=absent")
	reqs := diff("interlink_backend_kubernetes_api_requests_total", "backend="+name)
	byCall := []string{}
	if f := after["interlink_backend_kubernetes_api_request_duration_seconds"]; f != nil {
		calls := map[string]bool{}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "call" {
					calls[l.GetValue()] = true
				}
			}
		}
		for _, c := range sortedKeys(calls) {
			if n := diff("interlink_backend_kubernetes_api_request_duration_seconds", "backend="+name, "call="+c); n > 0 {
				byCall = append(byCall, fmt.Sprintf("%s %.0f", c, n))
			}
		}
	}
	statuses := watch + get + absent
	return fmt.Sprintf("statuses answered %.0f: from the watch %.0f, by a GET %.0f, absent %.0f; remote API requests meanwhile %.0f (%s) = %.4f per status",
		statuses, watch, get, absent, reqs, strings.Join(byCall, ", "), reqs/max(statuses, 1))
}

func sortedKeys(m map[string]bool) []string {
	return slices.Sorted(maps.Keys(m))
}
