package kubernetes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Config is the backend's own section of the dispatcher config (backend.Env.Config), as JSON. Every key is
// optional but one of namespace / namespace_map; unknown keys are refused so that a typo does not pass
// silently.
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

// ParseConfig reads raw (empty means all defaults) and checks it.
func ParseConfig(raw []byte) (Config, error) {
	var c Config
	if t := bytes.TrimSpace(raw); len(t) > 0 && string(t) != "null" {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return c, fmt.Errorf("the kubernetes backend's config is invalid: %v", err)
		}
	}
	if c.Namespace != "" {
		if errs := validation.IsDNS1123Label(c.Namespace); len(errs) > 0 {
			return c, fmt.Errorf("config key namespace %q is not a namespace name: %s", c.Namespace, strings.Join(errs, "; "))
		}
	}
	for local, remote := range c.NamespaceMap {
		if errs := validation.IsDNS1123Label(remote); len(errs) > 0 {
			return c, fmt.Errorf("config key namespace_map.%s: %q is not a namespace name: %s", local, remote, strings.Join(errs, "; "))
		}
	}
	for k, v := range c.NodeSelector {
		if err := checkLabel("node_selector", k, v); err != nil {
			return c, err
		}
	}
	for k, v := range c.Labels {
		if strings.HasPrefix(k, labelPrefix) {
			return c, fmt.Errorf("config key labels.%s: the prefix %s is the backend's own", k, labelPrefix)
		}
		if err := checkLabel("labels", k, v); err != nil {
			return c, err
		}
	}
	for k := range c.Annotations {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return c, fmt.Errorf("config key annotations.%s is not an annotation name: %s", k, strings.Join(errs, "; "))
		}
	}
	for i, t := range c.Tolerations {
		switch t.Operator {
		case "", v1.TolerationOpEqual, v1.TolerationOpExists:
		default:
			return c, fmt.Errorf("config key tolerations[%d].operator must be Equal or Exists, not %q", i, t.Operator)
		}
	}
	for i, t := range c.Taints {
		if t.Key == "" {
			return c, fmt.Errorf("config key taints[%d] has no key", i)
		}
		switch t.Effect {
		case v1.TaintEffectNoSchedule, v1.TaintEffectPreferNoSchedule, v1.TaintEffectNoExecute:
		default:
			return c, fmt.Errorf("config key taints[%d].effect must be NoSchedule, PreferNoSchedule or NoExecute, not %q", i, t.Effect)
		}
	}
	if c.PriorityClass != "" {
		if errs := validation.IsDNS1123Subdomain(c.PriorityClass); len(errs) > 0 {
			return c, fmt.Errorf("config key priority_class %q is not a name: %s", c.PriorityClass, strings.Join(errs, "; "))
		}
	}
	if c.QPS < 0 || c.Burst < 0 {
		return c, fmt.Errorf("config keys qps and burst must not be negative")
	}
	if c.QPS == 0 {
		c.QPS = 50
	}
	if c.Burst == 0 {
		c.Burst = 100
	}
	return c, nil
}

func checkLabel(key, k, v string) error {
	if errs := validation.IsQualifiedName(k); len(errs) > 0 {
		return fmt.Errorf("config key %s.%s is not a label name: %s", key, k, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
		return fmt.Errorf("config key %s.%s: %q is not a label value: %s", key, k, v, strings.Join(errs, "; "))
	}
	return nil
}

// remoteNamespace is where the pod of local namespace ns goes.
func (c *Config) remoteNamespace(ns string) string {
	if r, ok := c.NamespaceMap[ns]; ok {
		return r
	}
	return c.Namespace
}
