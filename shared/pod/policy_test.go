package pod

import (
	"testing"

	v1 "k8s.io/api/core/v1"
)

// The container's runAsUser and runAsGroup win over the pod's, each on its own.
func TestRunAs(t *testing.T) {
	n := func(v int64) *int64 { return &v }
	str := func(p *int64) any {
		if p == nil {
			return nil
		}
		return *p
	}
	for _, tc := range []struct {
		name     string
		ctr      *v1.SecurityContext
		psc      *v1.PodSecurityContext
		uid, gid any
	}{
		{name: "none", uid: nil, gid: nil},
		{name: "pod only", psc: &v1.PodSecurityContext{RunAsUser: n(1000), RunAsGroup: n(3000)}, uid: int64(1000), gid: int64(3000)},
		{name: "container user over pod's", psc: &v1.PodSecurityContext{RunAsUser: n(1000), RunAsGroup: n(3000)},
			ctr: &v1.SecurityContext{RunAsUser: n(2000)}, uid: int64(2000), gid: int64(3000)},
		{name: "container group only", ctr: &v1.SecurityContext{RunAsGroup: n(5)}, uid: nil, gid: int64(5)},
	} {
		p := &v1.Pod{Spec: v1.PodSpec{SecurityContext: tc.psc}}
		c := &v1.Container{Name: "c", SecurityContext: tc.ctr}
		uid, gid := RunAs(p, c)
		if str(uid) != tc.uid || str(gid) != tc.gid {
			t.Errorf("%s: RunAs = %v, %v; want %v, %v", tc.name, str(uid), str(gid), tc.uid, tc.gid)
		}
	}
}
