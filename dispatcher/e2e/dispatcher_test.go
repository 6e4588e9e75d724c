package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest/labkube"
)

// dispatcherStatus asks the lab's dispatcher itself, on its socket, for the status of p as interLink does
// (GET /status with the pod): what the dispatcher answered, to tell its own reports from what the virtual
// kubelet makes of them.
func (e *env) dispatcherStatus(p *v1.Pod) interlink.PodStatus {
	e.t.Helper()
	body, err := json.Marshal([]*v1.Pod{p})
	if err != nil {
		e.t.Fatal(err)
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", labkube.DispatcherSocket())
		}}}
	req, err := http.NewRequestWithContext(e.ctx, http.MethodGet, "http://unix/status", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("GET /status on the lab's dispatcher (%s): %v", labkube.DispatcherSocket(), err)
	}
	defer resp.Body.Close()
	var sts []interlink.PodStatus
	if err := json.NewDecoder(resp.Body).Decode(&sts); err != nil || resp.StatusCode != http.StatusOK || len(sts) != 1 {
		e.t.Fatalf("GET /status on the lab's dispatcher: %d, %d statuses, %v", resp.StatusCode, len(sts), err)
	}
	return sts[0]
}

// statusOf is the status named name in sts, or nil.
func statusOf(sts []v1.ContainerStatus, name string) *v1.ContainerStatus {
	for i := range sts {
		if sts[i].Name == name {
			return &sts[i]
		}
	}
	return nil
}

// exitCode is cs's exit code as text, or what cs is instead.
func exitCode(cs *v1.ContainerStatus) string {
	switch {
	case cs == nil:
		return "no status"
	case cs.State.Terminated == nil:
		return stateString(cs.State)
	default:
		return fmt.Sprint(cs.State.Terminated.ExitCode)
	}
}
