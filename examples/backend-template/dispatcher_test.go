package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/examples/backend-template/dispatchertest"
	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// TestLoadedByTheDispatcher starts the interlink-dispatcher command with the template backend loaded from
// its config stanza (dispatchertest.Stanza, as docs/backend-guide.md shows it) and runs a pod through the
// interLink routes: create, status until Succeeded, its log, the ping's capacity, /readyz, delete.
func TestLoadedByTheDispatcher(t *testing.T) {
	d := dispatchertest.Start(t, "")

	rd := d.Do(t, http.MethodGet, "/readyz", nil)
	var ready struct {
		Ready    bool `json:"ready"`
		Backends []struct{ Name, State, Engine string }
	}
	if err := json.Unmarshal(rd.Body, &ready); err != nil || !ready.Ready || len(ready.Backends) != 1 ||
		ready.Backends[0].Name != "process" || ready.Backends[0].State != "up" {
		t.Fatalf("/readyz = %d %s, want the process backend up", rd.Status, rd.Body)
	}

	p := conformance.NewPod("hello", conformance.ShellContainer("main", "echo hello from $POD_NAME; sleep 1; echo done"))
	p.Spec.Containers[0].ImagePullPolicy = ""
	p.Spec.Containers[0].Env = []v1.EnvVar{conformance.FieldRefEnv("POD_NAME", "metadata.name")}
	cr := d.Do(t, http.MethodPost, "/create", interlink.RetrievedPodData{Pod: *p})
	if cr.Status != http.StatusOK {
		t.Fatalf("/create = %d %s", cr.Status, cr.Body)
	}
	var created interlink.CreateStruct
	if err := json.Unmarshal(cr.Body, &created); err != nil || created.PodUID != string(p.UID) || created.PodJID == "" {
		t.Fatalf("/create answered %s, want the pod's UID and a remote id", cr.Body)
	}

	deadline := time.Now().Add(time.Minute)
	for {
		st := d.Do(t, http.MethodGet, "/status", []*v1.Pod{p})
		var sts []interlink.PodStatus
		if err := json.Unmarshal(st.Body, &sts); err != nil || st.Status != http.StatusOK || len(sts) != 1 {
			t.Fatalf("/status = %d %s", st.Status, st.Body)
		}
		if term := sts[0].Containers[0].State.Terminated; term != nil {
			if term.ExitCode != 0 || term.Reason != "Completed" {
				t.Fatalf("the container ended with %+v, want exit code 0, Completed", term)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pod did not finish within a minute: %s", st.Body)
		}
		time.Sleep(300 * time.Millisecond)
	}

	lg := d.Do(t, http.MethodPost, "/getLogs", interlink.LogStruct{Namespace: p.Namespace, PodUID: string(p.UID),
		PodName: p.Name, ContainerName: "main"})
	if want := "hello from " + p.Name + "\ndone\n"; lg.Status != http.StatusOK || string(lg.Body) != want {
		t.Errorf("/getLogs = %d %q, want %q", lg.Status, lg.Body, want)
	}

	ping := d.Do(t, http.MethodPost, "/status", "[]")
	var pr interlink.PingResponse
	if err := json.Unmarshal(ping.Body, &pr); err != nil || pr.Resources == nil || pr.Resources.Pods != "500" {
		t.Errorf("the ping = %d %s, want the template's max_pods (500) as the pod capacity", ping.Status, ping.Body)
	}

	del := d.Do(t, http.MethodPost, "/delete", p)
	if del.Status != http.StatusOK || !strings.Contains(string(del.Body), "deleted from backend process") {
		t.Errorf("/delete = %d %s", del.Status, del.Body)
	}
}
