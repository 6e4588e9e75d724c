package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/go-connections/nat"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// pauseRepository is the name of the pause images the backend builds; the tag is the binary's digest, so a
// new binary gives a new image and never changes one that pods use.
const pauseRepository = "interlink-dispatcher/pause"

// ensurePauseImage returns the pause image to use: the configured one (pulled if missing), or one built
// here from a static binary when it does not exist yet.
func (b *Backend) ensurePauseImage(ctx context.Context) (string, error) {
	if b.cfg.PauseImage != "" {
		if _, err := b.cli.ImageInspect(ctx, b.cfg.PauseImage); err == nil {
			return b.cfg.PauseImage, nil
		}
		if err := b.pull(ctx, b.cfg.PauseImage); err != nil {
			return "", fmt.Errorf("config key pause_image: %v", err)
		}
		return b.cfg.PauseImage, nil
	}
	bin, entrypoint, err := b.pauseBinary()
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("cannot read the pause binary: %v", err)
	}
	sum := sha256.Sum256(data)
	ref := pauseRepository + ":" + hex.EncodeToString(sum[:])[:16]
	if _, err := b.cli.ImageInspect(ctx, ref); err == nil {
		return ref, nil
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	name := strings.TrimPrefix(entrypoint[0], "/")
	if dir := filepath.Dir(name); dir != "." {
		if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)}); err != nil {
			return "", err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		return "", err
	}
	if _, err := tw.Write(data); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	ep, _ := json.Marshal(entrypoint)
	rc, err := b.cli.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, ref, image.ImportOptions{
		Message: "pause image of interlink-dispatcher's docker backend, from " + bin,
		Changes: []string{"ENTRYPOINT " + string(ep), "LABEL " + pod.LabelRole + "=" + pod.RolePause},
	})
	if err != nil {
		return "", fmt.Errorf("cannot build the pause image %s from %s: %v", ref, bin, err)
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
		return "", fmt.Errorf("cannot build the pause image %s from %s: %v", ref, bin, err)
	}
	b.log.Info("built the pause image", "image", ref, "binary", bin)
	return ref, nil
}

// pauseBinary finds a static binary for the pause image and the entrypoint that runs it.
func (b *Backend) pauseBinary() (string, []string, error) {
	if b.cfg.PauseBinary != "" {
		if err := checkStatic(b.cfg.PauseBinary); err != nil {
			return "", nil, fmt.Errorf("config key pause_binary: %v", err)
		}
		return b.cfg.PauseBinary, []string{"/pause"}, nil
	}
	var tried []string
	if exe, err := os.Executable(); err == nil {
		sibling := filepath.Join(filepath.Dir(exe), "pause")
		if err := checkStatic(sibling); err == nil {
			return sibling, []string{"/pause"}, nil
		} else {
			tried = append(tried, err.Error())
		}
	}
	for _, bb := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if err := checkStatic(bb); err == nil {
			// PID 1 ignores SIGTERM without a handler, so Delete kills the pause container outright.
			return bb, []string{"/bin/busybox", "sleep", "2147483647"}, nil
		} else {
			tried = append(tried, err.Error())
		}
	}
	return "", nil, fmt.Errorf("no pause image is configured and no static binary to build one was found (%s): "+
		"build cmd/pause beside the backend (make build), install busybox-static, or set pause_image or pause_binary",
		strings.Join(tried, "; "))
}

// checkStatic checks that path is a statically linked ELF executable, the only kind that runs alone in an
// image.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}

var nameUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_.-]`)

// containerName is the Docker name of a pod's container attempt: readable, and unique per pod UID.
func containerName(p *v1.Pod, container string, attempt int) string {
	return nameUnsafe.ReplaceAllString(fmt.Sprintf("idp_%s_%s_%s_%s_%d", container, p.Name, p.Namespace, p.UID, attempt), "_")
}

func pauseName(p *v1.Pod) string {
	return nameUnsafe.ReplaceAllString(fmt.Sprintf("idp_POD_%s_%s_%s", p.Name, p.Namespace, p.UID), "_")
}

// hostname is the pod's hostname as Kubernetes sets it: spec.hostname, else the pod name, at most 63
// characters.
func hostname(p *v1.Pod) string {
	h := p.Spec.Hostname
	if h == "" {
		h = p.Name
	}
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

// createPause creates and starts the pod's pause container, whose network and IPC namespaces every other
// container of the pod joins. A pause container already made for the pod (a retried Create) is reused.
func (b *Backend) createPause(ctx context.Context, p *v1.Pod, vols map[string]*pod.Volume) (string, error) {
	name := pauseName(p)
	cfg := &container.Config{
		Image:        b.pauseImage,
		Labels:       pod.ContainerLabels(p, b.env.Instance, b.env.Name, "POD", pod.RolePause),
		ExposedPorts: nat.PortSet{},
	}
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			proto := strings.ToLower(string(port.Protocol))
			if proto == "" {
				proto = "tcp"
			}
			cfg.ExposedPorts[nat.Port(fmt.Sprintf("%d/%s", port.ContainerPort, proto))] = struct{}{}
		}
	}
	hc := &container.HostConfig{
		NetworkMode: container.NetworkMode(b.cfg.Network),
		IpcMode:     "shareable",
		LogConfig:   container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1m"}},
		// The pause's hosts file is every container's of the pod (they join its network).
		ExtraHosts: pod.HostAliasEntries(p),
		// Set in the namespaces the pod's containers join.
		Sysctls: pod.Sysctls(p),
	}
	for _, v := range vols {
		if v.Medium == v1.StorageMediumMemory {
			hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeVolume, Source: memoryVolumeName(p, v.Name), Target: memoryVolumeDir + v.Name})
		}
	}
	if p.Spec.HostNetwork {
		hc.NetworkMode = "host"
	} else {
		cfg.Hostname = hostname(p)
	}
	start := time.Now()
	resp, err := b.cli.ContainerCreate(ctx, cfg, hc, &network.NetworkingConfig{}, nil, name)
	b.metrics.observe("container_create", start, err)
	id := resp.ID
	if cerrdefs.IsConflict(err) {
		existing, ierr := b.cli.ContainerInspect(ctx, name)
		if ierr != nil || existing.Config == nil || existing.Config.Labels[pod.LabelPodUID] != string(p.UID) ||
			existing.Config.Labels[pod.LabelBackend] != b.env.Name {
			return "", engineError("cannot create the pause container "+name, err)
		}
		id = existing.ID
	} else if err != nil {
		return "", engineError("cannot create the pod's pause container", err)
	}
	start = time.Now()
	err = b.cli.ContainerStart(ctx, id, container.StartOptions{})
	b.metrics.observe("container_start", start, err)
	if err != nil {
		return id, engineError("cannot start the pod's pause container", err)
	}
	return id, nil
}
