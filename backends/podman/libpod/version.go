package libpod

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MinVersion is the oldest Podman this client is built and tested against.
const MinVersion = "4.3.0"

// Ping asks the service whether it answers and returns the libpod API version it speaks (its
// Libpod-Api-Version header). It is the cheap question: for GET /version and GET /info Podman runs a
// package query per component (dpkg -S, rpm -qf) and, for /info, looks at every container; both take
// 0.3-0.5 s on an idle host here, and the two once took over 30 s on a busy one.
func (c *Client) Ping(ctx context.Context) (string, error) {
	resp, err := c.do(ctx, c.hc, "ping", "GET", "/_ping", nil, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	v := resp.Header.Get("Libpod-Api-Version")
	if v == "" {
		return "", fmt.Errorf("podman ping: the service at %s answered without a Libpod-Api-Version header: is it a Podman service?", c.uri)
	}
	return v, nil
}

// CheckVersion refuses a service whose libpod API version (have) is older than MinVersion, with a sentence
// that says what it lacks; the caller names the service before it ("the Podman service at URI: version
// 4.2.0 is too old: ...").
func CheckVersion(have string) error {
	if compareVersions(have, MinVersion) >= 0 {
		return nil
	}
	if compareVersions(have, "4.0.0") < 0 {
		return fmt.Errorf("version %s is too old: it lacks the libpod v4 REST API this backend speaks "+
			"(v4 pod and container create bodies, init containers, container wait conditions); upgrade to Podman 4.3 or later", have)
	}
	return fmt.Errorf("version %s is too old: this backend needs Podman 4.3 or later, whose libpod API reports each "+
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
