package libpod

import "time"

// Mount is an OCI mount of a container (bind, tmpfs...).
type Mount struct {
	Destination string   `json:"destination"`
	Type        string   `json:"type,omitempty"`
	Source      string   `json:"source,omitempty"`
	Options     []string `json:"options,omitempty"`
}

// NamedVolume mounts a Podman volume into a container.
type NamedVolume struct {
	Name    string   `json:"Name"`
	Dest    string   `json:"Dest"`
	Options []string `json:"Options,omitempty"`
	SubPath string   `json:"SubPath,omitempty"`
}

// PortMapping publishes a container port on the host.
type PortMapping struct {
	HostIP        string `json:"host_ip,omitempty"`
	ContainerPort uint16 `json:"container_port"`
	HostPort      uint16 `json:"host_port,omitempty"`
	Range         uint16 `json:"range,omitempty"`
	Protocol      string `json:"protocol,omitempty"`
}

// Namespace selects a namespace mode, e.g. {"nsmode": "host"}.
type Namespace struct {
	NSMode string `json:"nsmode,omitempty"`
	Value  string `json:"value,omitempty"`
}

// LinuxResources are the OCI cgroup limits of a container.
type LinuxResources struct {
	Memory *LinuxMemory `json:"memory,omitempty"`
	CPU    *LinuxCPU    `json:"cpu,omitempty"`
}

// LinuxMemory limits memory, in bytes.
type LinuxMemory struct {
	Limit       *int64 `json:"limit,omitempty"`
	Reservation *int64 `json:"reservation,omitempty"`
	Swap        *int64 `json:"swap,omitempty"`
}

// LinuxCPU limits CPU time: Quota microseconds of CPU per Period microseconds; Shares weighs contention.
type LinuxCPU struct {
	Shares *uint64 `json:"shares,omitempty"`
	Quota  *int64  `json:"quota,omitempty"`
	Period *uint64 `json:"period,omitempty"`
}

// POSIXRlimit is one resource limit of the container's processes.
type POSIXRlimit struct {
	Type string `json:"type"`
	Hard uint64 `json:"hard"`
	Soft uint64 `json:"soft"`
}

// ContainerState is the state of a container as inspect reports it.
type ContainerState struct {
	Status     string    `json:"Status"` // created, configured, running, exited, stopped, paused...
	Running    bool      `json:"Running"`
	Restarting bool      `json:"Restarting"`
	OOMKilled  bool      `json:"OOMKilled"`
	Dead       bool      `json:"Dead"`
	Pid        int       `json:"Pid"`
	ExitCode   int32     `json:"ExitCode"`
	Error      string    `json:"Error"`
	StartedAt  time.Time `json:"StartedAt"`
	FinishedAt time.Time `json:"FinishedAt"`
}

// ListContainer is one container of a list query.
type ListContainer struct {
	ID        string            `json:"Id"`
	Names     []string          `json:"Names"`
	Image     string            `json:"Image"`
	ImageID   string            `json:"ImageID"`
	Labels    map[string]string `json:"Labels"`
	State     string            `json:"State"`
	Created   time.Time         `json:"Created"`
	Exited    bool              `json:"Exited"`
	ExitCode  int32             `json:"ExitCode"`
	ExitedAt  int64             `json:"ExitedAt"`  // unix seconds
	StartedAt int64             `json:"StartedAt"` // unix seconds
	Pod       string            `json:"Pod"`
	PodName   string            `json:"PodName"`
	IsInfra   bool              `json:"IsInfra"`
	Pid       int               `json:"Pid"`
}

// ListPod is one pod of a list query.
type ListPod struct {
	ID         string            `json:"Id"`
	Name       string            `json:"Name"`
	Status     string            `json:"Status"`
	Created    time.Time         `json:"Created"`
	InfraID    string            `json:"InfraId"`
	Labels     map[string]string `json:"Labels"`
	Containers []struct {
		ID     string `json:"Id"`
		Names  string `json:"Names"`
		Status string `json:"Status"`
	} `json:"Containers"`
}
