package pod

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
	"github.com/interlink-hq/interlink-dispatcher/shared/subpath"
)

const pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\nAbCdEf==\n-----END CERTIFICATE-----\n"

func volumePod(t *testing.T) (*v1.Pod, *Objects) {
	p := defaultPod(t)
	mode := int32(0o600)
	p.Spec.Volumes = append(p.Spec.Volumes,
		v1.Volume{Name: "cfg", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "app-config"},
			Items:                []v1.KeyToPath{{Key: "app.conf", Path: "conf/app.conf"}, {Key: "other", Path: "o", Mode: &mode}}}}},
		v1.Volume{Name: "sec", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "creds"}}},
		v1.Volume{Name: "sec-mode", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr(int32(0o644))}}},
		v1.Volume{Name: "info", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}},
			{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}},
		v1.Volume{Name: "scratch", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "opt", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "absent"}, Optional: ptr(true)}}},
	)
	objs := NewObjects([]interlink.RetrievedContainer{
		{Name: "main",
			ConfigMaps: []v1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "app-config"}, Data: map[string]string{"app.conf": "a=1\n", "other": "x"}}},
			Secrets:    []v1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Data: map[string][]byte{"password": []byte("s3cret"), "tls.crt": []byte(pem)}}},
			ProjectedVolumeMaps: []v1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "kube-api-access-4kx9z"},
				Data: map[string]string{"token": "eyJhbGciOi", "ca.crt": pem, "namespace": "team-a"}}}},
	})
	return p, objs
}

func readFile(t *testing.T, path string) (string, fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	return string(b), fi.Mode().Perm()
}

