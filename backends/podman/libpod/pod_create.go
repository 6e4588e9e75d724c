package libpod

import "context"

// PodSpec is the body of a pod create (Podman's PodSpecGenerator, the fields this client uses).
type PodSpec struct {
	Name         string            `json:"name"`
	Labels       map[string]string `json:"labels,omitempty"`
	Hostname     string            `json:"hostname,omitempty"`
	PortMappings []PortMapping     `json:"portmappings,omitempty"`
	// Share lists the namespaces the pod's containers share through its infra container (net, ipc, uts...).
	Share   []string  `json:"shared_namespaces,omitempty"`
	NetNS   Namespace `json:"netns,omitempty"`
	HostAdd []string  `json:"hostadd,omitempty"`
	// Sysctl is set in the pod's namespaces (its infra container's).
	Sysctl map[string]string `json:"sysctl,omitempty"`
	// NoInfra makes a pod without an infra container: its containers share no namespace, and each sets its
	// own hostname, host entries and published ports.
	NoInfra bool `json:"no_infra,omitempty"`
}

// PodCreate creates a pod, with its infra container unless spec.NoInfra, and returns its id.
func (c *Client) PodCreate(ctx context.Context, spec PodSpec) (string, error) {
	var out struct {
		ID string `json:"Id"`
	}
	err := c.call(ctx, "create pod "+spec.Name, "POST", "/pods/create", nil, spec, &out)
	return out.ID, err
}
