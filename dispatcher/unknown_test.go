package dispatcher

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

func statusOne(t *testing.T, e *testEnv, p *v1.Pod) v1.ContainerStatus {
	t.Helper()
	code, body := e.do("GET", "/status", []*v1.Pod{p})
	if code != http.StatusOK {
		t.Fatalf("/status: %d %s", code, body)
	}
	var st []interlink.PodStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil || len(st) != 1 || len(st[0].Containers) != 1 {
		t.Fatalf("/status answer %s (%v)", body, err)
	}
	return st[0].Containers[0]
}

// The virtual kubelet asks for a pod's status before its create arrives (it fetches the pod's volumes
// first, through a rate-limited client): such a pod is waiting, not gone, so that Kubernetes does not mark
// it Failed before it was created. Once the virtual kubelet holds a create answer (JobID), or createWait
// after the first status request, an unknown pod is gone as before.
func TestStatusOfPodWhoseCreateHasNotArrived(t *testing.T) {
	e := startEnv(t, testConfig(t, tempDir(t), "alpha"), map[string]*memBackend{"alpha": newMem("alpha")})

	young := testPod("uid-young", "young")
	young.CreationTimestamp = metav1.NewTime(time.Now().Add(-20 * time.Second))
	cs := statusOne(t, e, young)
	if cs.State.Waiting == nil || cs.State.Waiting.Reason != pod.ReasonContainerCreating ||
		!strings.Contains(cs.State.Waiting.Message, "has not received this pod's create yet") {
		t.Errorf("a young pod without a create: %+v, want waiting for its create", cs.State)
	}

	answered := young.DeepCopy()
	answered.Annotations = map[string]string{annotationJobID: "alpha-7"}
	if cs := statusOne(t, e, answered); cs.State.Terminated == nil || cs.State.Terminated.Reason != pod.ReasonNotFound {
		t.Errorf("a pod whose create was answered and that is gone: %+v, want NotFound", cs.State)
	}

	// The young pod's create arrives: from then on it is the backend's pod.
	if code, body := e.do("POST", "/create", createBody(young)); code != http.StatusOK {
		t.Fatalf("/create: %d %s", code, body)
	}
	if cs := statusOne(t, e, young); cs.State.Running == nil {
		t.Errorf("the created pod: %+v, want running", cs.State)
	}
}

// The wait for a create is timed from the first status request for the pod, not from its creation in
// Kubernetes: a pod that sat unscheduled for longer than createWait is still waiting at its first status.
// A create or a delete forgets the first request.
func TestCreateWaitStartsAtFirstStatusRequest(t *testing.T) {
	e := startEnv(t, testConfig(t, tempDir(t), "alpha"), map[string]*memBackend{"alpha": newMem("alpha")})
	waiting := func(st interlink.PodStatus) bool {
		w := st.Containers[0].State.Waiting
		return w != nil && w.Reason == pod.ReasonContainerCreating
	}
	gone := func(st interlink.PodStatus) bool {
		tm := st.Containers[0].State.Terminated
		return tm != nil && tm.Reason == pod.ReasonNotFound
	}

	old := testPod("uid-old", "old")
	old.CreationTimestamp = metav1.NewTime(time.Now().Add(-createWait - time.Hour))
	if cs := statusOne(t, e, old); cs.State.Waiting == nil || cs.State.Waiting.Reason != pod.ReasonContainerCreating {
		t.Fatalf("first status of a pod created %s ago whose create has not arrived: %+v, want waiting for it",
			createWait+time.Hour, cs.State)
	}
	first := e.srv.core.asked.m["uid-old"].first
	nf := pod.NotFoundStatus(old, "")
	if st := e.srv.core.unknownPodStatus(old, nf, first.Add(createWait-time.Second)); !waiting(st) {
		t.Errorf("%s after the first status request: %+v, want still waiting", createWait-time.Second, st.Containers[0].State)
	}
	if st := e.srv.core.unknownPodStatus(old, nf, first.Add(createWait+time.Second)); !gone(st) {
		t.Errorf("%s after the first status request: %+v, want NotFound", createWait+time.Second, st.Containers[0].State)
	}
	// Later requests do not move the start of the wait.
	if st := e.srv.core.unknownPodStatus(old, nf, first.Add(createWait+time.Minute)); !gone(st) {
		t.Errorf("%s after the first status request: %+v, want NotFound", createWait+time.Minute, st.Containers[0].State)
	}

	// A delete forgets it: asked about again, the pod starts a new wait.
	if code, body := e.do("POST", "/delete", old); code != http.StatusOK {
		t.Fatalf("/delete: %d %s", code, body)
	}
	if _, ok := e.srv.core.asked.m["uid-old"]; ok {
		t.Error("the first status request is still remembered after the pod's delete")
	}
	later := first.Add(createWait + 2*time.Minute)
	if st := e.srv.core.unknownPodStatus(old, nf, later); !waiting(st) {
		t.Errorf("first request after the delete: %+v, want waiting", st.Containers[0].State)
	}

	// A create forgets it too, whatever its answer.
	q := testPod("uid-created", "created")
	statusOne(t, e, q)
	if _, ok := e.srv.core.asked.m["uid-created"]; !ok {
		t.Fatal("the first status request of an unknown pod is not remembered")
	}
	if code, body := e.do("POST", "/create", createBody(q)); code != http.StatusOK {
		t.Fatalf("/create: %d %s", code, body)
	}
	if _, ok := e.srv.core.asked.m["uid-created"]; ok {
		t.Error("the first status request is still remembered after the pod's create")
	}
}

