package pod

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/subpath"
)

// Volume kinds, by the JSON name of their pod volume source (the names of backend.Capabilities.VolumeKinds).
const (
	KindConfigMap   = "configMap"
	KindSecret      = "secret"
	KindProjected   = "projected"
	KindDownwardAPI = "downwardAPI"
	KindEmptyDir    = "emptyDir"
	KindHostPath    = "hostPath"
)

// Default file modes of materialised volumes. Secrets are 0400 unless the pod says otherwise (the API server
// usually fills defaultMode 0644 in, which then applies).
const (
	DefaultSecretMode    fs.FileMode = 0o400
	DefaultConfigMapMode fs.FileMode = 0o644
	// VolumesDir is the sub-directory of a pod directory holding its volumes, one directory per volume name.
	VolumesDir = "volumes"
)

// Volume is one pod volume made ready on the host.
type Volume struct {
	Name string
	Kind string // one of the Kind* constants
	// HostPath is what to bind into containers: the volume's directory under the pod directory, or, for a
	// hostPath volume, the host path itself (a directory, file, socket or device).
	HostPath string
	// ReadOnly is true for configMap, secret, projected and downwardAPI volumes, which Kubernetes always
	// mounts read-only.
	ReadOnly bool
	// Medium is the emptyDir medium; "Memory" asks the backend for a tmpfs (HostPath then stays empty and
	// unused).
	Medium v1.StorageMedium
	// SizeLimitBytes is the emptyDir sizeLimit, 0 when none.
	SizeLimitBytes int64
}

// VolumeKind returns the kind of a pod volume: the JSON name of its source ("nfs", "persistentVolumeClaim",
// ...), or "" when it has none.
func VolumeKind(v *v1.Volume) string {
	rv := reflectValue(v.VolumeSource)
	for i := 0; i < rv.NumField(); i++ {
		if !rv.Field(i).IsZero() {
			return jsonName(rv.Type().Field(i))
		}
	}
	return ""
}

// MaterializeVolumes makes every volume of pod p ready under podDir/volumes/<name>: it writes the files of
// configMap, secret, projected and downwardAPI volumes (from objs, or computed from the pod), creates emptyDir
// directories (mode 0777, kept across calls so a repeated call loses no data), and checks hostPath volumes
// against their type (creating them for DirectoryOrCreate and FileOrCreate). It is safe to call again for the
// same pod (a backend recovering it): a volume directory that already exists is left as it is, since running
// containers may have it bind-mounted. Errors name the volume and say what is missing.
func MaterializeVolumes(p *v1.Pod, objs *Objects, podDir string) (map[string]*Volume, error) {
	root := filepath.Join(podDir, VolumesDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create the pod's volume directory: %w", err)
	}
	out := make(map[string]*Volume, len(p.Spec.Volumes))
	for i := range p.Spec.Volumes {
		pv := &p.Spec.Volumes[i]
		if err := ValidVolumeName(pv.Name); err != nil {
			return nil, fmt.Errorf("spec.volumes[%d]: %w", i, err)
		}
		v, err := materialize(p, objs, pv, filepath.Join(root, pv.Name))
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", pv.Name, err)
		}
		out[pv.Name] = v
	}
	return out, nil
}

func materialize(p *v1.Pod, objs *Objects, pv *v1.Volume, dir string) (*Volume, error) {
	v := &Volume{Name: pv.Name, Kind: VolumeKind(pv), HostPath: dir}
	src := pv.VolumeSource
	switch {
	case src.EmptyDir != nil:
		v.Medium = src.EmptyDir.Medium
		if src.EmptyDir.SizeLimit != nil {
			v.SizeLimitBytes = src.EmptyDir.SizeLimit.Value()
		}
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return nil, err
		}
		// The umask trims MkdirAll's mode; emptyDirs are world-writable in Kubernetes so any user can write.
		return v, os.Chmod(dir, 0o777)
	case src.HostPath != nil:
		path, err := checkHostPath(src.HostPath)
		if err != nil {
			return nil, err
		}
		v.HostPath = path
		return v, nil
	}
	v.ReadOnly = true
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return v, nil
	}
	files, err := contentFiles(p, objs, pv)
	if err != nil {
		return nil, err
	}
	return v, writeFiles(dir, files)
}

// file is one file of a content volume.
type file struct {
	path string // relative to the volume's directory, validated
	data []byte
	mode fs.FileMode
}

