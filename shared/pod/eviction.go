package pod

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// ReasonEvicted is the kubelet's reason for a pod it evicted.
const ReasonEvicted = "Evicted"

// UsageInterval is how often the disk usage of emptyDirs with a sizeLimit is measured, as the kubelet's
// eviction manager does.
const UsageInterval = 10 * time.Second

// Eviction records that a backend evicted a pod: an emptyDir on disk grew over its sizeLimit. Backends
// persist it, so that the pod stays Failed, and is not restarted, after the backend itself restarts.
type Eviction struct {
	Message string    `json:"message"`
	Time    time.Time `json:"time"`
	// Killed names the containers that were running when the pod was evicted, as the backend's key function
	// given to Apply names them (an engine id, a container name).
	Killed []string `json:"killed"`
}

// SizeLimitedDirs returns the emptyDirs on disk among vols that have a sizeLimit (Memory ones are sized
// tmpfs: the kernel enforces their limit).
func SizeLimitedDirs(vols map[string]*Volume) []*Volume {
	var out []*Volume
	for _, v := range vols {
		if v.Kind == KindEmptyDir && v.Medium != v1.StorageMediumMemory && v.SizeLimitBytes > 0 {
			out = append(out, v)
		}
	}
	return out
}

// OverLimit returns why the pod must be evicted, in the kubelet's words, or "" while every one of dirs is
// within its sizeLimit.
func OverLimit(dirs []*Volume) string {
	for _, v := range dirs {
		if used := DiskUsage(v.HostPath); used > v.SizeLimitBytes {
			return fmt.Sprintf("Usage of EmptyDir volume %q exceeds the limit %q.", v.Name,
				resource.NewQuantity(v.SizeLimitBytes, resource.BinarySI).String())
		}
	}
	return ""
}

// DiskUsage is what du counts: the blocks allocated under dir (symlinks are not followed). What cannot be
// read counts nothing, as a file can vanish while it is walked.
func DiskUsage(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if info, err := d.Info(); err == nil {
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			} else {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// Apply rewrites the statuses of the evicted pod: a container the eviction stopped (key(status) is in
// e.Killed) is terminated with reason Evicted and exit code 137, as killed, keeping when it started; one
// that had not finished will never run; one that had finished keeps its own ending.
func (e *Eviction) Apply(statuses []v1.ContainerStatus, key func(*v1.ContainerStatus) string) {
	killed := map[string]bool{}
	for _, k := range e.Killed {
		killed[k] = true
	}
	for i := range statuses {
		s := &statuses[i]
		switch {
		case killed[key(s)]:
			started, finished := e.Time, e.Time
			if t := s.State.Terminated; t != nil {
				started, finished = t.StartedAt.Time, t.FinishedAt.Time
			} else if rn := s.State.Running; rn != nil {
				started = rn.StartedAt.Time
			}
			s.State = v1.ContainerState{Terminated: Termination{ExitCode: 137, Reason: ReasonEvicted,
				Message: e.Message, StartedAt: started, FinishedAt: finished, ContainerID: s.ContainerID}.State()}
			s.Ready = false
		case s.State.Terminated == nil:
			ns := NotStarted(&v1.Container{Name: s.Name, Image: s.Image}, "never started: the pod was evicted: "+e.Message, e.Time)
			ns.State.Terminated.Reason = ReasonEvicted
			ns.RestartCount, ns.LastTerminationState = s.RestartCount, s.LastTerminationState
			ns.ContainerID, ns.ImageID = s.ContainerID, s.ImageID
			*s = ns
		}
	}
}
