package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// The interLink plugin routes, called as interLink calls them.

// Create sends POST /create and returns the dispatcher's answer.
func (c *Client) Create(ctx context.Context, data *interlink.RetrievedPodData) (interlink.CreateStruct, error) {
	var out interlink.CreateStruct
	_, err := c.call(ctx, http.MethodPost, "/create", data, "CreatePod#dispatcherctl", &out)
	return out, err
}

// Status sends GET /status for pods and returns one status per pod.
func (c *Client) Status(ctx context.Context, pods []*v1.Pod) ([]interlink.PodStatus, error) {
	var out []interlink.PodStatus
	if pods == nil {
		pods = []*v1.Pod{}
	}
	_, err := c.call(ctx, http.MethodGet, "/status", pods, "GetStatus#dispatcherctl", &out)
	return out, err
}

// Delete sends POST /delete with the pod and returns the dispatcher's sentence.
func (c *Client) Delete(ctx context.Context, p *v1.Pod) (string, error) {
	raw, err := c.call(ctx, http.MethodPost, "/delete", p, "DeletePod#dispatcherctl", nil)
	return string(raw), err
}

// Logs sends GET /getLogs and copies the log to w as it comes (all of it, or until the container ends or
// ctx is cancelled when following).
func (c *Client) Logs(ctx context.Context, req interlink.LogStruct, w io.Writer) error {
	resp, err := c.send(ctx, http.MethodGet, "/getLogs", req, "GetLogs#dispatcherctl", req.Opts.Follow)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return &APIError{Code: resp.StatusCode, Message: errorMessage(resp.StatusCode, raw), Path: "/getLogs"}
	}
	if f, ok := w.(interface{ Flush() error }); ok {
		w = flushEach{w, f}
	}
	if _, err := io.Copy(w, resp.Body); err != nil && ctx.Err() == nil {
		return fmt.Errorf("the log stream from %s broke: %w", c.display, err)
	}
	return nil
}

type flushEach struct {
	w io.Writer
	f interface{ Flush() error }
}

func (f flushEach) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.f.Flush()
	}
	return n, err
}

// Ping is interLink's ping: GET /status with an empty list. A dispatcher answers a PingResponse (nil when
// it answers the older empty array).
func (c *Client) Ping(ctx context.Context) (*interlink.PingResponse, error) {
	raw, err := c.call(ctx, http.MethodGet, "/status", []*v1.Pod{}, "Request-dispatcherctl-ping", nil)
	if err != nil {
		return nil, err
	}
	var pr interlink.PingResponse
	if len(raw) > 0 && firstNonSpace(raw) == '{' {
		if err := json.Unmarshal(raw, &pr); err != nil {
			return nil, fmt.Errorf("the ping answer of %s is not a PingResponse: %v", c.display, err)
		}
		return &pr, nil
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(raw, &arr); err != nil {
		return nil, fmt.Errorf("the ping answer of %s is neither a PingResponse nor a list: %v; is it a dispatcher?", c.display, err)
	}
	return nil, nil
}

func firstNonSpace(b []byte) byte {
	for _, c := range b {
		if c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			return c
		}
	}
	return 0
}