func TestMaterializeVolumes(t *testing.T) {
	p, objs := volumePod(t)
	dir := t.TempDir()
	vols, err := MaterializeVolumes(p, objs, dir)
	if err != nil {
		t.Fatal(err)
	}
	check := func(vol, file, want string, wantMode fs.FileMode) {
		t.Helper()
		got, mode := readFile(t, filepath.Join(vols[vol].HostPath, file))
		if got != want || mode != wantMode {
			t.Errorf("%s/%s = %q mode %v, want %q mode %v", vol, file, got, mode, want, wantMode)
		}
	}
	check("cfg", "conf/app.conf", "a=1\n", 0o644)
	check("cfg", "o", "x", 0o600)
	check("sec", "password", "s3cret", 0o400)
	check("sec", "tls.crt", pem, 0o400)
	check("sec-mode", "password", "s3cret", 0o644)
	check("kube-api-access-4kx9z", "ca.crt", pem, 0o644)
	check("kube-api-access-4kx9z", "token", "eyJhbGciOi", 0o644)
	check("info", "name", "web", 0o644)
	check("info", "labels", `app="web"`, 0o644)
	if fi, err := os.Stat(vols["scratch"].HostPath); err != nil || fi.Mode().Perm() != 0o777 || !fi.IsDir() {
		t.Errorf("emptyDir: %v %v", fi, err)
	}
	if entries, _ := os.ReadDir(vols["opt"].HostPath); len(entries) != 0 {
		t.Errorf("an optional missing configMap should give an empty directory, got %v", entries)
	}
	for name, v := range vols {
		if want := v.Kind != KindEmptyDir && v.Kind != KindHostPath; v.ReadOnly != want {
			t.Errorf("volume %s (%s) readOnly = %v", name, v.Kind, v.ReadOnly)
		}
		if !strings.HasPrefix(v.HostPath, dir) {
			t.Errorf("volume %s is outside the pod directory: %s", name, v.HostPath)
		}
	}
	// A second call (a recovering backend) keeps what is there: containers may have it mounted.
	if err := os.WriteFile(filepath.Join(vols["scratch"].HostPath, "keep"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := MaterializeVolumes(p, objs, dir); err != nil {
		t.Fatal(err)
	}
	check("scratch", "keep", "1", 0o644)
	check("sec", "password", "s3cret", 0o400)
}

func TestMaterializeMissingObject(t *testing.T) {
	p, _ := volumePod(t)
	p.Spec.Volumes = p.Spec.Volumes[1:]
	_, err := MaterializeVolumes(p, NewObjects(nil), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), `configMap "app-config" was not sent with the pod`) {
		t.Fatalf("err = %v", err)
	}
}

func TestMaterializeProjectedWithoutMap(t *testing.T) {
	p := defaultPod(t)
	objs := NewObjects([]interlink.RetrievedContainer{{Name: "main", ConfigMaps: []v1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt"}, Data: map[string]string{"ca.crt": pem}}}}})
	vols, err := MaterializeVolumes(p, objs, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := vols["kube-api-access-4kx9z"].HostPath
	if got, _ := readFile(t, filepath.Join(dir, "ca.crt")); got != pem {
		t.Errorf("ca.crt = %q", got)
	}
	if got, _ := readFile(t, filepath.Join(dir, "namespace")); got != "team-a" {
		t.Errorf("namespace = %q", got)
	}
}

func TestHostPathTypes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	typ := func(s v1.HostPathType) *v1.HostPathType { return &s }
	cases := []struct {
		path    string
		typ     *v1.HostPathType
		wantErr string
	}{
		{dir, typ(v1.HostPathDirectory), ""},
		{file, typ(v1.HostPathDirectory), "is not a directory"},
		{filepath.Join(dir, "missing"), typ(v1.HostPathDirectory), "does not exist"},
		{filepath.Join(dir, "made/deep"), typ(v1.HostPathDirectoryOrCreate), ""},
		{file, typ(v1.HostPathFile), ""},
		{dir, typ(v1.HostPathFile), "is not a regular file"},
		{filepath.Join(dir, "newfile"), typ(v1.HostPathFileOrCreate), ""},
		{file, typ(v1.HostPathSocket), "is not a unix socket"},
		{"/dev/null", typ(v1.HostPathCharDev), ""},
		{"/dev/null", typ(v1.HostPathBlockDev), "is not a block device"},
		{filepath.Join(dir, "whatever"), nil, ""},
	}
	for _, tc := range cases {
		_, err := checkHostPath(&v1.HostPathVolumeSource{Path: tc.path, Type: tc.typ})
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s %v: err = %v, want %q", tc.path, tc.typ, err, tc.wantErr)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "made/deep")); err != nil || !fi.IsDir() {
		t.Errorf("DirectoryOrCreate did not create the directory: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "newfile")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("FileOrCreate did not create the file: %v", err)
	}
}

func TestMountsSubPath(t *testing.T) {
	p, objs := volumePod(t)
	dir := t.TempDir()
	vols, err := MaterializeVolumes(p, objs, dir)
	if err != nil {
		t.Fatal(err)
	}
	pins := filepath.Join(dir, "subpaths", "main")
	t.Cleanup(func() { _ = subpath.UnpinAll(dir) })
	c := &v1.Container{Name: "main", VolumeMounts: []v1.VolumeMount{
		{Name: "cfg", MountPath: "/etc/app/app.conf", SubPath: "conf/app.conf"},
		{Name: "scratch", MountPath: "/work", SubPath: "sub/dir"},
		{Name: "scratch", MountPath: "/all", ReadOnly: true},
	}}
	ms, err := Mounts(c, vols, pins)
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].Source != filepath.Join(pins, "0") || ms[0].PinRoot != vols["cfg"].HostPath || !ms[0].ReadOnly || ms[0].Target != "/etc/app/app.conf" {
		t.Errorf("configMap subPath mount = %+v", ms[0])
	}
	if fi, err := os.Stat(ms[1].Source); err != nil || !fi.IsDir() || ms[1].ReadOnly || ms[1].PinPerm != 0o777 {
		t.Errorf("the mount point of a subPath should exist as an empty directory: %+v %v", ms[1], err)
	}
	if !ms[2].ReadOnly || ms[2].Source != vols["scratch"].HostPath || ms[2].PinRoot != "" {
		t.Errorf("readOnly mount = %+v", ms[2])
	}
	// Nothing is resolved or created in the volume at create: that is PinSubPaths' work at each start.
	if _, err := os.Lstat(filepath.Join(vols["scratch"].HostPath, "sub")); err == nil {
		t.Errorf("Mounts created the subPath in the volume; it must wait for the container's start")
	}
	if _, err := Mounts(&v1.Container{Name: "evil", VolumeMounts: []v1.VolumeMount{{Name: "scratch", MountPath: "/x", SubPath: "../x"}}}, vols, pins); err == nil {
		t.Errorf("subPath with '..' accepted")
	}
	if os.Geteuid() != 0 {
		t.Skip("PinSubPaths binds with mount(2), which needs root")
	}
	if err := PinSubPaths("main", ms); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(ms[0].Source); err != nil || len(b) == 0 {
		t.Errorf("pinned configMap file: %q %v", b, err)
	}
	// Mounts and PinSubPaths run again before every start (each Docker attempt, a resumed Podman launch): a
	// pinned file subPath's mount point is a file by then, which must not stop the next start.
	again, err := Mounts(c, vols, pins)
	if err != nil {
		t.Fatalf("Mounts again after the pins: %v", err)
	}
	if err := PinSubPaths("main", again); err != nil {
		t.Fatalf("PinSubPaths again: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(vols["scratch"].HostPath, "sub", "dir")); err != nil || !fi.IsDir() {
		t.Errorf("a missing subPath should be created as a directory at the pin: %v", err)
	}

	// A container may plant a symlink in an emptyDir; a later subPath through it must not escape.
	scratch := vols["scratch"].HostPath
	os.Symlink("/etc", filepath.Join(scratch, "abs"))
	os.Symlink("../../../../..", filepath.Join(scratch, "up"))
	os.Symlink("sub", filepath.Join(scratch, "inside"))
	for _, sub := range []string{"abs/passwd", "up/etc"} {
		c := &v1.Container{Name: "evil", VolumeMounts: []v1.VolumeMount{{Name: "scratch", MountPath: "/x", SubPath: sub}}}
		ms, err := Mounts(c, vols, filepath.Join(dir, "subpaths", "evil"))
		if err != nil {
			t.Fatal(err)
		}
		err = PinSubPaths("evil", ms)
		if !errors.Is(err, subpath.ErrEscapes) || !strings.Contains(err.Error(), sub) || !strings.Contains(err.Error(), `volume "scratch"`) {
			t.Errorf("subPath %q: %v; want a refusal naming the volume and the subPath", sub, err)
		}
	}
	c = &v1.Container{Name: "ok", VolumeMounts: []v1.VolumeMount{{Name: "scratch", MountPath: "/x", SubPath: "inside/dir"}}}
	ms, err = Mounts(c, vols, filepath.Join(dir, "subpaths", "ok"))
	if err != nil {
		t.Fatal(err)
	}
	if err := PinSubPaths("ok", ms); err != nil {
		t.Errorf("a symlink staying inside should resolve: %v", err)
	}
}

func TestSecureJoin(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "a/b"), 0o755)
	os.Symlink("../..", filepath.Join(root, "a/b/up2"))
	os.Symlink("..", filepath.Join(root, "a/up1"))
	os.Symlink("../../..", filepath.Join(root, "a/b/up3"))
	if got, err := SecureJoin(root, "a/b/up2/x"); err != nil || got != filepath.Join(root, "x") {
		t.Errorf("a/b/up2/x = %q, %v", got, err)
	}
	if got, err := SecureJoin(root, "a/up1/a/b"); err != nil || got != filepath.Join(root, "a/b") {
		t.Errorf("a/up1/a/b = %q, %v", got, err)
	}
	for _, bad := range []string{"a/b/up2/..", "a/b/up3/x", "a/b/up3", "/abs", "..", "a/../.."} {
		if got, err := SecureJoin(root, bad); err == nil {
			t.Errorf("%q escaped to %q", bad, got)
		}
	}
}
