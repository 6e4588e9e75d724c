package dispatcher

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/pod"
)

// PolicyConfig is what the pods of one backend may take from the host they run on, beyond what the backend
// can honour: host paths, privileged containers, the host's network, added capabilities. Its zero value, a
// backend stanza without policy, allows none of them, so that a fresh config gives pods no way onto the host.
// It is the backends[].policy section of the file (file-only, like routing rules).
type PolicyConfig struct {
	// HostPaths are the host directories (or files) hostPath volumes may name: the path itself or anything
	// under it. Read-only unless the entry says read_only: false.
	HostPaths []HostPathRule `koanf:"host_paths"`
	// Privileged allows securityContext.privileged: true.
	Privileged bool `koanf:"privileged"`
	// HostNetwork allows spec.hostNetwork: true.
	HostNetwork bool `koanf:"host_network"`
	// Capabilities are the Linux capabilities securityContext.capabilities.add may name, written as
	// Kubernetes does (NET_ADMIN); CAP_ prefixes and lower case are accepted, ALL allows any.
	Capabilities []string `koanf:"capabilities"`
}

// HostPathRule is one allowed host path prefix.
type HostPathRule struct {
	Path string `koanf:"path"` // absolute; a pod may name it or any path under it
	// ReadOnly, true when unset, allows only read-only mounts of the paths under Path and no hostPath type
	// that creates something (DirectoryOrCreate, FileOrCreate); false allows writing too.
	ReadOnly *bool `koanf:"read_only"`
}

// IsReadOnly reports whether the rule allows reading only (the default).
func (r HostPathRule) IsReadOnly() bool { return r.ReadOnly == nil || *r.ReadOnly }

// capAll is what capabilities.add names to add every capability.
const capAll = "ALL"

// linuxCapabilities are the capability names of Linux (capability.h, up to CHECKPOINT_RESTORE), without
// CAP_, as Kubernetes writes them. A config naming another is a typo caught at start.
var linuxCapabilities = []string{
	"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
	"LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
	"SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
	"SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
	"MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
	"CHECKPOINT_RESTORE",
}

// NormalizeCapability writes a capability name as Kubernetes does: upper case, without CAP_ ("cap_net_admin"
// and "CAP_NET_ADMIN" are NET_ADMIN), which is also how Docker and Podman read what they are given.
func NormalizeCapability(name string) string {
	s := strings.ToUpper(strings.TrimSpace(name))
	if s == capAll {
		return s
	}
	return strings.TrimPrefix(s, "CAP_")
}

func knownCapability(c string) bool { return c == capAll || slices.Contains(linuxCapabilities, c) }

// check normalises the section (clean paths, capability names as Kubernetes writes them) and returns what is
// wrong with it, each error naming its key under key (e.g. backends[0].policy).
func (p *PolicyConfig) check(key string) []error {
	var errs []error
	bad := func(k, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config key %s: %s", k, fmt.Sprintf(format, args...)))
	}
	seen := map[string]int{}
	for i := range p.HostPaths {
		r := &p.HostPaths[i]
		k := fmt.Sprintf("%s.host_paths[%d].path", key, i)
		switch {
		case r.Path == "":
			bad(k, "must name a host directory, e.g. /data")
			continue
		case !filepath.IsAbs(r.Path):
			bad(k, "%q must be an absolute path", r.Path)
			continue
		case slices.Contains(strings.Split(r.Path, "/"), ".."):
			bad(k, "%q must not contain '..'; write the directory it means", r.Path)
			continue
		}
		r.Path = filepath.Clean(r.Path)
		if j, dup := seen[r.Path]; dup {
			bad(k, "%s is listed twice (also at %s.host_paths[%d]); keep one entry", r.Path, key, j)
			continue
		}
		seen[r.Path] = i
	}
	caps := map[string]int{}
	for i, c := range p.Capabilities {
		k := fmt.Sprintf("%s.capabilities[%d]", key, i)
		n := NormalizeCapability(c)
		if !knownCapability(n) {
			bad(k, "%q is neither a Linux capability (like NET_ADMIN, SYS_TIME) nor ALL", c)
			continue
		}
		if j, dup := caps[n]; dup {
			bad(k, "%s is listed twice (also at %s.capabilities[%d])", n, key, j)
		} else {
			caps[n] = i
		}
		p.Capabilities[i] = n
	}
	return errs
}

// backendPolicy is one backend's policy with the key path of its section, named in every refusal so that
// whoever reads the 422 knows what an operator would change.
type backendPolicy struct {
	PolicyConfig
	key string // backends[<i>].policy
}

// policies builds the policy of every configured backend, by name.
func policies(backends []BackendConfig) map[string]backendPolicy {
	out := make(map[string]backendPolicy, len(backends))
	for i, b := range backends {
		out[b.Name] = backendPolicy{PolicyConfig: b.Policy, key: fmt.Sprintf("backends[%d].policy", i)}
	}
	return out
}

