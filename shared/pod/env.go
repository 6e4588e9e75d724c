package pod

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"

	v1 "k8s.io/api/core/v1"
)

// ResolveEnv returns the environment of container c of pod p, in Kubernetes order (envFrom first, then env),
// each name once with its last value: plain values with $(VAR) references to earlier variables expanded,
// valueFrom.fieldRef and resourceFieldRef computed from the pod, and configMapKeyRef / secretKeyRef read
// from objs when interLink left them unresolved. A missing non-optional key is an error naming it.
func ResolveEnv(p *v1.Pod, c *v1.Container, objs *Objects) ([]v1.EnvVar, error) {
	var (
		out   []v1.EnvVar
		index = map[string]int{}
	)
	set := func(name, value string) {
		if i, ok := index[name]; ok {
			out[i].Value = value
			return
		}
		index[name] = len(out)
		out = append(out, v1.EnvVar{Name: name, Value: value})
	}
	lookup := func(name string) (string, bool) {
		if i, ok := index[name]; ok {
			return out[i].Value, true
		}
		return "", false
	}
	for i, from := range c.EnvFrom {
		var (
			data     map[string][]byte
			found    bool
			optional bool
			what     string
		)
		switch {
		case from.ConfigMapRef != nil:
			data, found = objs.configMapData(from.ConfigMapRef.Name)
			optional = from.ConfigMapRef.Optional != nil && *from.ConfigMapRef.Optional
			what = fmt.Sprintf("configMap %q", from.ConfigMapRef.Name)
		case from.SecretRef != nil:
			data, found = objs.secretData(from.SecretRef.Name)
			optional = from.SecretRef.Optional != nil && *from.SecretRef.Optional
			what = fmt.Sprintf("secret %q", from.SecretRef.Name)
		default:
			continue
		}
		if !found {
			if optional {
				continue
			}
			return nil, fmt.Errorf("envFrom[%d]: %s was not sent with the pod", i, what)
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			set(from.Prefix+k, string(data[k]))
		}
	}
	for i, e := range c.Env {
		// interLink may have resolved valueFrom into value already; its value wins.
		if e.ValueFrom == nil || e.Value != "" {
			set(e.Name, Expand(e.Value, lookup))
			continue
		}
		v, skip, err := envSource(p, c, objs, e.ValueFrom)
		if err != nil {
			return nil, fmt.Errorf("env[%d] (%s): %w", i, e.Name, err)
		}
		if !skip {
			set(e.Name, v)
		}
	}
	return out, nil
}

// EnvList formats variables as NAME=value strings, the form engines take.
func EnvList(vars []v1.EnvVar) []string {
	out := make([]string, len(vars))
	for i, v := range vars {
		out[i] = v.Name + "=" + v.Value
	}
	return out
}

// EnvLookup returns a lookup function over vars for Expand.
func EnvLookup(vars []v1.EnvVar) func(string) (string, bool) {
	m := make(map[string]string, len(vars))
	for _, v := range vars {
		m[v.Name] = v.Value
	}
	return func(name string) (string, bool) { v, ok := m[name]; return v, ok }
}

// ExpandAll applies Expand to each string (a container's command or args).
func ExpandAll(in []string, lookup func(string) (string, bool)) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = Expand(s, lookup)
	}
	return out
}

// Expand replaces $(NAME) references by their value as Kubernetes does in env values, command and args:
// $$ is a literal $, and a reference to an unknown variable or a malformed one is left as written.
func Expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// envSource resolves one valueFrom; skip is true for an optional reference whose object or key is missing.
func envSource(p *v1.Pod, c *v1.Container, objs *Objects, src *v1.EnvVarSource) (value string, skip bool, err error) {
	switch {
	case src.FieldRef != nil:
		v, err := FieldValue(p, src.FieldRef.FieldPath)
		return v, false, err
	case src.ResourceFieldRef != nil:
		v, err := ResourceFieldValue(p, c.Name, src.ResourceFieldRef)
		return v, false, err
	case src.ConfigMapKeyRef != nil:
		ref := src.ConfigMapKeyRef
		v, ok := objs.configMapValue(ref.Name, ref.Key)
		if !ok {
			if ref.Optional != nil && *ref.Optional {
				return "", true, nil
			}
			return "", false, fmt.Errorf("key %q of configMap %q was not sent with the pod", ref.Key, ref.Name)
		}
		return string(v), false, nil
	case src.SecretKeyRef != nil:
		ref := src.SecretKeyRef
		data, found := objs.secretData(ref.Name)
		v, ok := data[ref.Key]
		if !found || !ok {
			if ref.Optional != nil && *ref.Optional {
				return "", true, nil
			}
			return "", false, fmt.Errorf("key %q of secret %q was not sent with the pod", ref.Key, ref.Name)
		}
		return string(v), false, nil
	}
	return "", false, fmt.Errorf("valueFrom has no source this backend can read")
}

