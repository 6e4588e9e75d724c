package libpod

import (
	"context"
	"net/url"
	"time"
)

// InspectContainer is the part of a container inspect this client uses.
type InspectContainer struct {
	ID           string         `json:"Id"`
	Name         string         `json:"Name"`
	Created      time.Time      `json:"Created"`
	State        ContainerState `json:"State"`
	Image        string         `json:"Image"`
	ImageName    string         `json:"ImageName"`
	Pod          string         `json:"Pod"`
	RestartCount int32          `json:"RestartCount"`
	IsInfra      bool           `json:"IsInfra"`
	Config       struct {
		Labels      map[string]string `json:"Labels"`
		StopSignal  uint              `json:"StopSignal"`
		StopTimeout uint              `json:"StopTimeout"`
	} `json:"Config"`
	HostConfig struct {
		LogConfig struct {
			Type string `json:"Type"`
			Path string `json:"Path"`
		} `json:"LogConfig"`
		RestartPolicy struct {
			Name              string `json:"Name"`
			MaximumRetryCount uint   `json:"MaximumRetryCount"`
		} `json:"RestartPolicy"`
		Memory    int64 `json:"Memory"`
		CPUQuota  int64 `json:"CpuQuota"`
		CPUPeriod int64 `json:"CpuPeriod"`
	} `json:"HostConfig"`
}

// ContainerInspect inspects one container.
func (c *Client) ContainerInspect(ctx context.Context, nameOrID string) (InspectContainer, error) {
	var out InspectContainer
	err := c.call(ctx, "inspect container "+nameOrID, "GET", "/containers/"+url.PathEscape(nameOrID)+"/json", nil, nil, &out)
	return out, err
}
