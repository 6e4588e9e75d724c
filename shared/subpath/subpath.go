// Package subpath binds a volumeMount's subPath into place so that it cannot lead outside its volume, as the
// kubelet does: the subPath is opened beneath the volume's root with os.Root, which refuses any ".." or
// symbolic link that climbs out of it, and the opened file itself (/proc/self/fd/N) is bind-mounted onto a
// target the pod cannot reach. The engine is then given the target as the mount's source: what the pod does
// inside the volume afterwards (replacing the subPath by a symbolic link to "/") changes nothing mounted, and
// there is no window between the check and the mount, since the check and the mount are of the same open file.
//
// It depends on the standard library and golang.org/x/sys/unix only, so that the static interlink-shim can
// use it on a SLURM compute node.
package subpath

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrEscapes is wrapped by Pin's error when the subPath leads outside its volume.
var ErrEscapes = errors.New("it leads outside the volume")

// Pin resolves subPath beneath the directory root and makes target show what it names. A missing subPath is
// created as a directory with mode perm (0777 for an emptyDir, as the kubelet does) unless perm is 0; a
// subPath that leads outside root, through ".." or a symbolic link at any of its components, is refused with
// an error wrapping ErrEscapes. Symbolic links that stay inside root are followed.
//
// target is made, if needed, as an empty directory or file matching what subPath names, and anything pinned
// on it before is unpinned first, so Pin is the thing to call before every start of a container. As root,
// target becomes a bind mount of the opened file. Without the privilege to mount, target becomes a symbolic
// link to the path the check found, which the engine follows when it starts the container: the check then
// still refuses a link present at that moment, but a swap between the check and the engine's mount is not
// caught (callers document that narrower race).
func Pin(root, subPath, target string, perm fs.FileMode) error {
	r, err := openVolume(root, subPath)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := r.OpenFile(subPath, openFlags, 0)
	if errors.Is(err, fs.ErrNotExist) && perm != 0 {
		if err = r.MkdirAll(subPath, perm); err == nil {
			// MkdirAll's mode is trimmed by the umask; an emptyDir's subdirectory must be writable by any user.
			if err = r.Chmod(subPath, perm); err == nil {
				f, err = r.OpenFile(subPath, openFlags, 0)
			}
		}
	}
	if err != nil {
		// Nothing pinned earlier may outlive the refusal: an engine starting the container anyway (or
		// following an unprivileged pin's link, which now leads out) must find an empty target.
		if uerr := Unpin(target); uerr != nil {
			return errors.Join(openError(subPath, err), uerr)
		}
		return openError(subPath, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("subPath %q: %w", subPath, err)
	}
	if err := Unpin(target); err != nil {
		return err
	}
	if err := placeholder(target, fi.IsDir()); err != nil {
		return fmt.Errorf("cannot prepare the mount point %s of subPath %q: %w", target, subPath, err)
	}
	fdPath := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	err = unix.Mount(fdPath, target, "", unix.MS_BIND|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("cannot bind subPath %q onto %s: %w", subPath, target, err)
	}
	// Not privileged to mount: hand the engine the path checked just now.
	resolved, rerr := os.Readlink(fdPath)
	if rerr != nil {
		return fmt.Errorf("cannot read the path of subPath %q: %w", subPath, rerr)
	}
	if err := os.Remove(target); err != nil {
		return err
	}
	return os.Symlink(resolved, target)
}

// Check resolves subPath beneath root as Pin does, without creating or mounting anything.
func Check(root, subPath string) error {
	r, err := openVolume(root, subPath)
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := r.OpenFile(subPath, openFlags, 0)
	if err != nil {
		return openError(subPath, err)
	}
	return f.Close()
}

// openFlags open a subPath for its check and its bind. O_NONBLOCK: a FIFO put in place of the subPath must
// not hang the open.
const openFlags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY

// openVolume checks subPath's form and opens root, beneath which subPath is then resolved.
func openVolume(root, subPath string) (*os.Root, error) {
	if err := validSubPath(subPath); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("cannot open the volume %s: %w", root, err)
	}
	return r, nil
}

