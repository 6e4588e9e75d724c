package backend

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// wire sends m through its protobuf encoding, as gRPC does.
func wire[M proto.Message](t *testing.T, m M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := m.ProtoReflect().New().Interface().(M)
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCreateRequestLossless(t *testing.T) {
	grace := int64(7)
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", Labels: map[string]string{"a": "b"},
			Annotations: map[string]string{"interlink.eu/pod-ip": "10.0.0.7"}},
		Spec: v1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []v1.Container{{Name: "c", Image: "busybox:latest",
				Resources: v1.ResourceRequirements{Limits: v1.ResourceList{
					v1.ResourceCPU: resource.MustParse("500m"), "nvidia.com/gpu": resource.MustParse("1")}},
				Env: []v1.EnvVar{{Name: "N", ValueFrom: &v1.EnvVarSource{FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
			}},
			Volumes: []v1.Volume{{Name: "v", VolumeSource: v1.VolumeSource{NFS: &v1.NFSVolumeSource{Server: "s", Path: "/x"}}}},
		},
	}
	req := CreateRequest{Pod: pod, JobScript: "#!/bin/sh\n", Containers: []interlink.RetrievedContainer{{Name: "c",
		Secrets:             []v1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Data: map[string][]byte{"k": {0, 0xff}}}},
		ProjectedVolumeMaps: []v1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "kube-api-access"}, Data: map[string]string{"ca.crt": "-----BEGIN\nx\n-----END\n"}}},
	}}}
	in, err := createRequestToProto(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := createRequestFromProto(wire(t, in))
	if err != nil {
		t.Fatal(err)
	}
	// Compare through JSON: resource.Quantity caches its string form, which reflect.DeepEqual would see.
	want, _ := json.Marshal(req)
	have, _ := json.Marshal(got)
	if string(want) != string(have) {
		t.Errorf("create request changed on the wire:\n got %s\nwant %s", have, want)
	}
}

func TestLogRequestRoundTrip(t *testing.T) {
	since := time.Date(2026, 11, 27, 5, 0, 0, 123456789, time.UTC)
	for _, opts := range []interlink.LogOpts{
		{},
		{Tail: 10, Timestamps: true, Follow: true, Previous: true, SinceSeconds: 30},
		{LimitBytes: 100, SinceTime: since},
	} {
		req := LogRequest{LogStruct: interlink.LogStruct{Namespace: "ns", PodUID: "u", PodName: "p",
			ContainerName: "c", Opts: opts}, RemoteID: "r"}
		got := logRequestFromProto(wire(t, logRequestToProto(req)))
		if !got.Opts.SinceTime.Equal(req.Opts.SinceTime) || got.Opts.SinceTime.IsZero() != req.Opts.SinceTime.IsZero() {
			t.Errorf("SinceTime %v came back as %v", req.Opts.SinceTime, got.Opts.SinceTime)
		}
		got.Opts.SinceTime, req.Opts.SinceTime = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, req) {
			t.Errorf("log request %+v came back as %+v", req, got)
		}
	}
}

func TestCapacityUnknownIsNotZero(t *testing.T) {
	zero := int64(0)
	for _, c := range []Capacity{{}, {CPUMilli: &zero}} {
		r, err := capacityToProto(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := capacityFromProto(wire(t, r))
		if err != nil {
			t.Fatal(err)
		}
		if (got.CPUMilli == nil) != (c.CPUMilli == nil) || got.MemoryBytes != nil || got.Pods != nil {
			t.Errorf("capacity %+v came back as %+v: unknown and zero must stay apart", c, got)
		}
	}
}

func TestPodRecordRoundTrip(t *testing.T) {
	created := time.Date(2026, 11, 27, 5, 0, 0, 42, time.UTC)
	for _, rec := range []PodRecord{
		{UID: "u", Namespace: "ns", Name: "p", RemoteID: "r", Phase: v1.PodRunning, Created: created},
		{UID: "u2"},
	} {
		got := podRecordFromProto(wire(t, podRecordToProto(rec)))
		if !got.Created.Equal(rec.Created) || got.Created.IsZero() != rec.Created.IsZero() {
			t.Errorf("Created %v came back as %v", rec.Created, got.Created)
		}
		got.Created, rec.Created = time.Time{}, time.Time{}
		if got != rec {
			t.Errorf("record %+v came back as %+v", rec, got)
		}
	}
}

// A status crosses the wire whole, and two decodings of one answer are reflect.DeepEqual: the dispatcher
// takes a status that compares unequal to the last one for a change, and journals it.
func TestStatusesLossless(t *testing.T) {
	started := metav1.NewTime(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	finished := metav1.NewTime(started.Add(90 * time.Second))
	yes := true
	sts := []interlink.PodStatus{
		{PodName: "p", PodUID: "u1", PodNamespace: "ns", JobID: "42",
			InitContainers: []v1.ContainerStatus{{Name: "init", Ready: false, Image: "busybox:latest", ImageID: "sha256:ab",
				State: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed",
					StartedAt: started, FinishedAt: finished}}}},
			Containers: []v1.ContainerStatus{{Name: "c", Ready: true, Started: &yes, RestartCount: 3, ContainerID: "docker://abc",
				State: v1.ContainerState{Running: &v1.ContainerStateRunning{StartedAt: finished}},
				LastTerminationState: v1.ContainerState{Terminated: &v1.ContainerStateTerminated{ExitCode: 137,
					Reason: "OOMKilled", Message: "out of memory", Signal: 9, StartedAt: started, FinishedAt: finished}},
				AllocatedResources: v1.ResourceList{v1.ResourceMemory: resource.MustParse("64Mi")}}},
		},
		{PodName: "q", PodUID: "u2", PodNamespace: "ns", Containers: []v1.ContainerStatus{{Name: "c",
			State: v1.ContainerState{Waiting: &v1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "no such image"}}}}},
	}
	in, err := statusesToProto(sts)
	if err != nil {
		t.Fatal(err)
	}
	decode := func() []interlink.PodStatus {
		var out []interlink.PodStatus
		for _, ps := range wire(t, in).GetStatuses() {
			st, err := statusFromProto(ps)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, st)
		}
		return out
	}
	got := decode()
	// Only a missing list changes: null becomes [].
	normal := append([]interlink.PodStatus(nil), sts...)
	normal[1].InitContainers = []v1.ContainerStatus{}
	want, _ := json.Marshal(normal)
	have, _ := json.Marshal(got)
	if string(want) != string(have) {
		t.Errorf("statuses changed on the wire:\n got %s\nwant %s", have, want)
	}
	if again := decode(); !reflect.DeepEqual(got, again) {
		t.Error("two decodings of one answer are not reflect.DeepEqual: every poll would look like a change")
	}
}
