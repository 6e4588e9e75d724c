package kubernetes

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/interlink-hq/interlink-dispatcher/shared/settings"
)

// Config is the backend's own section of the dispatcher config (backend.Env.Config), as JSON. Every key is
// optional; keys are read strictly by shared/settings (an unknown key is refused, naming it).
type Config struct {
	// Kubeconfig is the path of the kubeconfig that reaches the remote cluster (its current context). Empty:
	// in-cluster (the service account of the pod the dispatcher runs in), else $KUBECONFIG.
	Kubeconfig string `json:"kubeconfig"`
	// Context names a context of the kubeconfig other than its current one.
	Context string `json:"context"`
	// Namespace is the remote namespace every pod goes to. Default: the kubeconfig context's namespace, else
	// "default".
	Namespace string `json:"namespace"`
	// NamespaceMap maps a local namespace to a remote one; a local namespace it does not name goes to
	// Namespace.
	NamespaceMap map[string]string `json:"namespace_map"`
	// NodeSelector is added to every remote pod (and selects the remote nodes Capacity counts).
	NodeSelector map[string]string `json:"node_selector"`
	// Tolerations are added to every remote pod.
	Tolerations []v1.Toleration `json:"tolerations"`
	// PriorityClass is the priorityClassName of every remote pod.
	PriorityClass string `json:"priority_class"`
	// Labels and Annotations are added to every remote pod and object (a remote dispatcher's routing
	// annotation, a cost centre); the backend's own labels win over them.
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// Taints are the taints Capacity reports for the virtual node (default none).
	Taints []v1.Taint `json:"taints"`
	// QPS and Burst bound the requests to the remote API server (defaults 50 and 100).
	QPS   float32 `json:"qps"`
	Burst int     `json:"burst"`
}

// ParseConfig reads raw (empty means all defaults) as the section of backend name and checks it. Every
// problem is reported at once, as settings.Problems naming each key path; warnings name the new spelling of
// each old key used.
func ParseConfig(name string, raw []byte) (Config, []string, error) {
	var c Config
	prefix := settings.Prefix(name)
	warnings, err := settings.Decode(raw, prefix, &c)
	var ps settings.Problems
	if err != nil && !errors.As(err, &ps) {
		return c, warnings, err
	}
	if c.Namespace != "" {
		if errs := validation.IsDNS1123Label(c.Namespace); len(errs) > 0 {
			ps.Add(prefix, "namespace", "%q is not a namespace name: %s", c.Namespace, strings.Join(errs, "; "))
		}
	}
	for _, local := range sortedKeys(c.NamespaceMap) {
		remote := c.NamespaceMap[local]
		if errs := validation.IsDNS1123Label(remote); len(errs) > 0 {
			ps.Add(prefix, "namespace_map."+local, "%q is not a namespace name: %s", remote, strings.Join(errs, "; "))
		}
	}
	for _, k := range sortedKeys(c.NodeSelector) {
		checkLabel(&ps, prefix, "node_selector", k, c.NodeSelector[k])
	}
	for _, k := range sortedKeys(c.Labels) {
		if strings.HasPrefix(k, labelPrefix) {
			ps.Add(prefix, "labels."+k, "the prefix %s is the backend's own", labelPrefix)
			continue
		}
		checkLabel(&ps, prefix, "labels", k, c.Labels[k])
	}
	for _, k := range sortedKeys(c.Annotations) {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			ps.Add(prefix, "annotations."+k, "is not an annotation name: %s", strings.Join(errs, "; "))
		}
	}
	for i, t := range c.Tolerations {
		switch t.Operator {
		case "", v1.TolerationOpEqual, v1.TolerationOpExists:
		default:
			ps.Add(prefix, fmt.Sprintf("tolerations[%d].operator", i), "must be Equal or Exists, not %q", t.Operator)
		}
	}
	for i, t := range c.Taints {
		if t.Key == "" {
			ps.Add(prefix, fmt.Sprintf("taints[%d].key", i), "is missing: a taint needs a key")
		}
		switch t.Effect {
		case v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute:
		default:
			ps.Add(prefix, fmt.Sprintf("taints[%d].effect", i), "must be NoSchedule, PreferNoSchedule or NoExecute, not %q", t.Effect)
		}
	}
	if c.PriorityClass != "" {
		if errs := validation.IsDNS1123Subdomain(c.PriorityClass); len(errs) > 0 {
			ps.Add(prefix, "priority_class", "%q is not a name: %s", c.PriorityClass, strings.Join(errs, "; "))
		}
	}
	if c.QPS < 0 {
		ps.Add(prefix, "qps", "must not be negative, not %v", c.QPS)
	}
	if c.Burst < 0 {
		ps.Add(prefix, "burst", "must not be negative, not %d", c.Burst)
	}
	if c.QPS == 0 {
		c.QPS = 50
	}
	if c.Burst == 0 {
		c.Burst = 100
	}
	return c, warnings, ps.Err()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func checkLabel(ps *settings.Problems, prefix, key, k, v string) {
	if errs := validation.IsQualifiedName(k); len(errs) > 0 {
		ps.Add(prefix, key+"."+k, "is not a label name: %s", strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
		ps.Add(prefix, key+"."+k, "%q is not a label value: %s", v, strings.Join(errs, "; "))
	}
}

// remoteNamespace is where the pod of local namespace ns goes.
func (c *Config) remoteNamespace(ns string) string {
	if r, ok := c.NamespaceMap[ns]; ok {
		return r
	}
	return c.Namespace
}
