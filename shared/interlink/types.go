// Package interlink holds the JSON wire types of the interLink plugin protocol, exactly as the interLink API
// server (0.2 to 0.6.2 and later) sends and reads them, which is not always what interLink's published OpenAPI
// file says (it spells PodUID as pod_uid): the field names and JSON keys here are those of the traffic. They are
// part of the protocol: do not rename them.
package interlink

import (
	"time"

	v1 "k8s.io/api/core/v1"
)

// RetrievedPodData is the body of POST /create: the pod and, per container, the objects it mounts.
type RetrievedPodData struct {
	Pod        v1.Pod               `json:"pod"`
	Containers []RetrievedContainer `json:"container"`
	JobConfig  map[string]any       `json:"jobConfig,omitempty"`
	JobScript  string               `json:"jobScript,omitempty"`
}

// RetrievedContainer carries the objects one container (init containers first, then containers, in spec order)
// mounts. An object mounted by two containers comes twice.
type RetrievedContainer struct {
	Name       string         `json:"name"`
	ConfigMaps []v1.ConfigMap `json:"configMaps"`
	Secrets    []v1.Secret    `json:"secrets"`
	// ProjectedVolumeMaps hold one ConfigMap per projected (or downward API) pod volume: its metadata.name is
	// the pod volume's name and its data maps file name to content.
	ProjectedVolumeMaps []v1.ConfigMap `json:"projectedvolumemaps"`
	EmptyDirs           []string       `json:"emptyDirs"`
}

// CreateStruct is the answer to /create.
type CreateStruct struct {
	PodUID string `json:"PodUID"`
	PodJID string `json:"PodJID"`
}

// PodStatus is one element of the answer to /status.
type PodStatus struct {
	PodName        string               `json:"name"`
	PodUID         string               `json:"UID"`
	PodNamespace   string               `json:"namespace"`
	JobID          string               `json:"JID,omitempty"`
	Containers     []v1.ContainerStatus `json:"containers"`
	InitContainers []v1.ContainerStatus `json:"initContainers"`
}

// PingResponse is the answer to the ping (/status with an empty list), interLink 0.6.2 on.
type PingResponse struct {
	Status    string         `json:"status"`
	Resources *PingResources `json:"resources,omitempty"`
	Taints    []v1.Taint     `json:"taints,omitempty"`
}

// PingResources is the capacity of the virtual node. Every field is optional; a field left empty means
// "unknown", never zero.
type PingResources struct {
	CPU          string        `json:"cpu,omitempty"`
	Memory       string        `json:"memory,omitempty"`
	Pods         string        `json:"pods,omitempty"`
	Accelerators []Accelerator `json:"accelerators,omitempty"`
}

// Accelerator is the available count of one extended resource type, e.g. nvidia.com/gpu.
type Accelerator struct {
	ResourceType string `json:"resourceType"`
	Available    string `json:"available"`
}

// LogStruct is the body of /getLogs.
type LogStruct struct {
	Namespace     string  `json:"Namespace"`
	PodUID        string  `json:"PodUID"`
	PodName       string  `json:"PodName"`
	ContainerName string  `json:"ContainerName"`
	Opts          LogOpts `json:"Opts"`
}

// LogOpts are the kubectl logs options interLink relays.
type LogOpts struct {
	Tail         int       `json:"Tail"`
	LimitBytes   int       `json:"Bytes"`
	Timestamps   bool      `json:"Timestamps"`
	Follow       bool      `json:"Follow"`
	Previous     bool      `json:"Previous"`
	SinceSeconds int       `json:"SinceSeconds"`
	SinceTime    time.Time `json:"SinceTime"`
}
