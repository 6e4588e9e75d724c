package pod

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	v1 "k8s.io/api/core/v1"
)

// DefaultGracePeriod is Kubernetes's default terminationGracePeriodSeconds.
const DefaultGracePeriod = 30 * time.Second

// PullPolicy returns the container's image pull policy, or Kubernetes's default for its image when unset:
// Always for the tag "latest" or no tag (and no digest), IfNotPresent otherwise.
func PullPolicy(c *v1.Container) v1.PullPolicy {
	if c.ImagePullPolicy != "" {
		return c.ImagePullPolicy
	}
	return DefaultPullPolicy(c.Image)
}

// DefaultPullPolicy is the pull policy the Kubernetes API server fills in for an image reference.
func DefaultPullPolicy(image string) v1.PullPolicy {
	if strings.Contains(image, "@") {
		return v1.PullIfNotPresent
	}
	tag := ImageTag(image)
	if tag == "" || tag == "latest" {
		return v1.PullAlways
	}
	return v1.PullIfNotPresent
}

// ImageTag returns the tag of an image reference ("" when it has none). A port in the registry host is not a tag.
func ImageTag(image string) string {
	if i := strings.Index(image, "@"); i >= 0 {
		image = image[:i]
	}
	last := image[strings.LastIndex(image, "/")+1:]
	if i := strings.LastIndex(last, ":"); i >= 0 {
		return last[i+1:]
	}
	return ""
}

// GracePeriod returns how long a pod's containers get between SIGTERM and SIGKILL: the deletion grace period
// the API server set on the pod when it is being deleted, else spec.terminationGracePeriodSeconds, else 30 s.
// A negative value counts as 1 s, as the Kubernetes API server reads it, and a value too large for a
// time.Duration is held at the longest one, so that no caller's deadline arithmetic overflows.
func GracePeriod(p *v1.Pod) time.Duration {
	var secs *int64
	switch {
	case p.DeletionGracePeriodSeconds != nil:
		secs = p.DeletionGracePeriodSeconds
	case p.Spec.TerminationGracePeriodSeconds != nil:
		secs = p.Spec.TerminationGracePeriodSeconds
	default:
		return DefaultGracePeriod
	}
	return time.Duration(graceSeconds(*secs, maxGraceSeconds)) * time.Second
}

// maxGraceSeconds is the largest number of seconds a time.Duration holds.
const maxGraceSeconds = int64(math.MaxInt64 / int64(time.Second))

// graceSeconds is a grace period in seconds as Kubernetes reads it (negative is 1 s) and held at most limit.
func graceSeconds(secs, limit int64) int64 {
	switch {
	case secs < 0:
		return 1
	case secs > limit:
		return limit
	}
	return secs
}

// ClampGracePeriods rewrites every grace period p carries (metadata.deletionGracePeriodSeconds,
// spec.terminationGracePeriodSeconds and each probe's terminationGracePeriodSeconds) into what Kubernetes
// would apply: a negative value becomes 1 s, and one above bound (taken as at least 1 s) becomes bound, so that whatever
// reads the pod afterwards (a backend, the shim) computes its deadlines without overflow and within the
// operator's bound. It reports the fields it changed, by path.
func ClampGracePeriods(p *v1.Pod, bound time.Duration) []string {
	limit := max(int64(bound/time.Second), 1)
	var changed []string
	fix := func(path string, v *int64) {
		if v == nil {
			return
		}
		if g := graceSeconds(*v, limit); g != *v {
			*v = g
			changed = append(changed, path)
		}
	}
	fix("metadata.deletionGracePeriodSeconds", p.DeletionGracePeriodSeconds)
	fix("spec.terminationGracePeriodSeconds", p.Spec.TerminationGracePeriodSeconds)
	for _, list := range []struct {
		path string
		cs   []v1.Container
	}{{"spec.initContainers", p.Spec.InitContainers}, {"spec.containers", p.Spec.Containers}} {
		for i := range list.cs {
			c := &list.cs[i]
			for _, pr := range []struct {
				name  string
				probe *v1.Probe
			}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}} {
				if pr.probe != nil {
					fix(fmt.Sprintf("%s[%d].%s.terminationGracePeriodSeconds", list.path, i, pr.name), pr.probe.TerminationGracePeriodSeconds)
				}
			}
		}
	}
	return changed
}

// RestartPolicy returns the pod's restart policy, Always when unset as Kubernetes defaults it.
func RestartPolicy(p *v1.Pod) v1.RestartPolicy {
	if p.Spec.RestartPolicy == "" {
		return v1.RestartPolicyAlways
	}
	return p.Spec.RestartPolicy
}

// ShouldRestart says whether a container that exited with exitCode is restarted under policy.
func ShouldRestart(policy v1.RestartPolicy, exitCode int) bool {
	switch policy {
	case v1.RestartPolicyAlways:
		return true
	case v1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return false
	}
}

// PodIP returns the pod IP chosen on the Kubernetes side (the interlink.eu/pod-ip annotation), else status.podIP.
func PodIP(p *v1.Pod) string {
	if ip := p.Annotations[AnnotationPodIP]; ip != "" {
		return ip
	}
	return p.Status.PodIP
}

// AnnotationPodIP is the annotation where interLink's virtual kubelet puts the pod IP.
const AnnotationPodIP = "interlink.eu/pod-ip"

// RunAs returns the user and group container c of p runs as: its own securityContext's runAsUser and
// runAsGroup over the pod's. nil keeps what the image says.
func RunAs(p *v1.Pod, c *v1.Container) (uid, gid *int64) {
	if psc := p.Spec.SecurityContext; psc != nil {
		uid, gid = psc.RunAsUser, psc.RunAsGroup
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
	}
	return uid, gid
}

// SupplementalGroups are the group ids of p's supplementalGroups, as the engines take them ("1234").
func SupplementalGroups(p *v1.Pod) []string {
	sc := p.Spec.SecurityContext
	if sc == nil {
		return nil
	}
	var out []string
	for _, g := range sc.SupplementalGroups {
		out = append(out, strconv.FormatInt(g, 10))
	}
	return out
}
