package libpod

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// MinVersion is the oldest Podman this client is built and tested against.
const MinVersion = "4.3.0"

// VersionReport is the answer of GET /version.
type VersionReport struct {
	Version    string `json:"Version"`
	APIVersion string `json:"ApiVersion"` // the Docker-compatible API version
	Components []struct {
		Name    string            `json:"Name"`
		Version string            `json:"Version"`
		Details map[string]string `json:"Details"`
	} `json:"Components"`
}

// LibpodAPIVersion returns the libpod API version the service speaks (equal to the Podman version).
func (v VersionReport) LibpodAPIVersion() string {
	for _, c := range v.Components {
		if c.Name == "Podman Engine" && c.Details["APIVersion"] != "" {
			return c.Details["APIVersion"]
		}
	}
	return v.Version
}

// Version asks the service its version.
func (c *Client) Version(ctx context.Context) (VersionReport, error) {
	var v VersionReport
	err := c.call(ctx, "version", "GET", "/version", nil, nil, &v)
	return v, err
}

// CheckVersion refuses a service older than MinVersion with a sentence that says what it lacks.
func CheckVersion(v VersionReport) error {
	have := v.LibpodAPIVersion()
	if compareVersions(have, MinVersion) >= 0 {
		return nil
	}
	if compareVersions(have, "4.0.0") < 0 {
		return fmt.Errorf("Podman %s is too old: it lacks the libpod v4 REST API this backend speaks "+
			"(v4 pod and container create bodies, init containers, container wait conditions); upgrade to Podman 4.3 or later", have)
	}
	return fmt.Errorf("Podman %s is too old: this backend needs Podman 4.3 or later, whose libpod API reports each "+
		"container's exit code on its died events and restart count on inspect, which status and exit detection rely on; upgrade Podman", have)
}

// compareVersions compares dotted versions numerically ("4.10.0" > "4.3.1"); suffixes like "-dev" are ignored.
func compareVersions(a, b string) int {
	pa, pb := versionParts(a), versionParts(b)
	for i := 0; i < 3; i++ {
		if pa[i] != pb[i] {
			if pa[i] < pb[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func versionParts(v string) [3]int {
	var out [3]int
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+~ "); i >= 0 {
		v = v[:i]
	}
	for i, p := range strings.SplitN(v, ".", 3) {
		n, _ := strconv.Atoi(p)
		out[i] = n
	}
	return out
}
