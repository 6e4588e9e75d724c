// Package labkube lets end-to-end tests require the lab's Kubernetes clusters (deploy/lab/lab.sh): the main one,
// a control plane on loopback and interLink's virtual kubelet in front of the lab's dispatcher, and the remote
// one, the same chain on other ports in front of a Docker-only dispatcher (the cluster the Kubernetes backend
// offloads to). As with labtest's Require* helpers, under CI=true a missing cluster or virtual node fails the
// test; elsewhere it is skipped. It is its own package so that the many tests that use labtest do not link
// client-go.
package labkube

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// What interLink's virtual kubelet puts on its node, and what a pod needs to land there.
const (
	NodeTypeLabel = "virtual-node.interlink/type"
	NodeTypeValue = "virtual-kubelet"
	NodeTaint     = "virtual-node.interlink/no-schedule"
)

// KubeconfigEnv names the environment variable that, when set, gives the kubeconfig instead of asking the lab.
const KubeconfigEnv = "INTERLINK_LAB_KUBECONFIG"

// RemoteKubeconfigEnv names the environment variable that, when set, gives the remote cluster's kubeconfig
// instead of asking the lab (`lab.sh kubeconfig remote`).
const RemoteKubeconfigEnv = "INTERLINK_LAB_REMOTE_KUBECONFIG"

// RemoteNode is the name of the remote cluster's virtual node.
const RemoteNode = "interlink-remote"

// RemoteInstance is the dispatcher instance behind the remote cluster's virtual node: the Docker backend labels
// the containers of the remote cluster's pods with it.
const RemoteInstance = "lab-remote"

// NodeEnv names the environment variable that, when set, names the virtual node to use where a cluster has
// several (one per dispatcher); unset, the first Ready node with interLink's label is used.
const NodeEnv = "INTERLINK_LAB_NODE"

// readyWait bounds how long a virtual node that exists but is NotReady is waited for: the virtual kubelet's
// ping sometimes fails once and the node is NotReady for one 30 s window.
const readyWait = 75 * time.Second

// Cluster is the lab's cluster as a test reaches it.
type Cluster struct {
	Kubeconfig string       // path of the admin kubeconfig
	Config     *rest.Config // built from it
	Node       string       // name of the virtual node, found by its label
	// Taints are the virtual node's own NoSchedule taints (interLink's, and any its config adds), which a
	// pod must tolerate to be scheduled there.
	Taints []v1.Taint
}

// lookup is a cluster found once per test process.
type lookup struct {
	once    sync.Once
	cluster *Cluster
	err     error
}

var found, foundRemote lookup

// RequireKubernetes requires the lab's cluster with its virtual node Ready, found once per test process.
func RequireKubernetes(t testing.TB) *Cluster {
	t.Helper()
	return found.require(t, "Kubernetes cluster", "", KubeconfigPath, os.Getenv(NodeEnv))
}

// RequireRemote requires the lab's remote cluster (the other cluster of the Kubernetes backend) with its
// virtual node Ready, found once per test process.
func RequireRemote(t testing.TB) *Cluster {
	t.Helper()
	return foundRemote.require(t, "remote Kubernetes cluster", "remote-", RemoteKubeconfigPath, "")
}

// require finds the cluster of the kubeconfig kubeconfig returns (with its virtual node named node, if not
// empty) once, and fails the test under CI=true when it is not usable (with the lab's status lines, named with
// prefix, of its API server and node), else skips it.
func (l *lookup) require(t testing.TB, what, prefix string, kubeconfig func() (string, error), node string) *Cluster {
	t.Helper()
	l.once.Do(func() {
		var path string
		if path, l.err = kubeconfig(); l.err == nil {
			l.cluster, l.err = find(path, node)
		}
	})
	if l.err == nil {
		return l.cluster
	}
	if labtest.InCI() {
		t.Fatalf("the lab's %s is required under CI=true and is not usable: %v\nlab status: %s; %s",
			what, l.err, labtest.StatusLine(prefix+"apiserver"), labtest.StatusLine(prefix+"node"))
	}
	t.Skipf("the lab's %s is not usable (%v); start the lab with `bash deploy/lab/lab.sh up` (as root) to run this test", what, l.err)
	return nil
}

