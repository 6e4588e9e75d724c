package dispatcher

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestRoute(t *testing.T) {
	off := false
	backends := []BackendConfig{{Name: "docker"}, {Name: "podman"}, {Name: "slurm"}, {Name: "old", Enabled: &off}}
	rules := []Rule{
		{Name: "gpu", Backend: "slurm", Match: Match{Resources: []string{"nvidia.com/gpu", "amd.com/gpu"}}},
		{Name: "hpc-ns", Backend: "slurm", Match: Match{Namespaces: []string{"hpc", "batch"}}},
		{Backend: "podman", Match: Match{Labels: map[string]string{"runtime": "podman"}, Annotations: map[string]string{"team": "*"}}},
		{Name: "zone", Backend: "podman", Match: Match{NodeSelector: map[string]string{"zone": "b"}}},
		{Name: "legacy", Backend: "old", Match: Match{Labels: map[string]string{"legacy": "true"}}},
		{Name: "both", Backend: "slurm", Match: Match{Namespaces: []string{"mixed"}, Labels: map[string]string{"big": "yes"}}},
	}
	r := NewRouter(RoutingConfig{Annotation: DefaultRoutingAnnotation, Default: "docker", Rules: rules}, backends)

	gpu := func(res string, n string, limits bool) func(*v1.Pod) {
		return func(p *v1.Pod) {
			rl := v1.ResourceList{v1.ResourceName(res): resource.MustParse(n)}
			if limits {
				p.Spec.Containers[0].Resources.Limits = rl
			} else {
				p.Spec.InitContainers = []v1.Container{{Name: "init", Resources: v1.ResourceRequirements{Requests: rl}}}
			}
		}
	}
	for _, tc := range []struct {
		name    string
		edit    func(*v1.Pod)
		backend string
		rule    string
		err     string
	}{
		{"default", func(*v1.Pod) {}, "docker", "default", ""},
		{"annotation wins over rules", func(p *v1.Pod) {
			p.Annotations = map[string]string{DefaultRoutingAnnotation: "podman"}
			p.Namespace = "hpc"
		}, "podman", "annotation", ""},
		{"annotation unknown", func(p *v1.Pod) { p.Annotations = map[string]string{DefaultRoutingAnnotation: "k8s"} }, "", "",
			`backend "k8s", which is not configured; use one of: docker, podman, slurm`},
		{"annotation disabled", func(p *v1.Pod) { p.Annotations = map[string]string{DefaultRoutingAnnotation: "old"} }, "", "",
			`backend "old", which is disabled`},
		{"gpu limit", gpu("nvidia.com/gpu", "1", true), "slurm", "gpu", ""},
		{"amd gpu request in init container", gpu("amd.com/gpu", "2", false), "slurm", "gpu", ""},
		{"zero gpus do not count", gpu("nvidia.com/gpu", "0", true), "docker", "default", ""},
		{"namespace", func(p *v1.Pod) { p.Namespace = "batch" }, "slurm", "hpc-ns", ""},
		{"label and any-value annotation", func(p *v1.Pod) {
			p.Labels = map[string]string{"runtime": "podman"}
			p.Annotations = map[string]string{"team": "x"}
		}, "podman", "rules[2]", ""},
		{"label without the annotation", func(p *v1.Pod) { p.Labels = map[string]string{"runtime": "podman"} }, "docker", "default", ""},
		{"label value differs", func(p *v1.Pod) {
			p.Labels = map[string]string{"runtime": "docker"}
			p.Annotations = map[string]string{"team": "x"}
		}, "docker", "default", ""},
		{"node selector", func(p *v1.Pod) { p.Spec.NodeSelector = map[string]string{"zone": "b"} }, "podman", "zone", ""},
		{"first rule wins", func(p *v1.Pod) {
			p.Spec.NodeSelector = map[string]string{"zone": "b"}
			p.Namespace = "hpc"
		}, "slurm", "hpc-ns", ""},
		{"rule to disabled backend", func(p *v1.Pod) { p.Labels = map[string]string{"legacy": "true"} }, "", "", "routing rule legacy names backend \"old\", which is disabled"},
		{"all conditions of a rule", func(p *v1.Pod) { p.Namespace = "mixed" }, "docker", "default", ""},
		{"all conditions of a rule hold", func(p *v1.Pod) { p.Namespace = "mixed"; p.Labels = map[string]string{"big": "yes"} }, "slurm", "both", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testPod("uid", "p")
			tc.edit(p)
			rt, err := r.Route(p)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want error with %q", rt, err, tc.err)
				}
				return
			}
			if err != nil || rt.Backend != tc.backend || rt.Rule != tc.rule {
				t.Fatalf("got %+v, %v; want %s by %s", rt, err, tc.backend, tc.rule)
			}
		})
	}
}