// admit is the one check of a pod before its backend is asked to create it: what the backend can honour
// (c.validate) and what the operator allows on it (its policy), every problem of both reported at once as one
// backend.KindInvalid error (422).
func (c *Core) admit(p *v1.Pod, caps backend.Capabilities, name string) error {
	err := c.validate(p, caps, name)
	var problems pod.Problems
	if err != nil {
		if !errors.As(err, &problems) {
			return err
		}
	}
	bp, ok := c.policies[name]
	if !ok {
		// A backend the server was not configured with: nothing is allowed.
		bp = backendPolicy{key: "backends[].policy"}
	}
	extra := bp.problems(p, caps, name)
	if len(extra) == 0 {
		return err
	}
	all := append(slices.Clone(problems), extra...)
	return &backend.Error{Kind: backend.KindInvalid, Msg: all.Error(), Err: all}
}

// problems returns what pod p asks of the host that this policy does not allow on backend name, one problem per
// field, each naming the config key that would allow it. What the backend does not honour at all (caps) is
// left to pod.Validate, which refuses it whatever the policy says.
func (bp backendPolicy) problems(p *v1.Pod, caps backend.Capabilities, name string) pod.Problems {
	var out pod.Problems
	add := func(path, format string, args ...any) {
		out = append(out, path+": "+fmt.Sprintf(format, args...))
	}
	declares := func(feature string) bool { return slices.Contains(caps.Features, feature) }

	if p.Spec.HostNetwork && declares(backend.FeatureHostNetwork) && !bp.HostNetwork {
		add("spec.hostNetwork", "host networking is not allowed on backend %q; an operator allows it with %s.host_network: true %s",
			name, bp.key, policySee)
	}
	containers := allContainers(p)
	bp.securityProblems(containers, declares, name, add)
	if slices.Contains(caps.VolumeKinds, pod.KindHostPath) {
		bp.hostPathProblems(p, containers, name, add)
	}
	return out
}

// policySee ends each problem: where an operator reads what the policy keys allow.
const policySee = `(see README "Security")`

// securityProblems adds, through add, what the containers' security contexts ask that the policy does not
// allow: privileged containers and added capabilities, where the backend declares it honours them.
func (bp backendPolicy) securityProblems(containers []podContainer, declares func(string) bool, name string, add func(path, format string, args ...any)) {
	for _, c := range containers {
		sc := c.sc
		if sc == nil {
			continue
		}
		if sc.Privileged != nil && *sc.Privileged && declares(backend.FeaturePrivileged) && !bp.Privileged {
			add(c.path+".securityContext.privileged", "a privileged container is not allowed on backend %q; an operator allows it with %s.privileged: true %s",
				name, bp.key, policySee)
		}
		if sc.Capabilities == nil || !declares(backend.FeatureCapabilities) {
			continue
		}
		for i, raw := range sc.Capabilities.Add {
			cp := fmt.Sprintf("%s.securityContext.capabilities.add[%d]", c.path, i)
			n := NormalizeCapability(string(raw))
			switch {
			case !knownCapability(n):
				add(cp, "%q is neither a Linux capability (like NET_ADMIN, SYS_TIME) nor ALL", raw)
			case bp.allowsCapability(n):
			case n == capAll:
				add(cp, "adding ALL capabilities is not allowed on backend %q; an operator allows it with ALL in %s.capabilities %s",
					name, bp.key, policySee)
			default:
				add(cp, "adding capability %s is not allowed on backend %q; an operator allows it under %s.capabilities %s",
					n, name, bp.key, policySee)
			}
		}
	}
}

// hostPathProblems adds, through add, the pod's hostPath volumes that the policy does not allow: paths not
// under an allowed prefix (after symbolic links), and writes or creation under a read-only prefix.
func (bp backendPolicy) hostPathProblems(p *v1.Pod, containers []podContainer, name string, add func(path, format string, args ...any)) {
	for i := range p.Spec.Volumes {
		vol := &p.Spec.Volumes[i]
		hp := vol.HostPath
		if hp == nil || !filepath.IsAbs(hp.Path) {
			continue // no hostPath, or a relative one pod.Validate refuses
		}
		vp := fmt.Sprintf("spec.volumes[%d].hostPath", i)
		lexical := filepath.Clean(hp.Path)
		shown := fmt.Sprintf("%q", hp.Path)
		if lexical != hp.Path {
			shown += fmt.Sprintf(" (that is %s)", lexical)
		}
		if len(bp.HostPaths) == 0 {
			add(vp+".path", "%s is refused: no host path is allowed on backend %q; an operator allows one under %s.host_paths %s",
				shown, name, bp.key, policySee)
			continue
		}
		resolved, err := resolveHostPath(lexical)
		if err != nil {
			add(vp+".path", "%s cannot be checked against the host paths allowed on backend %q: %v", shown, name, err)
			continue
		}
		if resolved != lexical {
			shown += fmt.Sprintf(", which resolves through symbolic links to %s,", resolved)
		}
		rule, write := bp.governs(lexical, resolved)
		if rule < 0 {
			add(vp+".path", "%s is not under a host path allowed on backend %q (%s); an operator allows more under %s.host_paths %s",
				shown, name, bp.allowedList(), bp.key, policySee)
			continue
		}
		if write {
			continue
		}
		// Readable only: nothing may write to it, nor create it.
		ruleKey := fmt.Sprintf("%s.host_paths[%d]", bp.key, rule)
		if t := hp.Type; t != nil {
			instead := map[v1.HostPathType]v1.HostPathType{
				v1.HostPathDirectoryOrCreate: v1.HostPathDirectory, v1.HostPathFileOrCreate: v1.HostPathFile}[*t]
			if instead != "" {
				add(vp+".type", "%s may create %s, but backend %q allows it read-only (%s); use type %s, or ask an operator for a prefix with read_only: false",
					*t, lexical, name, ruleKey, instead)
			}
		}
		for _, c := range containers {
			for j, vm := range c.mounts {
				if vm.Name == vol.Name && !vm.ReadOnly {
					add(fmt.Sprintf("%s.volumeMounts[%d].readOnly", c.path, j),
						"host path %s is allowed read-only on backend %q (%s); set readOnly: true on this volumeMount", lexical, name, ruleKey)
				}
			}
		}
	}
}