// FieldValue returns the value of a downward-API field path of pod p (metadata.name, metadata.namespace,
// metadata.uid, metadata.labels['k'], metadata.annotations['k'], metadata.labels, metadata.annotations,
// spec.nodeName, spec.serviceAccountName, status.podIP and status.podIPs from interLink's pod-ip annotation,
// status.hostIP).
func FieldValue(p *v1.Pod, path string) (string, error) {
	if k, ok := subscript(path, "metadata.labels"); ok {
		return p.Labels[k], nil
	}
	if k, ok := subscript(path, "metadata.annotations"); ok {
		return p.Annotations[k], nil
	}
	switch path {
	case "metadata.name":
		return p.Name, nil
	case "metadata.namespace":
		return p.Namespace, nil
	case "metadata.uid":
		return string(p.UID), nil
	case "metadata.labels":
		return formatMap(p.Labels), nil
	case "metadata.annotations":
		return formatMap(p.Annotations), nil
	case "spec.nodeName":
		return p.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return p.Spec.ServiceAccountName, nil
	case "status.podIP", "status.podIPs":
		return PodIP(p), nil
	case "status.hostIP", "status.hostIPs":
		return p.Status.HostIP, nil
	}
	return "", fmt.Errorf("field path %q is not supported", path)
}

// KnownFieldPath reports whether FieldValue can resolve path.
func KnownFieldPath(path string) bool {
	_, err := FieldValue(&v1.Pod{}, path)
	return err == nil
}

func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok || !strings.HasSuffix(rest, "']") {
		return "", false
	}
	return strings.TrimSuffix(rest, "']"), true
}

// formatMap renders labels or annotations as the downward API does: sorted key="quoted value" lines.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	lines := make([]string, len(keys))
	for i, k := range keys {
		lines[i] = k + "=" + strconv.Quote(m[k])
	}
	return strings.Join(lines, "\n")
}

// ResourceFieldValue resolves a resourceFieldRef (limits.cpu, requests.memory, ...) of a container of p, the
// way the kubelet does: divided by the divisor (default 1) and rounded up; an unset limit falls back to the
// host's capacity (the node allocatable of Kubernetes).
func ResourceFieldValue(p *v1.Pod, defaultContainer string, ref *v1.ResourceFieldSelector) (string, error) {
	name := ref.ContainerName
	if name == "" {
		name = defaultContainer
	}
	c := FindContainer(p, name)
	if c == nil {
		return "", fmt.Errorf("resourceFieldRef names container %q, which the pod does not have", name)
	}
	kind, res, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("resource %q is not supported: use limits.<name> or requests.<name>", ref.Resource)
	}
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	q, set := list[v1.ResourceName(res)]
	if !set && kind == "limits" {
		switch v1.ResourceName(res) {
		case v1.ResourceCPU:
			q, set = *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI), true
		case v1.ResourceMemory:
			if mem := hostMemory(); mem > 0 {
				q, set = *resource.NewQuantity(mem, resource.BinarySI), true
			}
		}
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if !set {
		return "0", nil
	}
	if v1.ResourceName(res) == v1.ResourceCPU {
		v := math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue()))
		return strconv.FormatInt(int64(v), 10), nil
	}
	v := math.Ceil(float64(q.Value()) / float64(divisor.Value()))
	return strconv.FormatInt(int64(v), 10), nil
}

// FindContainer returns the container (init or regular) of p named name, or nil.
func FindContainer(p *v1.Pod, name string) *v1.Container {
	for i := range p.Spec.InitContainers {
		if p.Spec.InitContainers[i].Name == name {
			return &p.Spec.InitContainers[i]
		}
	}
	for i := range p.Spec.Containers {
		if p.Spec.Containers[i].Name == name {
			return &p.Spec.Containers[i]
		}
	}
	return nil
}

func hostMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
