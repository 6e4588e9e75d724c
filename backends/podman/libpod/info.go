package libpod

import "context"

// Info is the part of GET /info this client uses: the host's resources and how the service runs.
type Info struct {
	Host struct {
		CPUs           int    `json:"cpus"`
		MemTotal       int64  `json:"memTotal"`
		Hostname       string `json:"hostname"`
		CgroupVersion  string `json:"cgroupVersion"`
		CgroupManager  string `json:"cgroupManager"`
		EventLogger    string `json:"eventLogger"`
		LogDriver      string `json:"logDriver"`
		NetworkBackend string `json:"networkBackend"`
		Security       struct {
			Rootless bool `json:"rootless"`
		} `json:"security"`
	} `json:"host"`
}

// EnforcesLimits tells whether the service applies CPU and memory limits: rootless Podman on cgroup v1
// ignores them with a mere warning.
func (i Info) EnforcesLimits() bool {
	return !i.Host.Security.Rootless || i.Host.CgroupVersion == "v2"
}

// Info asks the service about its host. Podman builds the answer slowly (see Ping).
func (c *Client) Info(ctx context.Context) (Info, error) {
	var i Info
	err := c.call(ctx, "info", "GET", "/info", nil, nil, &i)
	return i, err
}
