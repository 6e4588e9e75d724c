package podman

import (
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// An emptyDir on disk that grows over its sizeLimit gets the pod evicted, as the kubelet does: the running
// container is stopped and reported terminated (137, Evicted) and the pod ends Failed; a sibling pod
// within its limit is left alone.
func TestEmptyDirSizeLimitEvicts(t *testing.T) {
	t.Parallel()
	b := newTestBackend(t, testEnv(t))
	size := resource.MustParse("1Mi")
	vol := v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{SizeLimit: &size}}}
	mount := []v1.VolumeMount{{Name: "scratch", MountPath: "/scratch"}}

	hog := busybox("hog", "dd if=/dev/zero of=/scratch/fill bs=1M count=4 && echo filled && sleep 300")
	hog.VolumeMounts = mount
	over := newPod("over-limit", hog)
	over.Spec.Volumes = []v1.Volume{vol}
	small := busybox("small", "dd if=/dev/zero of=/scratch/fill bs=1k count=100 && sleep 300")
	small.VolumeMounts = mount
	within := newPod("within-limit", small)
	within.Spec.Volumes = []v1.Volume{vol}
	create(t, b, over)
	create(t, b, within)

	st := waitFor(t, b, over, pod.UsageInterval*4, "the eviction", phaseIs(v1.PodFailed))
	term := st.Containers[0].State.Terminated
	if term.Reason != pod.ReasonEvicted || term.ExitCode != 137 || !strings.Contains(term.Message, `"scratch"`) {
		t.Fatalf("hog: %s, want terminated 137 Evicted naming the volume", stateString(st.Containers[0]))
	}
	if out := logs(t, b, over, "hog", interlink.LogOpts{}); !strings.Contains(out, "filled") {
		t.Errorf("hog's log = %q", out)
	}
	if ph := pod.Phase(status(t, b, within)); ph != v1.PodRunning {
		t.Errorf("the pod within its limit is %s, want Running", ph)
	}
	// The eviction is recorded: a new backend process on the same data directory still reports it.
	b2 := newTestBackend(t, b.env)
	if st := status(t, b2, over); st.Containers[0].State.Terminated == nil || st.Containers[0].State.Terminated.Reason != pod.ReasonEvicted {
		t.Errorf("after a restart: %s, want Evicted", describe(st))
	}
}
