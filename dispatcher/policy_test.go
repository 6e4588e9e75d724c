package dispatcher

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// policyCaps is a backend that honours everything the policy governs, as Docker's does.
var policyCaps = backend.Capabilities{
	VolumeKinds: []string{pod.KindEmptyDir, pod.KindHostPath},
	Features: []string{backend.FeatureInitContainers, backend.FeatureMultipleContainers, backend.FeaturePrivileged,
		backend.FeatureCapabilities, backend.FeatureHostNetwork},
}

// policyTree makes a host tree with the shapes the policy must see through, and returns its root:
//
//	data/            (the read-only prefix)  data/sub/  data/file
//	data/link-in   → sub                      (stays inside)
//	data/link-out  → /etc                     (absolute, leaves)
//	data/rel-out   → ../data2                 (relative, leaves)
//	data/parent    → /etc                     (a symlinked parent: data/parent/passwd)
//	data/loop      → loop
//	data2/                                    (beside the prefix, not under it)
//	scratch/         (the writable prefix)   scratch/dangling → /etc/<missing>  (FileOrCreate would create it)
//	scratch/to-ro  → data                     (from the writable prefix into the read-only one)
//	linkdir        → data                     (a prefix that is itself a link)
func policyTree(t *testing.T) string {
	t.Helper()
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"data/sub", "data2", "scratch"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, "data/file"), []byte("x"), 0o644)
	for link, target := range map[string]string{
		"data/link-in": "sub", "data/link-out": "/etc", "data/rel-out": "../data2", "data/parent": "/etc",
		"data/loop": "loop", "scratch/dangling": "/etc/interlink-policy-test-missing", "scratch/to-ro": filepath.Join(root, "data"),
		"linkdir": filepath.Join(root, "data"),
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func policyPod() *v1.Pod {
	return testPod("pol-1", "pol")
}

// withHostPath adds a hostPath volume "hp" at path (type typ, "" for unset), mounted by the main container
// (readOnly as given).
func withHostPath(path string, typ v1.HostPathType, readOnly bool) func(*v1.Pod) {
	return func(p *v1.Pod) {
		src := &v1.HostPathVolumeSource{Path: path}
		if typ != "" {
			src.Type = &typ
		}
		p.Spec.Volumes = append(p.Spec.Volumes, v1.Volume{Name: "hp", VolumeSource: v1.VolumeSource{HostPath: src}})
		p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts,
			v1.VolumeMount{Name: "hp", MountPath: "/mnt/hp", ReadOnly: readOnly})
	}
}

func withSecurity(edit func(*v1.SecurityContext)) func(*v1.Pod) {
	return func(p *v1.Pod) {
		sc := &v1.SecurityContext{}
		edit(sc)
		p.Spec.Containers[0].SecurityContext = sc
	}
}

func addCaps(names ...string) func(*v1.Pod) {
	return withSecurity(func(sc *v1.SecurityContext) {
		sc.Capabilities = &v1.Capabilities{}
		for _, n := range names {
			sc.Capabilities.Add = append(sc.Capabilities.Add, v1.Capability(n))
		}
	})
}

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

