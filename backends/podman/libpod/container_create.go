package libpod

import "context"

// ContainerSpec is the body of a container create (Podman's SpecGenerator, the fields this client uses).
type ContainerSpec struct {
	Name       string            `json:"name"`
	Pod        string            `json:"pod,omitempty"`
	Image      string            `json:"image"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Command    []string          `json:"command,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	WorkDir    string            `json:"work_dir,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Hostname   string            `json:"hostname,omitempty"`
	// PortMappings, HostAdd and Sysctl are a container's own only in a pod without an infra container
	// (which otherwise holds them for every container of the pod).
	PortMappings []PortMapping     `json:"portmappings,omitempty"`
	HostAdd      []string          `json:"hostadd,omitempty"`
	Sysctl       map[string]string `json:"sysctl,omitempty"`

	Mounts  []Mount        `json:"mounts,omitempty"`
	Volumes []*NamedVolume `json:"volumes,omitempty"`

	ResourceLimits *LinuxResources `json:"resource_limits,omitempty"`
	Rlimits        []POSIXRlimit   `json:"r_limits,omitempty"`

	// RestartPolicy is "no", "on-failure", "always" or "unless-stopped"; RestartTries bounds on-failure.
	RestartPolicy string `json:"restart_policy,omitempty"`
	RestartTries  *uint  `json:"restart_tries,omitempty"`

	StopSignal  *int  `json:"stop_signal,omitempty"`
	StopTimeout *uint `json:"stop_timeout,omitempty"`

	User               string   `json:"user,omitempty"`
	Groups             []string `json:"groups,omitempty"`
	Privileged         bool     `json:"privileged,omitempty"`
	ReadOnlyFilesystem bool     `json:"read_only_filesystem,omitempty"`
	CapAdd             []string `json:"cap_add,omitempty"`
	CapDrop            []string `json:"cap_drop,omitempty"`
	NoNewPrivileges    bool     `json:"no_new_privileges,omitempty"`

	Terminal bool `json:"terminal,omitempty"`
	Stdin    bool `json:"stdin,omitempty"`
	// ImageVolumeMode "ignore" keeps the image's declared volumes from becoming anonymous volumes that would
	// outlive the pod.
	ImageVolumeMode string `json:"image_volume_mode,omitempty"`
}

// ContainerCreate creates a container (in a pod when spec.Pod is set) and returns its id.
func (c *Client) ContainerCreate(ctx context.Context, spec ContainerSpec) (string, error) {
	var out struct {
		ID       string   `json:"Id"`
		Warnings []string `json:"Warnings"`
	}
	err := c.call(ctx, "create container "+spec.Name, "POST", "/containers/create", nil, spec, &out)
	return out.ID, err
}