// KubeconfigPath returns the path of the lab's admin kubeconfig: $INTERLINK_LAB_KUBECONFIG when set, else what
// `deploy/lab/lab.sh kubeconfig` prints (it fails when the lab has no cluster).
func KubeconfigPath() (string, error) { return kubeconfigPath(KubeconfigEnv) }

// RemoteKubeconfigPath returns the path of the lab's remote cluster's admin kubeconfig:
// $INTERLINK_LAB_REMOTE_KUBECONFIG when set, else what `deploy/lab/lab.sh kubeconfig remote` prints
// ($LAB_STATE/remote/kube/admin.kubeconfig; it fails when the lab has no remote cluster).
func RemoteKubeconfigPath() (string, error) { return kubeconfigPath(RemoteKubeconfigEnv, "remote") }

func kubeconfigPath(env string, args ...string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s names %s: %w", env, p, err)
		}
		return p, nil
	}
	script := filepath.Join(labtest.RepoRoot(), "deploy", "lab", "lab.sh")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script, "kubeconfig"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("`%s` failed: %v: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	p := strings.TrimSpace(lines[len(lines)-1])
	if p == "" {
		return "", fmt.Errorf("`%s` printed no path", strings.Join(cmd.Args, " "))
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("`%s` printed %s: %w", strings.Join(cmd.Args, " "), p, err)
	}
	return p, nil
}

// find builds the cluster of the kubeconfig at path, with its Ready virtual node (the one named node, if not
// empty).
func find(path, node string) (*Cluster, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	// The suite runs many pods at once; client-go's default of 5 requests a second would throttle it.
	cfg.QPS, cfg.Burst = 100, 200
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	n, err := readyVirtualNode(core, node)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Kubeconfig: path, Config: cfg, Node: n.Name}
	for _, t := range n.Spec.Taints {
		// The node lifecycle controller's taints come and go with the node's conditions.
		if t.Effect == v1.TaintEffectNoSchedule && !strings.HasPrefix(t.Key, "node.kubernetes.io/") {
			c.Taints = append(c.Taints, t)
		}
	}
	return c, nil
}

// readyVirtualNode returns the node labelled as interLink's virtual kubelet (the one named name, if not
// empty) once it is Ready.
func readyVirtualNode(core corev1client.CoreV1Interface, name string) (*v1.Node, error) {
	ctx, cancel := context.WithTimeout(context.Background(), readyWait)
	defer cancel()
	selector := NodeTypeLabel + "=" + NodeTypeValue
	var last error
	for {
		nodes, err := core.Nodes().List(ctx, metav1.ListOptions{LabelSelector: selector})
		switch {
		case err != nil:
			// An API server that does not answer is down, not about to be Ready: say so at once.
			return nil, fmt.Errorf("cannot list the nodes: %w", err)
		}
		var candidates []*v1.Node
		for i := range nodes.Items {
			if name == "" || nodes.Items[i].Name == name {
				candidates = append(candidates, &nodes.Items[i])
			}
		}
		if len(candidates) == 0 {
			if name != "" {
				return nil, fmt.Errorf("no node named %s (%s) has the label %s", name, NodeEnv, selector)
			}
			return nil, fmt.Errorf("no node has the label %s", selector)
		}
		for _, n := range candidates {
			if ready(n) {
				return n, nil
			}
		}
		last = fmt.Errorf("the virtual node %s is not Ready: %s", candidates[0].Name, readyCondition(candidates[0]))
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%v (waited %s)", last, readyWait)
		case <-time.After(2 * time.Second):
		}
	}
}

func ready(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

func readyCondition(n *v1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
		}
	}
	return "no Ready condition"
}

// DispatcherSocketEnv names the environment variable that, when set, gives the socket of the dispatcher
// behind the lab's interLink instead of the lab's own ($LAB_STATE/dispatcher/api.sock).
const DispatcherSocketEnv = "INTERLINK_LAB_DISPATCHER_SOCKET"

// DispatcherSocket is the unix socket of the dispatcher the lab's interLink API server talks to, for tests
// that compare what the dispatcher answered with what Kubernetes shows.
func DispatcherSocket() string {
	if p := os.Getenv(DispatcherSocketEnv); p != "" {
		return p
	}
	state := os.Getenv("LAB_STATE")
	if state == "" {
		state = "/var/lib/interlink-lab"
	}
	return filepath.Join(state, "dispatcher", "api.sock")
}
