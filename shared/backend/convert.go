package backend

import (
	"encoding/json"
	"fmt"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	v1 "k8s.io/api/core/v1"

	backendpb "github.com/interlink-hq/interlink-dispatcher/shared/backend/proto"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// The conversions between the Go contract and its wire form. Kubernetes objects go in Kubernetes' protobuf
// encoding, interLink's own types as their JSON (see proto/backend.proto); a decoding failure on either side
// is the other side's bug, so it is an error naming what could not be read.

func encodeJSON(what string, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, Errorf(KindInternal, "cannot encode %s as JSON: %w", what, err)
	}
	return b, nil
}

// kubeMessage is a Kubernetes API type with the protobuf encoding k8s.io/api generates for it.
type kubeMessage interface {
	Marshal() ([]byte, error)
	Unmarshal([]byte) error
}

func encodeKube(what string, m kubeMessage) ([]byte, error) {
	b, err := m.Marshal()
	if err != nil {
		return nil, Errorf(KindInternal, "cannot encode %s: %w", what, err)
	}
	return b, nil
}

func decodePod(b []byte) (*v1.Pod, error) {
	pod := &v1.Pod{}
	if err := pod.Unmarshal(b); err != nil {
		return nil, Errorf(KindInvalid, "the pod sent to the backend is not a Kubernetes protobuf encoding of a pod: %w", err)
	}
	return pod, nil
}

func descriptionToProto(d Description) *backendpb.DescribeResponse {
	return &backendpb.DescribeResponse{
		Name:            d.Name,
		Version:         d.Version,
		ProtocolVersion: int32(d.ProtocolVersion),
		Engine:          d.Engine,
		Capabilities: &backendpb.Capabilities{
			VolumeKinds:       d.Capabilities.VolumeKinds,
			Features:          d.Capabilities.Features,
			ExtendedResources: d.Capabilities.ExtendedResources,
		},
	}
}

func descriptionFromProto(r *backendpb.DescribeResponse) Description {
	d := Description{
		Name:            r.GetName(),
		Version:         r.GetVersion(),
		ProtocolVersion: int(r.GetProtocolVersion()),
		Engine:          r.GetEngine(),
	}
	if c := r.GetCapabilities(); c != nil {
		d.Capabilities = Capabilities{
			VolumeKinds:       c.GetVolumeKinds(),
			Features:          c.GetFeatures(),
			ExtendedResources: c.GetExtendedResources(),
		}
	}
	return d
}

func capacityToProto(c Capacity) (*backendpb.CapacityResponse, error) {
	r := &backendpb.CapacityResponse{
		CpuMilli:     c.CPUMilli,
		MemoryBytes:  c.MemoryBytes,
		Pods:         c.Pods,
		Accelerators: c.Accelerators,
	}
	for i := range c.Taints {
		b, err := encodeKube("a taint", &c.Taints[i])
		if err != nil {
			return nil, err
		}
		r.Taints = append(r.Taints, b)
	}
	return r, nil
}

func capacityFromProto(r *backendpb.CapacityResponse) (Capacity, error) {
	c := Capacity{
		CPUMilli:     r.CpuMilli,
		MemoryBytes:  r.MemoryBytes,
		Pods:         r.Pods,
		Accelerators: r.GetAccelerators(),
	}
	for _, b := range r.GetTaints() {
		var t v1.Taint
		if err := t.Unmarshal(b); err != nil {
			return Capacity{}, Errorf(KindInternal, "the backend sent a taint that cannot be decoded: %w", err)
		}
		c.Taints = append(c.Taints, t)
	}
	return c, nil
}

func createRequestToProto(req CreateRequest) (*backendpb.CreateRequest, error) {
	if req.Pod == nil {
		return nil, Invalid("the create request has no pod")
	}
	pod, err := encodeKube("the pod", req.Pod)
	if err != nil {
		return nil, err
	}
	r := &backendpb.CreateRequest{Pod: pod, JobScript: req.JobScript}
	for i := range req.Containers {
		b, err := encodeJSON("the objects of container "+req.Containers[i].Name, &req.Containers[i])
		if err != nil {
			return nil, err
		}
		r.Containers = append(r.Containers, b)
	}
	return r, nil
}

func createRequestFromProto(r *backendpb.CreateRequest) (CreateRequest, error) {
	pod, err := decodePod(r.GetPod())
	if err != nil {
		return CreateRequest{}, err
	}
	req := CreateRequest{Pod: pod, JobScript: r.GetJobScript()}
	for i, b := range r.GetContainers() {
		var c interlink.RetrievedContainer
		if err := json.Unmarshal(b, &c); err != nil {
			return CreateRequest{}, Errorf(KindInvalid, "container entry %d of the create request is not valid JSON: %w", i, err)
		}
		req.Containers = append(req.Containers, c)
	}
	return req, nil
}

func deleteRequestToProto(req DeleteRequest) (*backendpb.DeleteRequest, error) {
	if req.Pod == nil {
		return nil, Invalid("the delete request has no pod")
	}
	pod, err := encodeKube("the pod", req.Pod)
	if err != nil {
		return nil, err
	}
	return &backendpb.DeleteRequest{Pod: pod, RemoteId: req.RemoteID, GracePeriod: durationpb.New(req.GracePeriod)}, nil
}

func deleteRequestFromProto(r *backendpb.DeleteRequest) (DeleteRequest, error) {
	pod, err := decodePod(r.GetPod())
	if err != nil {
		return DeleteRequest{}, err
	}
	return DeleteRequest{Pod: pod, RemoteID: r.GetRemoteId(), GracePeriod: r.GetGracePeriod().AsDuration()}, nil
}