func TestPolicyCheck(t *testing.T) {
	root := policyTree(t)
	at := func(rel string) string { return filepath.Join(root, rel) }
	lab := PolicyConfig{
		HostPaths:    []HostPathRule{{Path: at("data")}, {Path: at("scratch"), ReadOnly: no()}},
		Capabilities: []string{"net_admin"},
	}
	none := PolicyConfig{}
	for _, tc := range []struct {
		name   string
		policy PolicyConfig
		caps   *backend.Capabilities // nil: policyCaps
		edit   []func(*v1.Pod)
		want   []string // each a substring of one problem, in order; none: accepted
	}{
		{"a plain pod on a fresh config", none, nil, nil, nil},
		{"hostPath / on a fresh config", none, nil, []func(*v1.Pod){withHostPath("/", "", true)},
			[]string{`spec.volumes[0].hostPath.path: "/" is refused: no host path is allowed on backend "b"; an operator allows one under backends[0].policy.host_paths (see README "Security")`}},
		{"the prefix itself", lab, nil, []func(*v1.Pod){withHostPath(at("data"), v1.HostPathDirectory, true)}, nil},
		{"under the prefix", lab, nil, []func(*v1.Pod){withHostPath(at("data/sub"), "", true)}, nil},
		{"a file under the prefix", lab, nil, []func(*v1.Pod){withHostPath(at("data/file"), v1.HostPathFile, true)}, nil},
		{"beside the prefix (/data2 is not under /data)", lab, nil, []func(*v1.Pod){withHostPath(at("data2"), "", true)},
			[]string{"spec.volumes[0].hostPath.path: " + `"` + at("data2") + `" is not under a host path allowed on backend "b" (` + at("data") + " read-only, " + at("scratch") + "); an operator allows more under backends[0].policy.host_paths"}},
		{"/etc outside every prefix", lab, nil, []func(*v1.Pod){withHostPath("/etc", "", true)}, []string{`"/etc" is not under a host path allowed`}},
		{"'..' leaving the prefix, after cleaning", lab, nil, []func(*v1.Pod){withHostPath(root+"/data/../data2", "", true)},
			[]string{"(that is " + at("data2") + ") is not under"}},
		{"'..' staying inside, after cleaning", lab, nil, []func(*v1.Pod){withHostPath(root+"/data/sub/../sub", "", true)}, nil},
		{"a symlink leading out (absolute)", lab, nil, []func(*v1.Pod){withHostPath(at("data/link-out"), "", true)},
			[]string{"which resolves through symbolic links to /etc, is not under"}},
		{"a symlink leading out (relative)", lab, nil, []func(*v1.Pod){withHostPath(at("data/rel-out"), "", true)},
			[]string{"resolves through symbolic links to " + at("data2") + ", is not under"}},
		{"a symlinked parent leading out", lab, nil, []func(*v1.Pod){withHostPath(at("data/parent/passwd"), v1.HostPathFile, true)},
			[]string{"resolves through symbolic links to /etc/passwd, is not under"}},
		{"a symlink staying inside", lab, nil, []func(*v1.Pod){withHostPath(at("data/link-in"), "", true)}, nil},
		{"a symlink loop", lab, nil, []func(*v1.Pod){withHostPath(at("data/loop"), "", true)}, []string{"too many symbolic links"}},
		{"a prefix that is a symlink", PolicyConfig{HostPaths: []HostPathRule{{Path: at("linkdir")}}}, nil,
			[]func(*v1.Pod){withHostPath(at("linkdir/sub"), "", true)}, nil},
		{"a dangling symlink FileOrCreate would follow out of a writable prefix", lab, nil,
			[]func(*v1.Pod){withHostPath(at("scratch/dangling"), v1.HostPathFileOrCreate, false)},
			[]string{"resolves through symbolic links to /etc/interlink-policy-test-missing, is not under"}},
		{"a read-only prefix mounted writable", lab, nil, []func(*v1.Pod){withHostPath(at("data/sub"), "", false)},
			[]string{"spec.containers[0].volumeMounts[0].readOnly: host path " + at("data/sub") + ` is allowed read-only on backend "b" (backends[0].policy.host_paths[0]); set readOnly: true on this volumeMount`}},
		{"a read-only prefix mounted writable by an init container", lab, nil, []func(*v1.Pod){withHostPath(at("data"), "", true), func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "init", Image: "busybox:latest", VolumeMounts: []v1.VolumeMount{{Name: "hp", MountPath: "/hp"}}}}
		}}, []string{"spec.initContainers[0].volumeMounts[0].readOnly: host path"}},
		{"DirectoryOrCreate under a read-only prefix", lab, nil, []func(*v1.Pod){withHostPath(at("data/new"), v1.HostPathDirectoryOrCreate, true)},
			[]string{"spec.volumes[0].hostPath.type: DirectoryOrCreate may create " + at("data/new") + `, but backend "b" allows it read-only (backends[0].policy.host_paths[0]); use type Directory`}},
		{"FileOrCreate under a read-only prefix, mounted writable", lab, nil, []func(*v1.Pod){withHostPath(at("data/f"), v1.HostPathFileOrCreate, false)},
			[]string{"hostPath.type: FileOrCreate may create", "volumeMounts[0].readOnly"}},
		{"DirectoryOrCreate under a writable prefix", lab, nil, []func(*v1.Pod){withHostPath(at("scratch/new/deeper"), v1.HostPathDirectoryOrCreate, false)}, nil},
		{"FileOrCreate under a writable prefix", lab, nil, []func(*v1.Pod){withHostPath(at("scratch/f"), v1.HostPathFileOrCreate, false)}, nil},
		{"a link from the writable prefix into the read-only one stays read-only", lab, nil,
			[]func(*v1.Pod){withHostPath(at("scratch/to-ro/sub"), "", false)},
			[]string{"volumeMounts[0].readOnly: host path " + at("scratch/to-ro/sub") + ` is allowed read-only on backend "b" (backends[0].policy.host_paths[0])`}},
		{"a read-only prefix inside a writable one decides below it", PolicyConfig{HostPaths: []HostPathRule{
			{Path: at("scratch"), ReadOnly: no()}, {Path: at("scratch/keep")}}}, nil,
			[]func(*v1.Pod){withHostPath(at("scratch/keep/x"), v1.HostPathDirectoryOrCreate, false)},
			[]string{"hostPath.type: DirectoryOrCreate may create " + at("scratch/keep/x") + `, but backend "b" allows it read-only (backends[0].policy.host_paths[1])`,
				"volumeMounts[0].readOnly"}},
		{"beside the read-only prefix inside a writable one", PolicyConfig{HostPaths: []HostPathRule{
			{Path: at("scratch"), ReadOnly: no()}, {Path: at("scratch/keep")}}}, nil,
			[]func(*v1.Pod){withHostPath(at("scratch/keeper"), v1.HostPathDirectoryOrCreate, false)}, nil},
		{"a writable prefix inside a read-only one decides below it", PolicyConfig{HostPaths: []HostPathRule{
			{Path: at("data")}, {Path: at("data/sub"), ReadOnly: no()}}}, nil,
			[]func(*v1.Pod){withHostPath(at("data/sub"), "", false)}, nil},
		{"read-only prefix of / allows /etc read-only", PolicyConfig{HostPaths: []HostPathRule{{Path: "/", ReadOnly: yes()}}}, nil,
			[]func(*v1.Pod){withHostPath("/etc", "", true)}, nil},
		{"a volume no container mounts is still checked", lab, nil, []func(*v1.Pod){withHostPath("/etc", v1.HostPathDirectoryOrCreate, true), func(p *v1.Pod) {
			p.Spec.Containers[0].VolumeMounts = nil
		}}, []string{`"/etc" is not under`}},

		{"privileged refused", none, nil, []func(*v1.Pod){withSecurity(func(sc *v1.SecurityContext) { sc.Privileged = yes() })},
			[]string{`spec.containers[0].securityContext.privileged: a privileged container is not allowed on backend "b"; an operator allows it with backends[0].policy.privileged: true (see README "Security")`}},
		{"privileged false is no privilege", none, nil, []func(*v1.Pod){withSecurity(func(sc *v1.SecurityContext) { sc.Privileged = no() })}, nil},
		{"privileged allowed", PolicyConfig{Privileged: true}, nil, []func(*v1.Pod){withSecurity(func(sc *v1.SecurityContext) { sc.Privileged = yes() })}, nil},
		{"privileged init container", none, nil, []func(*v1.Pod){func(p *v1.Pod) {
			p.Spec.InitContainers = []v1.Container{{Name: "init", Image: "busybox:latest", SecurityContext: &v1.SecurityContext{Privileged: yes()}}}
		}}, []string{"spec.initContainers[0].securityContext.privileged: a privileged container is not allowed"}},
		{"privileged ephemeral container", none, nil, []func(*v1.Pod){func(p *v1.Pod) {
			p.Spec.EphemeralContainers = []v1.EphemeralContainer{{EphemeralContainerCommon: v1.EphemeralContainerCommon{
				Name: "debug", Image: "busybox:latest", SecurityContext: &v1.SecurityContext{Privileged: yes()}}}}
		}}, []string{"spec.ephemeralContainers[0].securityContext.privileged"}},
		{"privileged on a backend that cannot: left to pod.Validate", none, &backend.Capabilities{},
			[]func(*v1.Pod){withSecurity(func(sc *v1.SecurityContext) { sc.Privileged = yes() })}, nil},

		{"hostNetwork refused", none, nil, []func(*v1.Pod){func(p *v1.Pod) { p.Spec.HostNetwork = true }},
			[]string{`spec.hostNetwork: host networking is not allowed on backend "b"; an operator allows it with backends[0].policy.host_network: true (see README "Security")`}},
		{"hostNetwork allowed", PolicyConfig{HostNetwork: true}, nil, []func(*v1.Pod){func(p *v1.Pod) { p.Spec.HostNetwork = true }}, nil},

		{"a listed capability", lab, nil, []func(*v1.Pod){addCaps("NET_ADMIN")}, nil},
		{"a listed capability in lower case", lab, nil, []func(*v1.Pod){addCaps("net_admin")}, nil},
		{"a listed capability with CAP_", lab, nil, []func(*v1.Pod){addCaps("CAP_NET_ADMIN", "cap_net_admin")}, nil},
		{"an unlisted capability, named as Kubernetes writes it", lab, nil, []func(*v1.Pod){addCaps("NET_ADMIN", "cap_sys_admin")},
			[]string{`spec.containers[0].securityContext.capabilities.add[1]: adding capability SYS_ADMIN is not allowed on backend "b"; an operator allows it under backends[0].policy.capabilities (see README "Security")`}},
		{"ALL not listed", lab, nil, []func(*v1.Pod){addCaps("all")},
			[]string{`capabilities.add[0]: adding ALL capabilities is not allowed on backend "b"; an operator allows it with ALL in backends[0].policy.capabilities`}},
		{"ALL listed allows any", PolicyConfig{Capabilities: []string{"ALL"}}, nil, []func(*v1.Pod){addCaps("SYS_ADMIN", "ALL", "cap_bpf")}, nil},
		{"not a capability", PolicyConfig{Capabilities: []string{"ALL"}}, nil, []func(*v1.Pod){addCaps("FLY")},
			[]string{`capabilities.add[0]: "FLY" is neither a Linux capability`}},
		{"dropping needs no policy", none, nil, []func(*v1.Pod){withSecurity(func(sc *v1.SecurityContext) {
			sc.Capabilities = &v1.Capabilities{Drop: []v1.Capability{"ALL"}}
		})}, nil},

		{"every problem at once", none, nil, []func(*v1.Pod){withHostPath("/", "", false), addCaps("SYS_ADMIN"),
			func(p *v1.Pod) { p.Spec.HostNetwork = true; p.Spec.Containers[0].SecurityContext.Privileged = yes() }},
			[]string{"spec.hostNetwork", "securityContext.privileged", "capabilities.add[0]", "spec.volumes[0].hostPath.path"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc := tc.policy
			pc.HostPaths = append([]HostPathRule(nil), pc.HostPaths...)
			pc.Capabilities = append([]string(nil), pc.Capabilities...)
			if errs := pc.check("backends[0].policy"); len(errs) > 0 {
				t.Fatalf("the test's policy is refused: %v", errs)
			}
			caps := policyCaps
			if tc.caps != nil {
				caps = *tc.caps
			}
			p := policyPod()
			for _, e := range tc.edit {
				e(p)
			}
			got := backendPolicy{PolicyConfig: pc, key: "backends[0].policy"}.problems(p, caps, "b")
			if len(got) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d\n  %s\ndoes not say\n  %s", i, got[i], w)
				}
			}
		})
	}
}

