package kubernetes

import (
	"context"
	"sort"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// Capacity is the allocatable of the remote nodes the pods may go to (those the node selector selects, Ready
// and schedulable), less the requests of the pods on them that have not finished; the extended resources
// (GPUs) likewise. Two requests to the remote API server: the nodes, and the unfinished pods.
func (b *Backend) Capacity(ctx context.Context) (backend.Capacity, error) {
	start := time.Now()
	nodes, err := b.cli.CoreV1().Nodes().List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(b.cfg.NodeSelector).String()})
	b.metrics.observe("list_nodes", start, err)
	if err != nil {
		return backend.Capacity{}, b.apiError(err, "cannot list the remote cluster's nodes")
	}
	free := map[v1.ResourceName]*resource.Quantity{}
	usable := map[string]bool{}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if n.Spec.Unschedulable || !nodeReady(n) || !b.tolerates(n) {
			continue
		}
		usable[n.Name] = true
		for r, q := range n.Status.Allocatable {
			if cur, ok := free[r]; ok {
				cur.Add(q)
			} else {
				c := q.DeepCopy()
				free[r] = &c
			}
		}
	}
	start = time.Now()
	pods, err := b.cli.CoreV1().Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: "status.phase!=Succeeded,status.phase!=Failed", ResourceVersion: "0"})
	b.metrics.observe("list_pods", start, err)
	if err != nil {
		return backend.Capacity{}, b.apiError(err, "cannot list the remote cluster's pods")
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if !usable[p.Spec.NodeName] {
			continue
		}
		for r, q := range podRequests(p) {
			if cur, ok := free[r]; ok {
				cur.Sub(q)
			}
		}
		if cur, ok := free[v1.ResourcePods]; ok {
			cur.Sub(resource.MustParse("1"))
		}
	}
	c := backend.Capacity{Accelerators: map[string]int64{}, Taints: append([]v1.Taint(nil), b.cfg.Taints...)}
	var ext []string
	for r, q := range free {
		switch {
		case r == v1.ResourceCPU:
			c.CPUMilli = positive(q.MilliValue())
		case r == v1.ResourceMemory:
			c.MemoryBytes = positive(q.Value())
		case r == v1.ResourcePods:
			c.Pods = positive(q.Value())
		case r == v1.ResourceEphemeralStorage, strings.HasPrefix(string(r), v1.ResourceHugePagesPrefix):
		default:
			ext = append(ext, string(r))
			n := q.Value()
			if n < 0 {
				n = 0
			}
			c.Accelerators[string(r)] = n
		}
	}
	sort.Strings(ext)
	b.mu.Lock()
	b.extended = ext
	b.mu.Unlock()
	return c, nil
}

// positive is v, or nil (left out of the ping) when nothing is left: interLink reads a missing figure as
// unknown, and a full remote cluster keeps the pod Pending with its own scheduler's reason.
func positive(v int64) *int64 {
	if v <= 0 {
		return nil
	}
	return &v
}

// tolerates tells whether the config's tolerations let pods onto node n (its NoSchedule and NoExecute taints).
func (b *Backend) tolerates(n *v1.Node) bool {
	for i := range n.Spec.Taints {
		t := &n.Spec.Taints[i]
		if t.Effect == v1.TaintEffectPreferNoSchedule || strings.HasPrefix(t.Key, "node.kubernetes.io/") {
			continue
		}
		ok := false
		for j := range b.cfg.Tolerations {
			if tolerates(&b.cfg.Tolerations[j], t) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func nodeReady(n *v1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == v1.NodeReady {
			return c.Status == v1.ConditionTrue
		}
	}
	return false
}

// podRequests is what a pod holds on its node, as the scheduler counts it: the larger of its containers'
// requests summed and its largest init container's, plus its overhead.
func podRequests(p *v1.Pod) v1.ResourceList {
	sum := v1.ResourceList{}
	for _, c := range p.Spec.Containers {
		addList(sum, c.Resources.Requests)
	}
	for _, c := range p.Spec.InitContainers {
		for r, q := range c.Resources.Requests {
			if cur, ok := sum[r]; !ok || q.Cmp(cur) > 0 {
				sum[r] = q.DeepCopy()
			}
		}
	}
	addList(sum, p.Spec.Overhead)
	return sum
}

func addList(into, l v1.ResourceList) {
	for r, q := range l {
		cur := into[r]
		cur.Add(q)
		into[r] = cur
	}
}

// tolerates is Kubernetes's rule for one toleration and one taint (without the alpha comparison operators).
func tolerates(tol *v1.Toleration, t *v1.Taint) bool {
	if tol.Effect != "" && tol.Effect != t.Effect {
		return false
	}
	if tol.Key != "" && tol.Key != t.Key {
		return false
	}
	switch tol.Operator {
	case v1.TolerationOpExists:
		return true
	case "", v1.TolerationOpEqual:
		return tol.Key != "" && tol.Value == t.Value
	}
	return false
}