func TestAsksBounded(t *testing.T) {
	var as asks
	now := time.Now()
	for i := range askMax + 10 {
		as.first(fmt.Sprintf("uid-%d", i), now)
	}
	if len(as.m) > askMax {
		t.Errorf("%d first requests kept, at most %d", len(as.m), askMax)
	}
	// A pod asked about every few seconds keeps its first request; one not asked about for askTTL starts anew.
	as.first("steady", now)
	for d := time.Minute; d < 2*askTTL; d += time.Minute {
		if got := as.first("steady", now.Add(d)); !got.Equal(now) {
			t.Fatalf("a pod asked about every minute: first request %s, want %s", got, now)
		}
	}
	as.first("left", now)
	if got := as.first("left", now.Add(askTTL+time.Second)); !got.Equal(now.Add(askTTL + time.Second)) {
		t.Errorf("a pod not asked about for %s: first request %s, want the new one", askTTL+time.Second, got)
	}
}

// A pod whose create this dispatcher refused reports the refusal as its containers' termination, with the
// create's answer as message, for as long as Kubernetes asks; a delete forgets it.
func TestStatusOfRefusedPodCarriesTheRefusal(t *testing.T) {
	mem := newMem("alpha")
	e := startEnv(t, testConfig(t, tempDir(t), "alpha"), map[string]*memBackend{"alpha": mem})
	p := testPod("uid-refused", "refused")
	p.CreationTimestamp = metav1.NewTime(time.Now())
	p.Spec.Volumes = []v1.Volume{{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/etc"}}}}
	code, answer := e.do("POST", "/create", createBody(p))
	if code < 400 {
		t.Fatalf("/create of a pod with a hostPath the backend does not take: %d %s", code, answer)
	}
	for range 2 {
		cs := statusOne(t, e, p)
		tm := cs.State.Terminated
		if tm == nil || tm.Reason != ReasonCreateRefused || tm.ExitCode == 0 ||
			tm.Message != "the dispatcher refused this pod: "+strings.TrimSpace(answer) {
			t.Fatalf("status of the refused pod: %+v, want terminated %s with the answer %q", cs.State, ReasonCreateRefused, answer)
		}
	}

	// A refusal by the backend itself (its Create failed) is reported the same way.
	mem.createErr = backend.Invalid("image name %q is not valid here", "x")
	q := testPod("uid-backend-refused", "q")
	q.CreationTimestamp = metav1.NewTime(time.Now())
	if code, _ := e.do("POST", "/create", createBody(q)); code < 400 {
		t.Fatalf("/create with a failing backend: %d", code)
	}
	if tm := statusOne(t, e, q).State.Terminated; tm == nil || tm.Reason != ReasonCreateRefused || !strings.Contains(tm.Message, `image name "x" is not valid here`) {
		t.Fatalf("status of the pod the backend refused: %+v", tm)
	}

	if code, body := e.do("POST", "/delete", p); code != http.StatusOK {
		t.Fatalf("/delete: %d %s", code, body)
	}
	if cs := statusOne(t, e, p); cs.State.Waiting == nil {
		t.Errorf("after its delete the refused pod is unknown again (waiting while young): %+v", cs.State)
	}
}

func TestRefusalsBounded(t *testing.T) {
	var rs refusals
	now := time.Now()
	for i := range refusalMax + 10 {
		rs.remember(string(rune('a'+i%26))+strings.Repeat("x", i/26), "no", now)
	}
	if len(rs.m) > refusalMax {
		t.Errorf("%d refusals kept, at most %d", len(rs.m), refusalMax)
	}
	rs.remember("late", "no", now)
	if _, ok := rs.get("late", now.Add(refusalTTL+time.Second)); ok {
		t.Error("a refusal older than refusalTTL is still reported")
	}
}

// A pod naming a backend this dispatcher does not have is refused at its create; its status then carries
// that refusal (not a bare not-found), and before its create arrives it is waiting like any other.
func TestStatusOfRouteRefusedPodCarriesTheRefusal(t *testing.T) {
	e := startEnv(t, testConfig(t, tempDir(t), "alpha"), map[string]*memBackend{"alpha": newMem("alpha")})
	p := testPod("uid-nowhere", "nowhere")
	p.Annotations = map[string]string{DefaultRoutingAnnotation: "nope"}
	if cs := statusOne(t, e, p); cs.State.Waiting == nil || cs.State.Waiting.Reason != pod.ReasonContainerCreating {
		t.Errorf("before its create: %+v, want waiting for it", cs.State)
	}
	code, answer := e.do("POST", "/create", createBody(p))
	if code != http.StatusBadRequest || !strings.Contains(answer, `backend "nope", which is not configured`) {
		t.Fatalf("/create of a pod naming an unknown backend: %d %s", code, answer)
	}
	for range 2 {
		cs := statusOne(t, e, p)
		tm := cs.State.Terminated
		if tm == nil || tm.Reason != ReasonCreateRefused || tm.ExitCode != createRefusedExitCode ||
			tm.Message != "the dispatcher refused this pod: "+strings.TrimSpace(answer) {
			t.Fatalf("status of the route-refused pod: %+v, want terminated %s, exit code %d, with the answer %q",
				cs.State, ReasonCreateRefused, createRefusedExitCode, answer)
		}
	}
	if code, body := e.do("POST", "/delete", p); code != http.StatusOK {
		t.Fatalf("/delete: %d %s", code, body)
	}
	if cs := statusOne(t, e, p); cs.State.Terminated != nil && cs.State.Terminated.Reason == ReasonCreateRefused {
		t.Errorf("after its delete the refusal is still reported: %+v", cs.State)
	}
}

// A refusal is kept in the journal: a restarted dispatcher still reports it (interLink never sends the create
// again), and a delete removes it there too.
func TestRefusalSurvivesARestart(t *testing.T) {
	cfg := testConfig(t, tempDir(t), "alpha")
	e := startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	p := testPod("uid-refused-restart", "refused")
	p.Annotations = map[string]string{DefaultRoutingAnnotation: "nope"}
	kept := testPod("uid-refused-deleted", "deleted")
	kept.Annotations = p.Annotations
	var answer string
	for _, q := range []*v1.Pod{p, kept} {
		var code int
		if code, answer = e.do("POST", "/create", createBody(q)); code != http.StatusBadRequest {
			t.Fatalf("/create of a pod naming an unknown backend: %d %s", code, answer)
		}
	}
	if code, body := e.do("POST", "/delete", kept); code != http.StatusOK {
		t.Fatalf("/delete: %d %s", code, body)
	}
	e.close()

	e = startEnv(t, cfg, map[string]*memBackend{"alpha": newMem("alpha")})
	tm := statusOne(t, e, p).State.Terminated
	if tm == nil || tm.Reason != ReasonCreateRefused || tm.Message != "the dispatcher refused this pod: "+strings.TrimSpace(answer) {
		t.Fatalf("status of the refused pod after a restart: %+v, want terminated %s with the answer %q", tm, ReasonCreateRefused, answer)
	}
	if cs := statusOne(t, e, kept); cs.State.Terminated != nil && cs.State.Terminated.Reason == ReasonCreateRefused {
		t.Errorf("a refused pod deleted before the restart reports its refusal again: %+v", cs.State)
	}
	if all, _ := e.journal.All(); len(all) != 0 {
		t.Errorf("refused creates left pod entries in the journal: %+v", all)
	}
}

// Refusals older than refusalTTL are dropped from the journal when it is loaded; undecodable ones too.
func TestRefusalsLoadPrunesTheJournal(t *testing.T) {
	j, err := OpenJournal(tempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	now := time.Now()
	for uid, at := range map[string]time.Time{"fresh": now.Add(-time.Minute), "stale": now.Add(-refusalTTL - time.Minute)} {
		if err := j.PutRefusal(uid, Refusal{Message: "no", At: at}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.update(func(tx *bolt.Tx) error { return tx.Bucket(refusalsBucket).Put([]byte("bad"), []byte("{")) }); err != nil {
		t.Fatal(err)
	}
	var rs refusals
	if err := rs.load(j, quietLogger(t), now); err != nil {
		t.Fatal(err)
	}
	if _, ok := rs.get("fresh", now); !ok || len(rs.m) != 1 {
		t.Errorf("loaded %v, want only the fresh refusal", rs.m)
	}
	left, bad, err := j.Refusals()
	if err != nil || len(left) != 1 || len(bad) != 0 {
		t.Errorf("journal after the load: %v, undecodable %v, %v; want only the fresh refusal", left, bad, err)
	}
}
