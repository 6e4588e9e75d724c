package podman

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// securityContext: user and group, read-only root filesystem, capabilities, no_new_privs; command, args,
// workingDir and env with a downward-API fieldRef left unresolved by interLink.
func TestSecurityContextAndProcess(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	uid, gid := int64(1234), int64(2345)
	yes, no := true, false
	c := v1.Container{
		Name: "proc", Image: "busybox:latest", ImagePullPolicy: v1.PullIfNotPresent,
		Command:    []string{"sh", "-c"},
		Args:       []string{`echo "$(id -u):$(id -g) $(pwd) $POD_NAME $GREETING"; touch /rootfs-write 2>/dev/null && echo writable || echo read-only; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status`},
		WorkingDir: "/tmp",
		Env: []v1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "GREETING", Value: "hello $(POD_NAME)"},
		},
		SecurityContext: &v1.SecurityContext{
			RunAsUser: &uid, RunAsGroup: &gid, ReadOnlyRootFilesystem: &yes, AllowPrivilegeEscalation: &no,
			Capabilities: &v1.Capabilities{Drop: []v1.Capability{"ALL"}, Add: []v1.Capability{"NET_BIND_SERVICE"}},
		},
	}
	p := newPod("security", c)
	p.ObjectMeta = metav1.ObjectMeta{Name: "security", Namespace: "default", UID: p.UID}
	create(t, b, p)
	st := waitFor(t, b, p, time.Minute, "the container to finish", func(st interlink.PodStatus) bool { return st.Containers[0].State.Terminated != nil })
	out := logs(t, b, p, "proc", interlink.LogOpts{})
	if st.Containers[0].State.Terminated.ExitCode != 0 {
		t.Fatalf("proc failed: %s\n%s", describe(st), out)
	}
	// NET_BIND_SERVICE is capability 10: with everything else dropped the effective set is 1<<10.
	want := "1234:2345 /tmp security hello security\nread-only\nCapEff:\t0000000000000400\nNoNewPrivs:\t1\n"
	if out != want {
		t.Fatalf("proc printed:\n%q\nwant:\n%q", out, want)
	}
	if !strings.Contains(out, "read-only") {
		t.Fatal("the root filesystem was writable")
	}
}