// podContainer is one container of any kind, as the policy sees it.
type podContainer struct {
	path   string // spec.containers[0], spec.initContainers[1], spec.ephemeralContainers[0]
	sc     *v1.SecurityContext
	mounts []v1.VolumeMount
}

// allContainers lists every container of p: init, regular and ephemeral, so that no kind escapes the policy
// (pod.Validate refuses ephemeral containers today; a backend that ran them would still be covered).
func allContainers(p *v1.Pod) []podContainer {
	var out []podContainer
	for i, c := range p.Spec.InitContainers {
		out = append(out, podContainer{fmt.Sprintf("spec.initContainers[%d]", i), c.SecurityContext, c.VolumeMounts})
	}
	for i, c := range p.Spec.Containers {
		out = append(out, podContainer{fmt.Sprintf("spec.containers[%d]", i), c.SecurityContext, c.VolumeMounts})
	}
	for i, c := range p.Spec.EphemeralContainers {
		out = append(out, podContainer{fmt.Sprintf("spec.ephemeralContainers[%d]", i), c.SecurityContext, c.VolumeMounts})
	}
	return out
}

func (bp backendPolicy) allowsCapability(c string) bool {
	return slices.Contains(bp.Capabilities, capAll) || slices.Contains(bp.Capabilities, c)
}

// governs finds the rules that decide a host path: the longest prefix containing the path as written
// (cleaned), and the longest prefix containing the path its symbolic links lead to, with each prefix resolved
// the same way (so that a prefix which is itself a link still matches). Both must exist: the first is what the
// operator's prefixes say, the second what the engine will really bind. rule is the index of the deciding rule
// (a read-only one when either is), -1 when the path is not allowed at all; write says whether both rules
// allow writing. The longest prefix decides so that /scratch/ro read-only holds under a writable /scratch.
func (bp backendPolicy) governs(lexical, resolved string) (rule int, write bool) {
	lr, rr := -1, -1
	for i, r := range bp.HostPaths {
		if under(lexical, r.Path) && (lr < 0 || len(r.Path) > len(bp.HostPaths[lr].Path)) {
			lr = i
		}
		rp, err := resolveHostPath(r.Path)
		if err != nil {
			continue // a prefix lost in a loop of links matches nothing
		}
		if under(resolved, rp) && (rr < 0 || len(rp) > len(bp.resolvedPrefix(rr))) {
			rr = i
		}
	}
	if lr < 0 || rr < 0 {
		return -1, false
	}
	switch {
	case bp.HostPaths[lr].IsReadOnly():
		return lr, false
	case bp.HostPaths[rr].IsReadOnly():
		return rr, false
	}
	return lr, true
}

// resolvedPrefix is rule i's path with its symbolic links resolved.
func (bp backendPolicy) resolvedPrefix(i int) string {
	rp, _ := resolveHostPath(bp.HostPaths[i].Path)
	return rp
}

// allowedList names the allowed prefixes for a message: "/data read-only, /scratch".
func (bp backendPolicy) allowedList() string {
	var parts []string
	for _, r := range bp.HostPaths {
		s := r.Path
		if r.IsReadOnly() {
			s += " read-only"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

// under reports whether path is prefix or below it, element by element: /data2 is not under /data.
func under(path, prefix string) bool {
	if prefix == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// resolveHostPath follows every symbolic link of the absolute, clean path, element by element, as the kernel
// will when the engine binds it, and returns the path it leads to. Elements that do not exist are kept as they
// are (a DirectoryOrCreate path, or a dangling link's target, which FileOrCreate would create). A loop of
// links is an error.
func resolveHostPath(path string) (string, error) {
	const maxLinks = 40
	links := 0
	cur := "/"
	rest := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for len(rest) > 0 {
		el := rest[0]
		rest = rest[1:]
		switch el {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, el)
		fi, err := os.Lstat(next)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				return "", err
			}
			// Nothing below a missing element can be a link yet; a later ".." (from a link's target) climbs
			// back to elements that exist and are resolved again.
			cur = next
			continue
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("too many symbolic links (a loop?) under %s", path)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, nil
}