// admit reports what the backend cannot honour and what the policy refuses in one 422 error.
func TestAdmitJoinsValidationAndPolicy(t *testing.T) {
	cfg := testConfig(t, t.TempDir(), "b")
	s := &Core{validate: pod.Validate, policies: policies(cfg.Backends)}
	p := policyPod()
	withHostPath("/", "", false)(p)
	p.Spec.Containers[0].Ports = []v1.ContainerPort{{ContainerPort: 80}} // policyCaps has no ports
	err := s.admit(p, policyCaps, "b")
	if statusOf(err) != 422 {
		t.Fatalf("status %d for %v", statusOf(err), err)
	}
	for _, w := range []string{"spec.containers[0].ports[0]: a container port is not supported", `spec.volumes[0].hostPath.path: "/" is refused`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
	var problems pod.Problems
	if !errors.As(err, &problems) || len(problems) != 2 {
		t.Fatalf("want the two problems as pod.Problems, got %#v", err)
	}
	if err := s.admit(policyPod(), policyCaps, "b"); err != nil {
		t.Fatalf("a plain pod: %v", err)
	}
	// hostPID and hostIPC need no policy key: no backend can declare them, and pod.Validate refuses them.
	p = policyPod()
	p.Spec.HostPID, p.Spec.HostIPC = true, true
	err = s.admit(p, policyCaps, "b")
	for _, w := range []string{"spec.hostPID: this field is not supported", "spec.hostIPC: this field is not supported"} {
		if statusOf(err) != 422 || !strings.Contains(err.Error(), w) {
			t.Errorf("hostPID/hostIPC: %v does not say %q", err, w)
		}
	}
}

func TestPolicyConfigCheck(t *testing.T) {
	pc := PolicyConfig{
		HostPaths:    []HostPathRule{{Path: "/data/"}, {Path: "data"}, {Path: ""}, {Path: "/a/../etc"}, {Path: "/data"}},
		Capabilities: []string{"cap_net_admin", "NET_ADMIN", "NET_ADMN", "all"},
	}
	errs := pc.check("backends[1].policy")
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		`config key backends[1].policy.host_paths[1].path: "data" must be an absolute path`,
		`config key backends[1].policy.host_paths[2].path: must name a host directory`,
		`config key backends[1].policy.host_paths[3].path: "/a/../etc" must not contain '..'`,
		`config key backends[1].policy.host_paths[4].path: /data is listed twice (also at backends[1].policy.host_paths[0])`,
		`config key backends[1].policy.capabilities[1]: NET_ADMIN is listed twice (also at backends[1].policy.capabilities[0])`,
		`config key backends[1].policy.capabilities[2]: "NET_ADMN" is neither a Linux capability`,
	}
	if len(got) != len(want) {
		t.Fatalf("got\n%s", strings.Join(got, "\n"))
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("got  %s\nwant %s", got[i], want[i])
		}
	}
	if pc.HostPaths[0].Path != "/data" || pc.Capabilities[0] != "NET_ADMIN" || pc.Capabilities[3] != "ALL" {
		t.Fatalf("not normalised: %+v", pc)
	}
}
