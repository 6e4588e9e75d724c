package labkube

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// These tests prove the lab's remote cluster (lab.sh kubeconfig remote): a pod scheduled on its virtual node
// really runs, through its own interLink and the dispatcher instance lab-remote, in the lab's Docker Engine,
// and its log comes back through the remote API server.

func TestRemoteClusterRunsAPod(t *testing.T) {
	c := RequireRemote(t)
	labtest.RequireDocker(t)
	if os.Getenv(RemoteKubeconfigEnv) == "" && c.Node != RemoteNode {
		t.Fatalf("the remote cluster's virtual node is %s, want %s", c.Node, RemoteNode)
	}
	core, err := corev1client.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	name := fmt.Sprintf("labkube-remote-%d", time.Now().UnixNano()%1e9)
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: v1.PodSpec{
			RestartPolicy: v1.RestartPolicyNever,
			NodeSelector:  map[string]string{NodeTypeLabel: NodeTypeValue, "kubernetes.io/hostname": c.Node},
			Tolerations:   tolerations(c),
			Containers: []v1.Container{{
				Name: "main", Image: labtest.BusyboxImage, ImagePullPolicy: v1.PullIfNotPresent,
				Command: []string{"sh", "-c", "echo remote-$((6*7))"},
			}},
		},
	}
	created, err := core.Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s on the remote cluster: %v", name, err)
	}
	t.Cleanup(func() {
		zero := int64(0)
		_ = core.Pods(p.Namespace).Delete(context.Background(), name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
	got := waitFinished(ctx, t, core, p.Namespace, name)
	if got.Status.Phase != v1.PodSucceeded {
		t.Fatalf("pod %s ended %s, want Succeeded: %s", name, got.Status.Phase, describe(got))
	}
	if got.Spec.NodeName != c.Node {
		t.Fatalf("pod %s ran on node %q, want the remote virtual node %s", name, got.Spec.NodeName, c.Node)
	}
	// The API server fetches the log from the virtual kubelet, which asks interLink, which asks the dispatcher.
	raw, err := core.Pods(p.Namespace).GetLogs(name, &v1.PodLogOptions{Container: "main"}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("reading the log of %s through the remote API server: %v", name, err)
	}
	if log := strings.TrimSpace(string(raw)); log != "remote-42" {
		t.Fatalf("the log of %s is %q, want remote-42", name, log)
	}
	if os.Getenv(RemoteKubeconfigEnv) == "" {
		requireRemoteContainers(ctx, t, string(created.UID))
	}
}

// requireRemoteContainers fails unless the pod's containers in the lab's Docker Engine carry the remote
// dispatcher's instance label: the pod went through the remote cluster's own chain, not the main one's.
func requireRemoteContainers(ctx context.Context, t *testing.T, uid string) {
	t.Helper()
	dc, err := client.NewClientWithOpts(client.WithHost("unix://"+labtest.DockerSocket), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	list, err := dc.ContainerList(ctx, container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", pod.LabelPodUID+"="+uid))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 {
		t.Fatalf("the Docker Engine has no container labelled %s=%s", pod.LabelPodUID, uid)
	}
	for _, ct := range list {
		if got := ct.Labels[pod.LabelInstance]; got != RemoteInstance {
			t.Fatalf("container %s of pod %s has %s=%q, want %s", ct.Names, uid, pod.LabelInstance, got, RemoteInstance)
		}
	}
}

// TestRemoteClusterHasItsOwnCA: the remote cluster's admin credentials are refused by the main cluster's API
// server (and the other way round), so that a backend or test given the wrong kubeconfig fails at once.
func TestRemoteClusterHasItsOwnCA(t *testing.T) {
	remote := RequireRemote(t)
	main := RequireKubernetes(t)
	if remote.Config.Host == main.Config.Host {
		t.Fatalf("the remote and the main cluster have the same API server %s", main.Config.Host)
	}
	for _, k := range []struct{ from, to *Cluster }{{remote, main}, {main, remote}} {
		cfg := rest.CopyConfig(k.from.Config)
		cfg.Host = k.to.Config.Host
		core, err := corev1client.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = core.Namespaces().Get(ctx, "default", metav1.GetOptions{})
		cancel()
		if err == nil {
			t.Fatalf("the credentials of %s were accepted by %s", k.from.Kubeconfig, k.to.Config.Host)
		}
		// Our client does not trust the other cluster's serving certificate: refused before any credential is sent.
		if !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("the credentials of %s at %s: %v, want a certificate error", k.from.Kubeconfig, k.to.Config.Host, err)
		}
	}
}

func tolerations(c *Cluster) []v1.Toleration {
	ts := []v1.Toleration{
		{Key: NodeTaint, Operator: v1.TolerationOpExists, Effect: v1.TaintEffectNoSchedule},
		// The virtual kubelet's ping sometimes fails once and the node is NotReady for one 30 s window.
		{Key: "node.kubernetes.io/not-ready", Operator: v1.TolerationOpExists},
		{Key: "node.kubernetes.io/unreachable", Operator: v1.TolerationOpExists},
	}
	for _, taint := range c.Taints {
		ts = append(ts, v1.Toleration{Key: taint.Key, Operator: v1.TolerationOpExists, Effect: taint.Effect})
	}
	return ts
}

// waitFinished polls the pod until it is Succeeded or Failed, failing the test when ctx ends first.
func waitFinished(ctx context.Context, t *testing.T, core corev1client.CoreV1Interface, ns, name string) *v1.Pod {
	t.Helper()
	var last *v1.Pod
	for {
		p, err := core.Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			last = p
			if p.Status.Phase == v1.PodSucceeded || p.Status.Phase == v1.PodFailed {
				return p
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				t.Fatalf("pod %s/%s: %v", ns, name, err)
			}
			t.Fatalf("pod %s/%s did not finish: %s", ns, name, describe(last))
		case <-time.After(time.Second):
		}
	}
}

func describe(p *v1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s reason %q message %q node %q", p.Status.Phase, p.Status.Reason, p.Status.Message, p.Spec.NodeName)
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			fmt.Fprintf(&b, "; %s waiting %s: %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)
		case cs.State.Terminated != nil:
			fmt.Fprintf(&b, "; %s terminated %d %s: %s", cs.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Reason, cs.State.Terminated.Message)
		case cs.State.Running != nil:
			fmt.Fprintf(&b, "; %s running", cs.Name)
		}
	}
	return b.String()
}