func openError(subPath string, err error) error {
	// os.Root says "path escapes from parent" without an exported error value to test.
	if strings.Contains(err.Error(), "escapes") || errors.Is(err, unix.ELOOP) {
		return fmt.Errorf("subPath %q is refused: %w (through '..' or a symbolic link)", subPath, ErrEscapes)
	}
	return fmt.Errorf("subPath %q cannot be opened in its volume: %w", subPath, err)
}

func validSubPath(p string) error {
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("subPath must name something inside the volume")
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("subPath %q contains a NUL byte", p)
	case filepath.IsAbs(p):
		return fmt.Errorf("subPath %q must be a relative path", p)
	}
	return nil
}

// placeholder makes target an empty directory (dir) or an empty file, replacing an empty one of the other
// kind or a symbolic link left by an unprivileged Pin.
func placeholder(target string, dir bool) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	fi, err := os.Lstat(target)
	switch {
	case err == nil && fi.Mode()&fs.ModeSymlink == 0 && fi.IsDir() == dir:
		return nil
	case err == nil:
		if err := os.Remove(target); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	}
	if dir {
		return os.Mkdir(target, 0o755)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// Unpin undoes Pin: it unmounts every mount stacked on target (lazily, so a container that still uses it
// keeps its own view) and removes a symbolic link left by an unprivileged Pin. A target that is not pinned,
// or does not exist, is no error.
func Unpin(target string) error {
	for range 64 {
		err := unix.Unmount(target, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		switch {
		case err == nil:
			continue
		// EPERM: not privileged to unmount (not root, or root without CAP_SYS_ADMIN), so not privileged to
		// have mounted anything here either; what Pin left then is at most a symbolic link.
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT), errors.Is(err, unix.EPERM):
			if fi, lerr := os.Lstat(target); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
				return os.Remove(target)
			}
			return nil
		default:
			return fmt.Errorf("cannot unmount %s: %w", target, err)
		}
	}
	return fmt.Errorf("cannot unmount %s: too many mounts stacked on it", target)
}

// UnpinAll unmounts every mount at or below dir, deepest first. It must run before any os.RemoveAll of a
// directory holding pinned targets: RemoveAll descends into mounts, and would delete the volume's content
// (or a hostPath's data on the host) through a pin. A missing dir is no error.
func UnpinAll(dir string) error {
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if none, known := noMountBelow(real); known && none {
		// Reading mountinfo is the kernel listing every mount of the host, which beside hundreds of running
		// containers was most of a pod delete's CPU; a pod directory is a few dozen entries.
		return nil
	}
	points, err := MountsUnder(real)
	if err != nil {
		return err
	}
	if len(points) == 0 {
		return nil
	}
	var errs []error
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("cannot unmount %s: %w", p, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if left, err := MountsUnder(real); err != nil {
		return err
	} else if len(left) > 0 {
		return fmt.Errorf("%d mounts are still below %s (first %s)", len(left), real, left[0])
	}
	return nil
}

// noMountBelow walks dir and tells whether nothing at or below it is the root of a mount (statx's
// STATX_ATTR_MOUNT_ROOT: a bind mount of a file or a directory too, whatever its filesystem). known is false
// when that cannot be told (a kernel before Linux 5.8, which does not report the attribute, or an entry
// that went or changed during the walk): the caller then reads mountinfo. The walk stops at the first mount
// root.
func noMountBelow(dir string) (none, known bool) {
	found, unsupported := false, false
	err := filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, 0, &st); err != nil {
			return err
		}
		switch {
		case st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0:
			unsupported = true
			return filepath.SkipAll
		case st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0:
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	if err != nil || unsupported {
		return false, false
	}
	return !found, true
}

// MountsUnder lists the mount points at or below dir from /proc/self/mountinfo, deepest first, each as often
// as it is stacked.
func MountsUnder(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		p := unescape(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescape decodes mountinfo's octal escapes (\040 for a space, \011, \012, \134).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
