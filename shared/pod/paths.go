package pod

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// ValidVolumeName checks a pod volume name: a DNS label (RFC 1123, at most 63 characters), so it is also a
// safe single path element.
func ValidVolumeName(name string) error {
	if name == "" {
		return fmt.Errorf("a volume name must not be empty")
	}
	if len(name) > 63 || !dnsLabel.MatchString(name) {
		return fmt.Errorf("volume name %q must be a DNS label: lower-case letters, digits and '-', at most 63 characters", name)
	}
	return nil
}

// ValidRelativePath checks a path that must stay inside a directory (an item path, a subPath, a projected
// file name): relative, non-empty, and without any ".." element. what names it in the message.
func ValidRelativePath(p, what string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s must not be empty", what)
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("%s %q contains a NUL byte", what, p)
	case filepath.IsAbs(p):
		return fmt.Errorf("%s %q must be a relative path", what, p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return fmt.Errorf("%s %q must not contain '..'", what, p)
		}
	}
	return nil
}

// SecureJoin joins the relative path rel under root and returns the result, refusing any rel that would end
// outside root: ".." elements, or symlinks (inside root) that point out of it. Elements that do not exist yet
// are allowed; the caller may create them. root itself is trusted.
func SecureJoin(root, rel string) (string, error) {
	if err := ValidRelativePath(rel, "path"); err != nil {
		return "", err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("cannot resolve %s: %w", root, err)
	}
	cur := realRoot
	const maxLinks = 40
	links := 0
	rest := strings.Split(filepath.Clean(rel), "/")
	for len(rest) > 0 {
		el := rest[0]
		rest = rest[1:]
		if el == "" || el == "." {
			continue
		}
		if el == ".." {
			// Only reachable through a symlink target: never let it climb above the root.
			if cur == realRoot {
				return "", fmt.Errorf("path %q escapes its volume", rel)
			}
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, el)
		fi, err := os.Lstat(next)
		if os.IsNotExist(err) {
			cur = next
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("path %q has too many symbolic links", rel)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			// An absolute link target is read as inside the root, as a container would see it, but a
			// target naming the host outside the root is refused outright to be clear.
			return "", fmt.Errorf("path %q goes through the symbolic link %s to the absolute path %s, outside its volume", rel, el, target)
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	if cur != realRoot && !strings.HasPrefix(cur, realRoot+string(os.PathSeparator)) {
		return "", fmt.Errorf("path %q escapes its volume", rel)
	}
	return cur, nil
}
