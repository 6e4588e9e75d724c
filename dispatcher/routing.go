package dispatcher

import (
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// Router picks the backend of a pod that the journal does not know yet: the routing annotation, else the
// first matching rule, else the default backend.
type Router struct {
	annotation string
	rules      []Rule
	def        string
	backends   []string        // every configured backend, in config order, for error messages
	enabled    map[string]bool // configured name → enabled
}

// Route is where a pod goes and why.
type Route struct {
	Backend string
	Rule    string // "annotation", the rule's name (or "rules[i]"), or "default"
}

// RouteError is a pod naming a backend that is unknown or disabled; its message lists the configured ones.
type RouteError struct{ msg string }

func (e *RouteError) Error() string { return e.msg }

// NewRouter builds the router of a validated config.
func NewRouter(c RoutingConfig, backends []BackendConfig) *Router {
	r := &Router{annotation: c.Annotation, rules: c.Rules, def: c.Default, enabled: map[string]bool{}}
	for _, b := range backends {
		r.backends = append(r.backends, b.Name)
		r.enabled[b.Name] = b.IsEnabled()
	}
	return r
}

// Route picks the backend for p. It fails only for a backend named by the annotation or a rule that is
// unknown or disabled.
func (r *Router) Route(p *v1.Pod) (Route, error) {
	if name, ok := p.Annotations[r.annotation]; ok {
		return r.check(Route{Backend: strings.TrimSpace(name), Rule: "annotation"}, fmt.Sprintf("the pod's annotation %s", r.annotation))
	}
	for i, rule := range r.rules {
		if rule.Match.matches(p) {
			name := rule.Name
			if name == "" {
				name = fmt.Sprintf("rules[%d]", i)
			}
			return r.check(Route{Backend: rule.Backend, Rule: name}, fmt.Sprintf("routing rule %s", name))
		}
	}
	return r.check(Route{Backend: r.def, Rule: "default"}, "the default backend")
}

func (r *Router) check(rt Route, source string) (Route, error) {
	enabled, known := r.enabled[rt.Backend]
	switch {
	case !known:
		return rt, &RouteError{fmt.Sprintf("%s names backend %q, which is not configured; use one of: %s", source, rt.Backend, r.enabledList())}
	case !enabled:
		return rt, &RouteError{fmt.Sprintf("%s names backend %q, which is disabled; use one of: %s", source, rt.Backend, r.enabledList())}
	}
	return rt, nil
}

// NotRunning is why the dispatcher runs no backend called name (disabled, or not configured at all, as a
// journal entry written under an older config may name), "" when it runs one.
func (r *Router) NotRunning(name string) string {
	enabled, known := r.enabled[name]
	switch {
	case !known:
		return fmt.Sprintf("backend %q is not configured in this dispatcher any more", name)
	case !enabled:
		return fmt.Sprintf("backend %q is disabled in this dispatcher's config (enabled: false)", name)
	}
	return ""
}

func (r *Router) enabledList() string {
	var out []string
	for _, b := range r.backends {
		if r.enabled[b] {
			out = append(out, b)
		}
	}
	if len(out) == 0 {
		return "(none is enabled)"
	}
	return strings.Join(out, ", ")
}

func (m Match) matches(p *v1.Pod) bool {
	if len(m.Namespaces) > 0 && !slices.Contains(m.Namespaces, p.Namespace) {
		return false
	}
	if !mapMatches(m.Labels, p.Labels) || !mapMatches(m.Annotations, p.Annotations) ||
		!mapMatches(m.NodeSelector, p.Spec.NodeSelector) {
		return false
	}
	if len(m.Resources) > 0 && !slices.ContainsFunc(m.Resources, func(name string) bool { return requests(p, name) }) {
		return false
	}
	return true
}

func mapMatches(want, have map[string]string) bool {
	for k, v := range want {
		got, ok := have[k]
		if !ok || (v != "*" && got != v) {
			return false
		}
	}
	return true
}

// requests reports whether any container of p asks for more than zero of the named resource.
func requests(p *v1.Pod, name string) bool {
	rn := v1.ResourceName(name)
	for _, cs := range [][]v1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, rl := range []v1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
				if q, ok := rl[rn]; ok && q.Sign() > 0 {
					return true
				}
			}
		}
	}
	return false
}