func logRequestToProto(req LogRequest) *backendpb.LogsRequest {
	o := req.Opts
	r := &backendpb.LogsRequest{
		Namespace:     req.Namespace,
		PodUid:        req.PodUID,
		PodName:       req.PodName,
		ContainerName: req.ContainerName,
		RemoteId:      req.RemoteID,
		Options: &backendpb.LogOptions{
			Tail:         int64(o.Tail),
			LimitBytes:   int64(o.LimitBytes),
			Timestamps:   o.Timestamps,
			Follow:       o.Follow,
			Previous:     o.Previous,
			SinceSeconds: int64(o.SinceSeconds),
		},
	}
	if !o.SinceTime.IsZero() {
		r.Options.SinceTime = timestamppb.New(o.SinceTime)
	}
	return r
}

func logRequestFromProto(r *backendpb.LogsRequest) LogRequest {
	o := r.GetOptions()
	req := LogRequest{
		LogStruct: interlink.LogStruct{
			Namespace:     r.GetNamespace(),
			PodUID:        r.GetPodUid(),
			PodName:       r.GetPodName(),
			ContainerName: r.GetContainerName(),
			Opts: interlink.LogOpts{
				Tail:         int(o.GetTail()),
				LimitBytes:   int(o.GetLimitBytes()),
				Timestamps:   o.GetTimestamps(),
				Follow:       o.GetFollow(),
				Previous:     o.GetPrevious(),
				SinceSeconds: int(o.GetSinceSeconds()),
			},
		},
		RemoteID: r.GetRemoteId(),
	}
	if o.GetSinceTime() != nil {
		req.Opts.SinceTime = o.GetSinceTime().AsTime()
	}
	return req
}

func podRecordToProto(p PodRecord) *backendpb.PodRecord {
	r := &backendpb.PodRecord{
		Uid:       p.UID,
		Namespace: p.Namespace,
		Name:      p.Name,
		RemoteId:  p.RemoteID,
		Phase:     string(p.Phase),
	}
	if !p.Created.IsZero() {
		r.Created = timestamppb.New(p.Created)
	}
	return r
}

func podRecordFromProto(r *backendpb.PodRecord) PodRecord {
	p := PodRecord{
		UID:       r.GetUid(),
		Namespace: r.GetNamespace(),
		Name:      r.GetName(),
		RemoteID:  r.GetRemoteId(),
		Phase:     v1.PodPhase(r.GetPhase()),
	}
	if r.GetCreated() != nil {
		p.Created = r.GetCreated().AsTime()
	}
	return p
}

func metricsToProto(mfs []*dto.MetricFamily) (*backendpb.MetricsResponse, error) {
	r := &backendpb.MetricsResponse{}
	for _, mf := range mfs {
		b, err := proto.Marshal(mf)
		if err != nil {
			return nil, Errorf(KindInternal, "cannot encode metric family %q: %w", mf.GetName(), err)
		}
		r.MetricFamilies = append(r.MetricFamilies, b)
	}
	return r, nil
}

func metricsFromProto(r *backendpb.MetricsResponse) ([]*dto.MetricFamily, error) {
	var mfs []*dto.MetricFamily
	for i, b := range r.GetMetricFamilies() {
		mf := &dto.MetricFamily{}
		if err := proto.Unmarshal(b, mf); err != nil {
			return nil, Errorf(KindInternal, "metric family %d sent by the backend cannot be decoded: %w", i, err)
		}
		mfs = append(mfs, mf)
	}
	return mfs, nil
}

func statusesToProto(sts []interlink.PodStatus) (*backendpb.StatusResponse, error) {
	r := &backendpb.StatusResponse{Statuses: make([]*backendpb.PodStatus, len(sts))}
	for i := range sts {
		st := &sts[i]
		ps := &backendpb.PodStatus{Name: st.PodName, Uid: st.PodUID, Namespace: st.PodNamespace, JobId: st.JobID}
		var err error
		if ps.Containers, err = encodeContainerStatuses(st.PodUID, st.Containers); err != nil {
			return nil, err
		}
		if ps.InitContainers, err = encodeContainerStatuses(st.PodUID, st.InitContainers); err != nil {
			return nil, err
		}
		r.Statuses[i] = ps
	}
	return r, nil
}

func encodeContainerStatuses(uid string, css []v1.ContainerStatus) ([][]byte, error) {
	out := make([][]byte, len(css))
	for i := range css {
		b, err := encodeKube(fmt.Sprintf("the status of container %s of pod %s", css[i].Name, uid), &css[i])
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// statusFromProto is the status of one pod. Its container lists are never nil: interLink is answered
// [] rather than null for a pod without containers of a kind.
func statusFromProto(ps *backendpb.PodStatus) (interlink.PodStatus, error) {
	st := interlink.PodStatus{PodName: ps.GetName(), PodUID: ps.GetUid(), PodNamespace: ps.GetNamespace(), JobID: ps.GetJobId()}
	var err error
	if st.Containers, err = decodeContainerStatuses(st.PodUID, ps.GetContainers()); err != nil {
		return interlink.PodStatus{}, err
	}
	if st.InitContainers, err = decodeContainerStatuses(st.PodUID, ps.GetInitContainers()); err != nil {
		return interlink.PodStatus{}, err
	}
	return st, nil
}

func decodeContainerStatuses(uid string, bs [][]byte) ([]v1.ContainerStatus, error) {
	out := make([]v1.ContainerStatus, len(bs))
	for i, b := range bs {
		if err := out[i].Unmarshal(b); err != nil {
			return nil, Errorf(KindInternal, "the backend sent a container status of pod %s that cannot be decoded: %w", uid, err)
		}
	}
	return out, nil
}
