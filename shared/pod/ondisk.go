package pod

import (
	"path/filepath"

	v1 "k8s.io/api/core/v1"
)

// VolumesOnDisk describes the volumes of pod p as MaterializeVolumes made them under podDir, without
// touching the disk: a backend that resumes a pod (after a restart) needs their paths and kinds, and must
// neither rewrite the files its running containers have bound nor need the pod's objects again. hostPath
// volumes are given as the pod names them (cleaned); MaterializeVolumes already checked them.
func VolumesOnDisk(p *v1.Pod, podDir string) map[string]*Volume {
	root := filepath.Join(podDir, VolumesDir)
	out := make(map[string]*Volume, len(p.Spec.Volumes))
	for i := range p.Spec.Volumes {
		pv := &p.Spec.Volumes[i]
		v := &Volume{Name: pv.Name, Kind: VolumeKind(pv), HostPath: filepath.Join(root, pv.Name)}
		switch src := pv.VolumeSource; {
		case src.EmptyDir != nil:
			v.Medium = src.EmptyDir.Medium
			if src.EmptyDir.SizeLimit != nil {
				v.SizeLimitBytes = src.EmptyDir.SizeLimit.Value()
			}
		case src.HostPath != nil:
			v.HostPath = filepath.Clean(src.HostPath.Path)
		default:
			v.ReadOnly = true
		}
		out[pv.Name] = v
	}
	return out
}