func contentFiles(p *v1.Pod, objs *Objects, pv *v1.Volume) ([]file, error) {
	src := pv.VolumeSource
	switch {
	case src.ConfigMap != nil:
		s := src.ConfigMap
		data, found := objs.configMapData(s.Name)
		if !found {
			if s.Optional != nil && *s.Optional {
				return nil, nil
			}
			return nil, fmt.Errorf("configMap %q was not sent with the pod", s.Name)
		}
		return keyFiles(data, s.Items, modeOr(s.DefaultMode, DefaultConfigMapMode), s.Optional, "configMap "+s.Name)
	case src.Secret != nil:
		s := src.Secret
		data, found := objs.secretData(s.SecretName)
		if !found {
			if s.Optional != nil && *s.Optional {
				return nil, nil
			}
			return nil, fmt.Errorf("secret %q was not sent with the pod", s.SecretName)
		}
		return keyFiles(data, s.Items, modeOr(s.DefaultMode, DefaultSecretMode), s.Optional, "secret "+s.SecretName)
	case src.DownwardAPI != nil:
		mode := modeOr(src.DownwardAPI.DefaultMode, DefaultConfigMapMode)
		if m, ok := objs.projected(pv.Name); ok {
			return mapFiles(m, mode, downwardModes(src.DownwardAPI.Items))
		}
		return downwardFiles(p, src.DownwardAPI.Items, mode)
	case src.Projected != nil:
		return projectedFiles(p, objs, pv.Name, src.Projected)
	}
	return nil, fmt.Errorf("volume kind %q cannot be materialised", VolumeKind(pv))
}

func (o *Objects) projected(volume string) (map[string][]byte, bool) {
	if o == nil {
		return nil, false
	}
	cm, ok := o.Projected[volume]
	if !ok {
		return nil, false
	}
	return configMapBytes(cm), true
}

// projectedFiles uses the files interLink computed for the volume when it sent them (the service-account
// token can only come from there), and otherwise computes what it can from the objects and the pod.
func projectedFiles(p *v1.Pod, objs *Objects, volume string, s *v1.ProjectedVolumeSource) ([]file, error) {
	mode := modeOr(s.DefaultMode, DefaultConfigMapMode)
	modes := map[string]fs.FileMode{}
	for _, src := range s.Sources {
		var items []v1.KeyToPath
		switch {
		case src.ConfigMap != nil:
			items = src.ConfigMap.Items
		case src.Secret != nil:
			items = src.Secret.Items
		case src.DownwardAPI != nil:
			for k, m := range downwardModes(src.DownwardAPI.Items) {
				modes[k] = m
			}
		}
		for _, it := range items {
			if it.Mode != nil {
				modes[filepath.Clean(it.Path)] = fs.FileMode(*it.Mode)
			}
		}
	}
	if m, ok := objs.projected(volume); ok {
		return mapFiles(m, mode, modes)
	}
	var files []file
	for i, src := range s.Sources {
		var (
			part []file
			err  error
		)
		switch {
		case src.ConfigMap != nil:
			data, found := objs.configMapData(src.ConfigMap.Name)
			if !found {
				if src.ConfigMap.Optional != nil && *src.ConfigMap.Optional {
					continue
				}
				return nil, fmt.Errorf("sources[%d]: configMap %q was not sent with the pod", i, src.ConfigMap.Name)
			}
			part, err = keyFiles(data, src.ConfigMap.Items, mode, src.ConfigMap.Optional, "configMap "+src.ConfigMap.Name)
		case src.Secret != nil:
			data, found := objs.secretData(src.Secret.Name)
			if !found {
				if src.Secret.Optional != nil && *src.Secret.Optional {
					continue
				}
				return nil, fmt.Errorf("sources[%d]: secret %q was not sent with the pod", i, src.Secret.Name)
			}
			part, err = keyFiles(data, src.Secret.Items, mode, src.Secret.Optional, "secret "+src.Secret.Name)
		case src.DownwardAPI != nil:
			part, err = downwardFiles(p, src.DownwardAPI.Items, mode)
		case src.ServiceAccountToken != nil:
			// Only interLink can mint a token; without its projected map the file is left out, as for a
			// pod whose service account has automountServiceAccountToken off.
			continue
		default:
			return nil, fmt.Errorf("sources[%d]: this projection cannot be computed without interLink's projected volume map", i)
		}
		if err != nil {
			return nil, fmt.Errorf("sources[%d]: %w", i, err)
		}
		files = append(files, part...)
	}
	return files, nil
}

