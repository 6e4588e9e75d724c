package docker

import (
	"context"
	"io"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// engine is the part of the Docker Engine API the backend uses, and nothing more: *client.Client
// implements it. The backend holds it behind countingEngine, which counts every call, so the calls a
// status, a create or a delete costs are a metric (interlink_backend_engine_calls_total{op}), and the
// state logic around it (statuses from inspect results, restart delays, the view's events) is plain
// functions of the engine's answers, tested from tables.
type engine interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error)
	ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig,
		networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, name string) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, id string, options container.StartOptions) error
	ContainerStop(ctx context.Context, id string, options container.StopOptions) error
	ContainerRemove(ctx context.Context, id string, options container.RemoveOptions) error
	ContainerWait(ctx context.Context, id string, condition container.WaitCondition) (<-chan container.WaitResponse, <-chan error)
	ContainerLogs(ctx context.Context, id string, options container.LogsOptions) (io.ReadCloser, error)
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
	ImageInspect(ctx context.Context, ref string) (image.InspectResponse, error)
	ImagePull(ctx context.Context, ref string, options image.PullOptions) (io.ReadCloser, error)
	ImageImport(ctx context.Context, source image.ImportSource, ref string, options image.ImportOptions) (io.ReadCloser, error)
	Info(ctx context.Context) (system.Info, error)
	VolumeCreate(ctx context.Context, options volume.CreateOptions) (volume.Volume, error)
	VolumeList(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error)
	VolumeRemove(ctx context.Context, id string, force bool) error
	Close() error
	DaemonHost() string
	ClientVersion() string
}

// dockerClient adapts *client.Client to engine: its ImageInspect takes options the backend never uses.
type dockerClient struct{ *client.Client }

func (c dockerClient) ImageInspect(ctx context.Context, ref string) (image.InspectResponse, error) {
	return c.Client.ImageInspect(ctx, ref)
}

// countingEngine counts every call made through it by op (the Engine API operation) before making it.
type countingEngine struct {
	engine
	count func(op string)
}

func (e countingEngine) ContainerList(ctx context.Context, o container.ListOptions) ([]container.Summary, error) {
	e.count("container_list")
	return e.engine.ContainerList(ctx, o)
}

func (e countingEngine) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	e.count("container_inspect")
	return e.engine.ContainerInspect(ctx, id)
}

func (e countingEngine) ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig,
	networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, name string) (container.CreateResponse, error) {
	e.count("container_create")
	return e.engine.ContainerCreate(ctx, config, hostConfig, networkingConfig, platform, name)
}

func (e countingEngine) ContainerStart(ctx context.Context, id string, o container.StartOptions) error {
	e.count("container_start")
	return e.engine.ContainerStart(ctx, id, o)
}

func (e countingEngine) ContainerStop(ctx context.Context, id string, o container.StopOptions) error {
	e.count("container_stop")
	return e.engine.ContainerStop(ctx, id, o)
}

func (e countingEngine) ContainerRemove(ctx context.Context, id string, o container.RemoveOptions) error {
	e.count("container_remove")
	return e.engine.ContainerRemove(ctx, id, o)
}

func (e countingEngine) ContainerWait(ctx context.Context, id string, c container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
	e.count("container_wait")
	return e.engine.ContainerWait(ctx, id, c)
}

func (e countingEngine) ContainerLogs(ctx context.Context, id string, o container.LogsOptions) (io.ReadCloser, error) {
	e.count("container_logs")
	return e.engine.ContainerLogs(ctx, id, o)
}

func (e countingEngine) Events(ctx context.Context, o events.ListOptions) (<-chan events.Message, <-chan error) {
	e.count("events")
	return e.engine.Events(ctx, o)
}

func (e countingEngine) ImageInspect(ctx context.Context, ref string) (image.InspectResponse, error) {
	e.count("image_inspect")
	return e.engine.ImageInspect(ctx, ref)
}

func (e countingEngine) ImagePull(ctx context.Context, ref string, o image.PullOptions) (io.ReadCloser, error) {
	e.count("image_pull")
	return e.engine.ImagePull(ctx, ref, o)
}

func (e countingEngine) ImageImport(ctx context.Context, src image.ImportSource, ref string, o image.ImportOptions) (io.ReadCloser, error) {
	e.count("image_import")
	return e.engine.ImageImport(ctx, src, ref, o)
}

func (e countingEngine) Info(ctx context.Context) (system.Info, error) {
	e.count("info")
	return e.engine.Info(ctx)
}

func (e countingEngine) VolumeCreate(ctx context.Context, o volume.CreateOptions) (volume.Volume, error) {
	e.count("volume_create")
	return e.engine.VolumeCreate(ctx, o)
}

func (e countingEngine) VolumeList(ctx context.Context, o volume.ListOptions) (volume.ListResponse, error) {
	e.count("volume_list")
	return e.engine.VolumeList(ctx, o)
}

func (e countingEngine) VolumeRemove(ctx context.Context, id string, force bool) error {
	e.count("volume_remove")
	return e.engine.VolumeRemove(ctx, id, force)
}
