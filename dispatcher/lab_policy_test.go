package dispatcher

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// hostPathVolume is a hostPath volume named name at path, of type typ ("" for unset).
func hostPathVolume(name, path string, typ v1.HostPathType) v1.Volume {
	src := &v1.HostPathVolumeSource{Path: path}
	if typ != "" {
		src.Type = &typ
	}
	return v1.Volume{Name: name, VolumeSource: v1.VolumeSource{HostPath: src}}
}

// requireNothingMade fails unless neither the journal nor the real backend knows the pods.
func requireNothingMade(t *testing.T, e *labEnv, pods ...*v1.Pod) {
	t.Helper()
	if all, err := e.journal.All(); err != nil || len(all) != 0 {
		t.Fatalf("the journal holds %d entries after refused creates (%v): %+v", len(all), err, all)
	}
	b, _, err := e.sup.Backend(e.cfg.Backends[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := b.List(ctx)
	if err != nil {
		t.Fatalf("listing the backend's pods: %v", err)
	}
	for _, r := range recs {
		for _, p := range pods {
			if r.UID == string(p.UID) {
				t.Fatalf("the backend has the refused pod %s: %+v", p.UID, r)
			}
		}
	}
}

// Through the dispatcher's handler with the real Docker backend: on a fresh policy, hostPath / (as in the
// trial that wrote a root-owned file on the host), a DirectoryOrCreate path, host networking, a privileged
// container and an added capability are refused with 422 naming each field and the config key, and nothing
// is made: no journal entry, no pod on the engine, no directory on the host. With the policy allowing a
// read-only and a writable prefix, a pod reading from one and writing to the other runs, and a writable mount
// of the read-only prefix is refused.
func TestLabPolicyDocker(t *testing.T) {
	t.Parallel()
	labtest.RequireDocker(t)
	host := t.TempDir()
	ro, rw := filepath.Join(host, "ro"), filepath.Join(host, "rw")
	for _, d := range []string{ro, rw} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ro, "in.txt"), []byte("from the read-only prefix\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("fresh policy", func(t *testing.T) {
		e := startLab(t, "docker", map[string]any{})
		made := filepath.Join(host, "made-by-a-refused-pod")
		// The command only reads: should the dispatcher accept the pod, the test fails without having written
		// to the host.
		root := labPod(fmt.Sprintf("pol-root-%d", time.Now().UnixNano()), "ls /host > /dev/null")
		root.Spec.Volumes = []v1.Volume{hostPathVolume("host", "/", ""), hostPathVolume("made", made, v1.HostPathDirectoryOrCreate)}
		root.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "host", MountPath: "/host"}, {Name: "made", MountPath: "/made"}}
		defer e.do("POST", "/delete", root) // only to clean up after a failure: a refused pod is "not known"
		code, body := e.do("POST", "/create", createBody(root))
		if code != 422 {
			t.Fatalf("hostPath /: %d %s", code, body)
		}
		for _, w := range []string{
			`spec.volumes[0].hostPath.path: "/" is refused: no host path is allowed on backend "docker"; an operator allows one under backends[0].policy.host_paths (see README "Security")`,
			`spec.volumes[1].hostPath.path: "` + made + `" is refused`,
		} {
			if !strings.Contains(body, w) {
				t.Errorf("the 422 body\n  %s\ndoes not say\n  %s", body, w)
			}
		}

		priv := labPod(fmt.Sprintf("pol-priv-%d", time.Now().UnixNano()), "true")
		priv.Spec.HostNetwork = true
		on := true
		priv.Spec.Containers[0].SecurityContext = &v1.SecurityContext{Privileged: &on,
			Capabilities: &v1.Capabilities{Add: []v1.Capability{"cap_sys_admin"}}}
		defer e.do("POST", "/delete", priv)
		code, body = e.do("POST", "/create", createBody(priv))
		if code != 422 {
			t.Fatalf("hostNetwork, privileged, SYS_ADMIN: %d %s", code, body)
		}
		for _, w := range []string{
			"spec.hostNetwork: host networking is not allowed on backend \"docker\"; an operator allows it with backends[0].policy.host_network: true",
			"spec.containers[0].securityContext.privileged: a privileged container is not allowed on backend \"docker\"; an operator allows it with backends[0].policy.privileged: true",
			"spec.containers[0].securityContext.capabilities.add[0]: adding capability SYS_ADMIN is not allowed on backend \"docker\"; an operator allows it under backends[0].policy.capabilities",
		} {
			if !strings.Contains(body, w) {
				t.Errorf("the 422 body\n  %s\ndoes not say\n  %s", body, w)
			}
		}

		requireNothingMade(t, e, root, priv)
		if _, err := os.Lstat(made); err == nil {
			t.Fatalf("the refused pod's DirectoryOrCreate path %s was made", made)
		}
	})

	t.Run("allowed prefixes", func(t *testing.T) {
		e := startLab(t, "docker", map[string]any{}, func(c *Config) {
			off := false
			c.Backends[0].Policy = PolicyConfig{HostPaths: []HostPathRule{{Path: ro}, {Path: rw, ReadOnly: &off}}}
		})
		out := filepath.Join(rw, "out")
		p := labPod(fmt.Sprintf("pol-ok-%d", time.Now().UnixNano()), "cat /in/in.txt; cat /in/in.txt > /out/copy.txt")
		p.Spec.Volumes = []v1.Volume{hostPathVolume("in", ro, v1.HostPathDirectory), hostPathVolume("out", out, v1.HostPathDirectoryOrCreate)}
		p.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "in", MountPath: "/in", ReadOnly: true}, {Name: "out", MountPath: "/out"}}
		if code, body := e.do("POST", "/create", createBody(p)); code != 200 {
			t.Fatalf("a pod within the policy: %d %s", code, body)
		}
		defer e.do("POST", "/delete", p)
		if s := e.waitState(p, "terminated", terminated); s.Terminated.ExitCode != 0 {
			t.Fatalf("the pod within the policy: %+v", s.Terminated)
		}
		if got, err := os.ReadFile(filepath.Join(out, "copy.txt")); err != nil || string(got) != "from the read-only prefix\n" {
			t.Fatalf("what the pod wrote under the writable prefix: %q, %v", got, err)
		}

		bad := labPod(fmt.Sprintf("pol-rw-%d", time.Now().UnixNano()), "touch /in/x")
		bad.Spec.Volumes = []v1.Volume{hostPathVolume("in", ro, "")}
		bad.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{{Name: "in", MountPath: "/in"}}
		defer e.do("POST", "/delete", bad)
		code, body := e.do("POST", "/create", createBody(bad))
		want := "spec.containers[0].volumeMounts[0].readOnly: host path " + ro + ` is allowed read-only on backend "docker" (backends[0].policy.host_paths[0]); set readOnly: true on this volumeMount`
		if code != 422 || !strings.Contains(body, want) {
			t.Fatalf("a writable mount of the read-only prefix: %d %s\nwant %s", code, body, want)
		}
		if _, found, _ := e.journal.Get(string(bad.UID)); found {
			t.Fatal("the refused pod is journaled")
		}
		if _, err := os.Lstat(filepath.Join(ro, "x")); err == nil {
			t.Fatal("the refused pod wrote under the read-only prefix")
		}
	})
}