// keyFiles turns an object's data into files: every key, or only items (key → path, with their modes).
func keyFiles(data map[string][]byte, items []v1.KeyToPath, mode fs.FileMode, optional *bool, what string) ([]file, error) {
	if len(items) == 0 {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		files := make([]file, 0, len(keys))
		for _, k := range keys {
			if err := ValidRelativePath(k, "key"); err != nil || strings.Contains(k, "/") {
				return nil, fmt.Errorf("%s: key %q cannot be a file name", what, k)
			}
			files = append(files, file{path: k, data: data[k], mode: mode})
		}
		return files, nil
	}
	files := make([]file, 0, len(items))
	for i, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional != nil && *optional {
				continue
			}
			return nil, fmt.Errorf("%s has no key %q (items[%d])", what, it.Key, i)
		}
		if err := ValidRelativePath(it.Path, fmt.Sprintf("items[%d].path", i)); err != nil {
			return nil, err
		}
		files = append(files, file{path: filepath.Clean(it.Path), data: v, mode: modeOr(it.Mode, mode)})
	}
	return files, nil
}

// mapFiles turns interLink's projected volume map (file name → content) into files.
func mapFiles(data map[string][]byte, mode fs.FileMode, modes map[string]fs.FileMode) ([]file, error) {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	files := make([]file, 0, len(keys))
	for _, k := range keys {
		if err := ValidRelativePath(k, "projected file name"); err != nil {
			return nil, err
		}
		m, ok := modes[filepath.Clean(k)]
		if !ok {
			m = mode
		}
		files = append(files, file{path: filepath.Clean(k), data: data[k], mode: m})
	}
	return files, nil
}

func downwardModes(items []v1.DownwardAPIVolumeFile) map[string]fs.FileMode {
	modes := map[string]fs.FileMode{}
	for _, it := range items {
		if it.Mode != nil {
			modes[filepath.Clean(it.Path)] = fs.FileMode(*it.Mode)
		}
	}
	return modes
}

func downwardFiles(p *v1.Pod, items []v1.DownwardAPIVolumeFile, mode fs.FileMode) ([]file, error) {
	files := make([]file, 0, len(items))
	for i, it := range items {
		if err := ValidRelativePath(it.Path, fmt.Sprintf("items[%d].path", i)); err != nil {
			return nil, err
		}
		var (
			v   string
			err error
		)
		switch {
		case it.FieldRef != nil:
			v, err = FieldValue(p, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			if it.ResourceFieldRef.ContainerName == "" {
				return nil, fmt.Errorf("items[%d].resourceFieldRef.containerName is required in a volume", i)
			}
			v, err = ResourceFieldValue(p, "", it.ResourceFieldRef)
		default:
			return nil, fmt.Errorf("items[%d] has neither fieldRef nor resourceFieldRef", i)
		}
		if err != nil {
			return nil, fmt.Errorf("items[%d]: %w", i, err)
		}
		files = append(files, file{path: filepath.Clean(it.Path), data: []byte(v), mode: modeOr(it.Mode, mode)})
	}
	return files, nil
}

// writeFiles replaces dir by a fresh directory holding files. It is built aside and renamed into place so
// that a crash never leaves a half-written volume under the final name.
func writeFiles(dir string, files []file) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		// tmp is fresh and only ever holds what is written here, so SecureJoin cannot meet a foreign link;
		// it still guards against a file path that another file's path turned into a directory.
		path, err := SecureJoin(tmp, f.path)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, f.data, f.mode.Perm()); err != nil {
			return err
		}
		if err := os.Chmod(path, f.mode.Perm()); err != nil { // WriteFile's mode is trimmed by the umask
			return err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

func modeOr(m *int32, def fs.FileMode) fs.FileMode {
	if m == nil {
		return def
	}
	return fs.FileMode(*m) & fs.ModePerm
}

// checkHostPath checks (or creates) a hostPath volume's path according to its type, as the kubelet does.
func checkHostPath(s *v1.HostPathVolumeSource) (string, error) {
	if !filepath.IsAbs(s.Path) {
		return "", fmt.Errorf("hostPath.path %q must be absolute", s.Path)
	}
	path := filepath.Clean(s.Path)
	typ := v1.HostPathUnset
	if s.Type != nil {
		typ = *s.Type
	}
	fi, err := os.Stat(path)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("cannot read hostPath %s: %w", path, err)
	}
	want := func(ok bool, what string) (string, error) {
		if !exists {
			return "", fmt.Errorf("hostPath %s does not exist (type %s wants %s)", path, typ, what)
		}
		if !ok {
			return "", fmt.Errorf("hostPath %s is not %s (type %s)", path, what, typ)
		}
		return path, nil
	}
	switch typ {
	case v1.HostPathUnset:
		return path, nil
	case v1.HostPathDirectoryOrCreate:
		if !exists {
			if err := os.MkdirAll(path, 0o755); err != nil {
				return "", fmt.Errorf("cannot create hostPath directory %s: %w", path, err)
			}
			return path, nil
		}
		return want(fi.IsDir(), "a directory")
	case v1.HostPathDirectory:
		return want(exists && fi.IsDir(), "a directory")
	case v1.HostPathFileOrCreate:
		if !exists {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return "", fmt.Errorf("cannot create the parent of hostPath %s: %w", path, err)
			}
			f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return "", fmt.Errorf("cannot create hostPath file %s: %w", path, err)
			}
			return path, f.Close()
		}
		return want(fi.Mode().IsRegular(), "a regular file")
	case v1.HostPathFile:
		return want(exists && fi.Mode().IsRegular(), "a regular file")
	case v1.HostPathSocket:
		return want(exists && fi.Mode()&fs.ModeSocket != 0, "a unix socket")
	case v1.HostPathCharDev:
		return want(exists && fi.Mode()&fs.ModeCharDevice != 0, "a character device")
	case v1.HostPathBlockDev:
		return want(exists && fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0, "a block device")
	}
	return "", fmt.Errorf("hostPath type %q is unknown", typ)
}

