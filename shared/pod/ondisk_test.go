package pod

import (
	"reflect"
	"testing"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// VolumesOnDisk must describe exactly what MaterializeVolumes returned for the same pod, for every kind.
func TestVolumesOnDiskMatchesMaterialize(t *testing.T) {
	size := resource.MustParse("64Mi")
	host := t.TempDir()
	p := &v1.Pod{Spec: v1.PodSpec{Volumes: []v1.Volume{
		{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{SizeLimit: &size}}},
		{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}}},
		{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "cm"}}}},
		{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: host + "/./"}}},
	}}}
	p.Name, p.Namespace, p.UID = "p", "ns", "11111111-2222-3333-4444-555555555555"
	cm := v1.ConfigMap{Data: map[string]string{"k": "v"}}
	cm.Name, cm.Namespace = "cm", "ns"
	dir := t.TempDir()
	made, err := MaterializeVolumes(p, &Objects{ConfigMaps: map[string]*v1.ConfigMap{"cm": &cm}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := VolumesOnDisk(p, dir); !reflect.DeepEqual(got, made) {
		for name := range made {
			t.Errorf("%s: on disk %+v, materialised %+v", name, got[name], made[name])
		}
	}
}
