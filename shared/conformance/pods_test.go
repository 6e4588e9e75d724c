package conformance

import (
	"regexp"
	"strings"
	"testing"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

func TestNewUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for i := 0; i < 100; i++ {
		uid := string(NewUID())
		if !re.MatchString(uid) || seen[uid] {
			t.Fatalf("NewUID gave %q (seen before: %v)", uid, seen[uid])
		}
		seen[uid] = true
	}
	pod := NewPod("Single", ShellContainer("main", "true"))
	if !strings.HasPrefix(pod.Name, "single-") || pod.Name[7:] != string(pod.UID)[:8] || pod.Namespace != DefaultNamespace {
		t.Errorf("NewPod named the pod %s/%s (uid %s)", pod.Namespace, pod.Name, pod.UID)
	}
}

func TestNewCreateRequest(t *testing.T) {
	reader := Mount(Mount(ShellContainer("reader", "true"), "cfg", "/etc/cfg", "", true), "sa", "/var/run/sa", "", true)
	reader = Mount(reader, "cfg", "/etc/app.conf", "app.conf", true) // the same volume twice: sent once
	writer := Mount(Mount(ShellContainer("writer", "true"), "creds", "/creds", "", true), "scratch", "/s", "", false)
	init := Mount(ShellContainer("setup", "true"), "cfg", "/etc/cfg", "", true)
	pod := WithVolumes(WithInit(NewPod("objects", reader, writer), init),
		ConfigMapVolume("cfg", "app", nil), SecretVolume("creds", "db", nil), ServiceAccountVolume("sa"),
		EmptyDirVolume("scratch"), ConfigMapVolume("missing", "not-sent", nil))
	cm := NewConfigMap(DefaultNamespace, "app", map[string]string{"app.conf": "x"})
	other := NewConfigMap(DefaultNamespace, "unrelated", map[string]string{"k": "v"})
	s := NewSecret(DefaultNamespace, "db", map[string][]byte{"pw": []byte("p")})
	req := NewCreateRequest(pod, Objects{ConfigMaps: []v1.ConfigMap{cm, other}, Secrets: []v1.Secret{s},
		Projected: map[string]map[string]string{"sa": ServiceAccountFiles(DefaultNamespace)}})

	if req.Pod != pod || len(req.Containers) != 3 {
		t.Fatalf("request has %d container entries, want 3 (init first)", len(req.Containers))
	}
	names := []string{req.Containers[0].Name, req.Containers[1].Name, req.Containers[2].Name}
	if strings.Join(names, ",") != "setup,reader,writer" {
		t.Errorf("container entries in order %v, want setup,reader,writer", names)
	}
	count := func(rc interlink.RetrievedContainer) [3]int {
		return [3]int{len(rc.ConfigMaps), len(rc.Secrets), len(rc.ProjectedVolumeMaps)}
	}
	for i, want := range [][3]int{{1, 0, 0}, {1, 0, 1}, {0, 1, 0}} {
		if got := count(req.Containers[i]); got != want {
			t.Errorf("entry %s carries %v configMaps/secrets/projected maps, want %v", names[i], got, want)
		}
	}
	if pm := req.Containers[1].ProjectedVolumeMaps[0]; pm.Name != "sa" || pm.Data["ca.crt"] != TestCACert ||
		pm.Data["namespace"] != DefaultNamespace {
		t.Errorf("projected volume map = %+v; its name must be the pod volume's and its data the files", pm)
	}
	if req.Containers[0].ConfigMaps[0].Name != "app" || req.Containers[2].Secrets[0].Name != "db" {
		t.Errorf("wrong objects attached: %+v", req.Containers)
	}
}

func TestCheckStatus(t *testing.T) {
	pod := WithInit(NewPod("check", ShellContainer("a", "true"), ShellContainer("b", "true")), ShellContainer("i", "true"))
	good := func() interlink.PodStatus {
		return interlink.PodStatus{PodUID: string(pod.UID), PodName: pod.Name, PodNamespace: pod.Namespace,
			InitContainers: []v1.ContainerStatus{exited("i", 0)}, Containers: []v1.ContainerStatus{running("a"), waiting("b")}}
	}
	if err := CheckStatus(pod, good()); err != nil {
		t.Fatalf("a good status: %v", err)
	}
	for name, mutate := range map[string]func(*interlink.PodStatus){
		"other UID":          func(s *interlink.PodStatus) { s.PodUID = "x" },
		"other name":         func(s *interlink.PodStatus) { s.PodName = "x" },
		"no namespace":       func(s *interlink.PodStatus) { s.PodNamespace = "" },
		"empty containers":   func(s *interlink.PodStatus) { s.Containers = nil },
		"missing init":       func(s *interlink.PodStatus) { s.InitContainers = nil },
		"swapped containers": func(s *interlink.PodStatus) { s.Containers[0], s.Containers[1] = s.Containers[1], s.Containers[0] },
		"two states": func(s *interlink.PodStatus) {
			s.Containers[0].State.Terminated = exited("a", 0).State.Terminated
		},
		"ready before started": func(s *interlink.PodStatus) {
			s.Containers[0].Ready, s.Containers[0].Started = true, new(false)
		},
	} {
		st := good()
		mutate(&st)
		if err := CheckStatus(pod, st); err == nil {
			t.Errorf("%s: CheckStatus accepted it", name)
		}
	}
}

func waiting(name string) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
}

func running(name string) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Running: &v1.ContainerStateRunning{}}}
}

func exited(name string, code int32) v1.ContainerStatus {
	return v1.ContainerStatus{Name: name, State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: code}}}
}