// Mount is one volumeMount of a container, resolved on the host.
type Mount struct {
	Volume *Volume
	// Source is the host path to bind: the volume's HostPath, or for a subPath the pinned target under the
	// backend's pin directory, which PinSubPaths binds to the subPath right before each start (for a Memory
	// emptyDir it is only indicative: the data lives in the engine's tmpfs).
	Source   string
	Target   string // the mountPath in the container
	ReadOnly bool
	SubPath  string // the cleaned subPath, "" when none
	// PinRoot is the directory the subPath is resolved beneath (the volume's HostPath) and PinPerm the mode a
	// missing subPath directory is created with; PinRoot is "" for a mount that needs no pin.
	PinRoot string
	PinPerm fs.FileMode
}

// Mounts resolves the volumeMounts of c against the pod's materialised volumes. A subPath is checked here
// only as text (relative, no ".."); it is resolved on the host when the container starts, by PinSubPaths,
// onto pinDir/<index of the volumeMount>, a directory the backend owns outside every volume, which Mounts
// creates empty so that an engine that wants its bind sources to exist at create finds them. Resolving at
// create would be too early: an init container, or an earlier run of the container, can replace the subPath
// by a symbolic link out of the volume before the container starts.
func Mounts(c *v1.Container, vols map[string]*Volume, pinDir string) ([]Mount, error) {
	out := make([]Mount, 0, len(c.VolumeMounts))
	for i, vm := range c.VolumeMounts {
		field := fmt.Sprintf("container %q volumeMounts[%d]", c.Name, i)
		v, ok := vols[vm.Name]
		if !ok {
			return nil, fmt.Errorf("%s: the pod has no volume %q", field, vm.Name)
		}
		if !filepath.IsAbs(vm.MountPath) {
			return nil, fmt.Errorf("%s: mountPath %q must be absolute", field, vm.MountPath)
		}
		m := Mount{Volume: v, Source: v.HostPath, Target: filepath.Clean(vm.MountPath), ReadOnly: vm.ReadOnly || v.ReadOnly}
		if vm.SubPath != "" {
			if err := ValidRelativePath(vm.SubPath, "subPath"); err != nil {
				return nil, fmt.Errorf("%s: %w", field, err)
			}
			m.SubPath = filepath.Clean(vm.SubPath)
			if v.Medium == v1.StorageMediumMemory {
				m.Source = filepath.Join(v.HostPath, m.SubPath)
			} else {
				if pinDir == "" {
					return nil, fmt.Errorf("%s: subPath %q: the backend gave no directory to pin it in", field, vm.SubPath)
				}
				m.Source = filepath.Join(pinDir, strconv.Itoa(i))
				m.PinRoot, m.PinPerm = v.HostPath, 0o755
				if v.Kind == KindEmptyDir {
					m.PinPerm = 0o777
				}
				// Made once: a pinned file subPath's mount point is a file from then on (Pin makes it match
				// what the subPath names), and Mounts runs again for every Docker attempt and every resumed
				// Podman launch.
				if _, err := os.Lstat(m.Source); errors.Is(err, fs.ErrNotExist) {
					if err := os.MkdirAll(m.Source, 0o755); err != nil {
						return nil, fmt.Errorf("%s: cannot make the mount point of subPath %q: %w", field, vm.SubPath, err)
					}
				}
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// PinSubPaths binds every subPath of ms, resolved beneath its volume now, onto its Source (see package
// shared/subpath). A backend calls it right before every start of the container, restarts included: a
// subPath that leads outside its volume, through ".." or a symbolic link, is refused with an error naming
// the container, the volume and the subPath.
func PinSubPaths(container string, ms []Mount) error {
	for _, m := range ms {
		if m.PinRoot == "" {
			continue
		}
		if err := subpath.Pin(m.PinRoot, m.SubPath, m.Source, m.PinPerm); err != nil {
			return fmt.Errorf("container %q, volume %q: %w", container, m.Volume.Name, err)
		}
	}
	return nil
}

// RemoveDir removes a pod directory and everything in it, after unpinning every subPath bound below it:
// os.RemoveAll descends into mounts, and through a pin would delete the volume's content, or a hostPath's
// data on the host. If a pin cannot be undone nothing is removed.
func RemoveDir(dir string) error {
	if err := subpath.UnpinAll(dir); err != nil {
		return fmt.Errorf("not removing %s: %w", dir, err)
	}
	// A writer that is ending (a shim's last state write as its container stops, a runner of an older
	// process finishing its step) can add a file between RemoveAll's listing of a directory and its
	// removal; what it added is gone on the next pass.
	var err error
	for range removeTries {
		if err = os.RemoveAll(dir); !errors.Is(err, syscall.ENOTEMPTY) && !errors.Is(err, syscall.EEXIST) {
			return err
		}
		time.Sleep(removeRetryWait)
	}
	return err
}

// removeTries and removeRetryWait bound RemoveDir's passes over a directory something is still writing in.
const (
	removeTries     = 5
	removeRetryWait = 200 * time.Millisecond
)

// PinDir is the directory of a container's pinned subPaths in its pod directory: outside every volume
// (which live in podDir/volumes), so that no container can change what is mounted there.
func PinDir(podDir, container string) string {
	return filepath.Join(podDir, "subpaths", container)
}

// ExpandSubPathExprs turns the subPathExpr of every volumeMount of p into its subPath, as the kubelet
// expands it: $(VAR) references to the container's environment (resolved with objs), each of which must
// have a value, giving a relative path that stays in its volume. A backend calls it at create, before it
// reads any mount; p is changed in place (expanding again finds nothing to do).
func ExpandSubPathExprs(p *v1.Pod, objs *Objects) error {
	for _, list := range [][]v1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for i := range list {
			c := &list[i]
			if !slices.ContainsFunc(c.VolumeMounts, func(vm v1.VolumeMount) bool { return vm.SubPathExpr != "" }) {
				continue
			}
			env, err := ResolveEnv(p, c, objs)
			if err != nil {
				return fmt.Errorf("container %q: %w", c.Name, err)
			}
			values := EnvLookup(env)
			for j := range c.VolumeMounts {
				vm := &c.VolumeMounts[j]
				if vm.SubPathExpr == "" {
					continue
				}
				var missing []string
				sub := Expand(vm.SubPathExpr, func(name string) (string, bool) {
					v, ok := values(name)
					if !ok || v == "" {
						missing = append(missing, name)
					}
					return v, true
				})
				field := fmt.Sprintf("container %q volumeMounts[%d].subPathExpr %q", c.Name, j, vm.SubPathExpr)
				if len(missing) > 0 {
					return fmt.Errorf("%s: no value for %s in the container's environment", field, strings.Join(missing, ", "))
				}
				if err := ValidRelativePath(sub, "its expansion"); err != nil {
					return fmt.Errorf("%s expands to %q: %v", field, sub, err)
				}
				vm.SubPath, vm.SubPathExpr = sub, ""
			}
		}
	}
	return nil
}
