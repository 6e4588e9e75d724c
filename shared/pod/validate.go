package pod

import (
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// Features beyond backend's Feature* names that the pod layer checks. A backend that honours them declares
// them in Capabilities.Features like the others.
const (
	// FeatureNoNewPrivileges: securityContext.allowPrivilegeEscalation false is enforced (no_new_privs).
	FeatureNoNewPrivileges = "securityContext.allowPrivilegeEscalation"
)

// Problems is the list of everything wrong with a pod, each "<field path>: <what>", carried as the cause of
// the backend.KindInvalid error Validate returns.
type Problems []string

func (p Problems) Error() string { return strings.Join(p, "; ") }

// Validate refuses a pod that backend backendName, with capabilities caps, cannot run exactly as written. It
// works from a whitelist: every pod field that is set must be covered by a capability or be one of the fields
// that do not change what runs (labels, annotations, nodeName, tolerations, affinity, schedulerName,
// priority, serviceAccountName, terminationMessagePath...); anything else, including fields added to
// Kubernetes later, is refused. Defaults the API server fills in (imagePullPolicy by tag, dnsPolicy
// ClusterFirst, terminationGracePeriodSeconds 30, the kube-api-access projected volume...) pass on any
// backend that declares the "projected" volume kind and restartPolicy Always. It also refuses structurally
// bad pods: no containers, duplicate names, a volumeMount naming no volume, a missing UID, unsafe paths.
// The error is one backend.KindInvalid listing every problem with its field path.
func Validate(p *v1.Pod, caps backend.Capabilities, backendName string) error {
	if p == nil {
		return backend.Invalid("no pod was given")
	}
	v := &validator{name: backendName, features: set(caps.Features), kinds: set(caps.VolumeKinds), ext: set(caps.ExtendedResources)}
	v.pod(p)
	if len(v.problems) == 0 {
		return nil
	}
	return &backend.Error{Kind: backend.KindInvalid, Msg: v.problems.Error(), Err: v.problems}
}

type validator struct {
	name     string
	features map[string]bool
	kinds    map[string]bool
	ext      map[string]bool
	problems Problems
}

func set(list []string) map[string]bool {
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

func (v *validator) add(path, format string, args ...any) {
	v.problems = append(v.problems, path+": "+fmt.Sprintf(format, args...))
}

// need refuses what (at path) unless the backend declares feature.
func (v *validator) need(path, feature, what string) {
	if !v.features[feature] {
		v.add(path, "%s is not supported by backend %q", what, v.name)
	}
}

// onlyKnown refuses every field of the struct obj that is set and not listed in known (JSON names).
func (v *validator) onlyKnown(path string, obj any, known ...string) {
	ok := set(known)
	var walk func(rv reflect.Value)
	walk = func(rv reflect.Value) {
		t := rv.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Anonymous {
				walk(rv.Field(i))
				continue
			}
			name := jsonName(f)
			if ok[name] || rv.Field(i).IsZero() {
				continue
			}
			v.add(path+"."+name, "this field is not supported by backend %q", v.name)
		}
	}
	walk(reflectValue(obj))
}

func reflectValue(obj any) reflect.Value {
	rv := reflect.ValueOf(obj)
	for rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	return rv
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}

func (v *validator) pod(p *v1.Pod) {
	if err := ValidPodUID(string(p.UID)); err != nil {
		v.add("metadata.uid", "%s", strings.TrimPrefix(err.Error(), "metadata.uid "))
	}
	if p.Name == "" {
		v.add("metadata.name", "the pod has no name")
	}
	s := &p.Spec
	v.onlyKnown("spec", s,
		// checked below
		"volumes", "initContainers", "containers", "restartPolicy", "terminationGracePeriodSeconds",
		"dnsPolicy", "hostNetwork", "securityContext", "shareProcessNamespace", "os", "hostUsers", "hostAliases",
		// do not change what runs in the pod
		"nodeSelector", "serviceAccountName", "serviceAccount", "automountServiceAccountToken", "nodeName",
		"imagePullSecrets", "hostname", "subdomain", "setHostnameAsFQDN", "hostnameOverride", "affinity",
		"schedulerName", "tolerations", "priorityClassName", "priority", "preemptionPolicy", "readinessGates",
		"overhead", "topologySpreadConstraints", "schedulingGates", "enableServiceLinks", "schedulingGroup",
		"evictionResponders")

	if len(s.Containers) == 0 {
		v.add("spec.containers", "the pod has no containers")
	}
	if len(s.Containers) > 1 {
		v.need("spec.containers", backend.FeatureMultipleContainers, "more than one container")
	}
	if len(s.InitContainers) > 0 {
		v.need("spec.initContainers", backend.FeatureInitContainers, "an init container")
	}
	switch s.RestartPolicy {
	case "", v1.RestartPolicyAlways:
		v.need("spec.restartPolicy", backend.FeatureRestartPolicyAlways, "restartPolicy Always (the Kubernetes default)")
	case v1.RestartPolicyOnFailure:
		v.need("spec.restartPolicy", backend.FeatureRestartPolicyOnFailure, "restartPolicy OnFailure")
	case v1.RestartPolicyNever:
	default:
		v.add("spec.restartPolicy", "%q is not a restart policy: use Always, OnFailure or Never", s.RestartPolicy)
	}
	if g := s.TerminationGracePeriodSeconds; g != nil {
		switch {
		case *g < 0:
			v.add("spec.terminationGracePeriodSeconds", "must not be negative")
		case *g != int64(DefaultGracePeriod.Seconds()):
			v.need("spec.terminationGracePeriodSeconds", backend.FeatureTerminationGrace, "a terminationGracePeriodSeconds other than 30")
		}
	}
	switch s.DNSPolicy {
	case "", v1.DNSClusterFirst, v1.DNSDefault, v1.DNSClusterFirstWithHostNet:
		// The engines resolve names with the host's configuration; cluster DNS is not reachable from
		// them in any policy, so these policies all run the same.
	default:
		v.add("spec.dnsPolicy", "dnsPolicy %q is not supported by backend %q", s.DNSPolicy, v.name)
	}
	if s.HostNetwork {
		v.need("spec.hostNetwork", backend.FeatureHostNetwork, "hostNetwork")
	}
	v.hostAliases(s.HostAliases)
	if s.ShareProcessNamespace != nil && *s.ShareProcessNamespace {
		v.add("spec.shareProcessNamespace", "a shared process namespace is not supported by backend %q", v.name)
	}
	if s.HostUsers != nil && !*s.HostUsers {
		v.add("spec.hostUsers", "user namespaces (hostUsers false) are not supported by backend %q", v.name)
	}
	if s.OS != nil && s.OS.Name != v1.Linux {
		v.add("spec.os.name", "only linux pods run on backend %q", v.name)
	}
	if s.SecurityContext != nil {
		v.podSecurity(s.SecurityContext)
		v.sysctls(p, s.SecurityContext)
	}

	volumes := v.volumes(p)
	mounted := map[string]bool{}
	names := map[string]string{}
	check := func(kind string, list []v1.Container) {
		for i := range list {
			path := fmt.Sprintf("spec.%s[%d]", kind, i)
			c := &list[i]
			switch {
			case c.Name == "":
				v.add(path+".name", "a container needs a name")
			case !dnsLabel.MatchString(c.Name) || len(c.Name) > 63:
				v.add(path+".name", "container name %q must be a DNS label (lower-case letters, digits and '-')", c.Name)
			case names[c.Name] != "":
				v.add(path+".name", "container name %q is used twice (also at %s)", c.Name, names[c.Name])
			default:
				names[c.Name] = path
			}
			v.container(p, path, c, volumes, mounted)
		}
	}
	check("initContainers", s.InitContainers)
	check("containers", s.Containers)
	for i := range s.Volumes {
		vol := &s.Volumes[i]
		if kind := VolumeKind(vol); kind != "" && !mounted[vol.Name] && !v.kinds[kind] {
			v.add(fmt.Sprintf("spec.volumes[%d]", i), "volume kind %q is not supported by backend %q", kind, v.name)
		}
	}
}

// DefaultTerminationMessagePath is where the API server puts every container's termination message file.
const DefaultTerminationMessagePath = "/dev/termination-log"

// terminationMessage refuses what a pod asks of termination messages on a backend that does not report
// them: a path or a policy of its own choosing. The API server's defaults (DefaultTerminationMessagePath,
// policy File) are on every pod, so they are taken as they are: the message is then empty.
func (v *validator) terminationMessage(path string, c *v1.Container) {
	switch c.TerminationMessagePolicy {
	case "", v1.TerminationMessageReadFile:
	case v1.TerminationMessageFallbackToLogsOnError:
		v.need(path+".terminationMessagePolicy", backend.FeatureTerminationMessage, "terminationMessagePolicy FallbackToLogsOnError")
	default:
		v.add(path+".terminationMessagePolicy", "%q is not a termination message policy: use File or FallbackToLogsOnError", c.TerminationMessagePolicy)
	}
	switch p := c.TerminationMessagePath; {
	case p == "" || p == DefaultTerminationMessagePath:
	case !strings.HasPrefix(p, "/"):
		v.add(path+".terminationMessagePath", "%q must be an absolute path", p)
	default:
		v.need(path+".terminationMessagePath", backend.FeatureTerminationMessage, "a terminationMessagePath other than "+DefaultTerminationMessagePath)
	}
}

// hostAliases checks spec.hostAliases: each an IP and hostnames that can stand on a hosts file's line.
func (v *validator) hostAliases(aliases []v1.HostAlias) {
	if len(aliases) > 0 {
		v.need("spec.hostAliases", backend.FeatureHostAliases, "hostAliases")
	}
	for i, a := range aliases {
		ap := fmt.Sprintf("spec.hostAliases[%d]", i)
		if net.ParseIP(a.IP) == nil {
			v.add(ap+".ip", "%q is not an IP address", a.IP)
		}
		if len(a.Hostnames) == 0 {
			v.add(ap+".hostnames", "an alias needs at least one hostname")
		}
		for j, h := range a.Hostnames {
			if h == "" || strings.ContainsFunc(h, func(r rune) bool { return r <= ' ' || r == '#' || r > '~' }) {
				v.add(fmt.Sprintf("%s.hostnames[%d]", ap, j), "%q is not a hostname (no spaces, control characters or #)", h)
			}
		}
	}
}

func (v *validator) podSecurity(sc *v1.PodSecurityContext) {
	const path = "spec.securityContext"
	v.onlyKnown(path, sc, "runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile", "appArmorProfile", "sysctls",
		"supplementalGroups",
		// meaningless without the fsGroup / seLinuxOptions that are refused
		"fsGroupChangePolicy", "seLinuxChangePolicy")
	if sc.RunAsUser != nil {
		v.need(path+".runAsUser", backend.FeatureRunAsUser, "runAsUser")
	}
	if len(sc.SupplementalGroups) > 0 {
		v.need(path+".supplementalGroups", backend.FeatureSupplementalGroups, "supplementalGroups")
		for i, g := range sc.SupplementalGroups {
			if g < 0 {
				v.add(fmt.Sprintf("%s.supplementalGroups[%d]", path, i), "%d is not a group id", g)
			}
		}
	}
	if p := sc.SupplementalGroupsPolicy; p != nil && *p != v1.SupplementalGroupsPolicyMerge {
		v.add(path+".supplementalGroupsPolicy", "%q is not supported by backend %q (only Merge, the default: the image's groups of the user are kept)", *p, v.name)
	}
	if sc.RunAsGroup != nil {
		v.need(path+".runAsGroup", backend.FeatureRunAsGroup, "runAsGroup")
	}
	v.seccomp(path, sc.SeccompProfile, sc.AppArmorProfile)
}

func (v *validator) seccomp(path string, sp *v1.SeccompProfile, ap *v1.AppArmorProfile) {
	// RuntimeDefault is what every engine applies without being asked.
	if sp != nil && sp.Type != v1.SeccompProfileTypeRuntimeDefault {
		v.add(path+".seccompProfile", "seccomp profile %q is not supported by backend %q (only RuntimeDefault)", sp.Type, v.name)
	}
	if ap != nil && ap.Type != v1.AppArmorProfileTypeRuntimeDefault {
		v.add(path+".appArmorProfile", "AppArmor profile %q is not supported by backend %q (only RuntimeDefault)", ap.Type, v.name)
	}
}

// volumes checks spec.volumes and returns them by name.
func (v *validator) volumes(p *v1.Pod) map[string]*v1.Volume {
	out := map[string]*v1.Volume{}
	for i := range p.Spec.Volumes {
		vol := &p.Spec.Volumes[i]
		path := fmt.Sprintf("spec.volumes[%d]", i)
		if err := ValidVolumeName(vol.Name); err != nil {
			v.add(path+".name", "%v", err)
		} else if out[vol.Name] != nil {
			v.add(path+".name", "volume name %q is used twice", vol.Name)
		} else {
			out[vol.Name] = vol
		}
		src := &vol.VolumeSource
		n := 0
		for i, rv := 0, reflectValue(src); i < rv.NumField(); i++ {
			if !rv.Field(i).IsZero() {
				n++
			}
		}
		switch {
		case n == 0:
			v.add(path, "the volume has no source")
			continue
		case n > 1:
			v.add(path, "the volume has more than one source")
			continue
		}
		switch {
		case src.ConfigMap != nil:
			v.onlyKnown(path+".configMap", src.ConfigMap, "name", "items", "defaultMode", "optional")
			v.items(path+".configMap", src.ConfigMap.Items, src.ConfigMap.DefaultMode)
		case src.Secret != nil:
			v.onlyKnown(path+".secret", src.Secret, "secretName", "items", "defaultMode", "optional")
			v.items(path+".secret", src.Secret.Items, src.Secret.DefaultMode)
		case src.DownwardAPI != nil:
			v.onlyKnown(path+".downwardAPI", src.DownwardAPI, "items", "defaultMode")
			v.mode(path+".downwardAPI.defaultMode", src.DownwardAPI.DefaultMode)
			v.downwardItems(p, path+".downwardAPI.items", src.DownwardAPI.Items)
		case src.Projected != nil:
			v.projected(p, path+".projected", src.Projected)
		case src.EmptyDir != nil:
			v.onlyKnown(path+".emptyDir", src.EmptyDir, "medium", "sizeLimit")
			switch src.EmptyDir.Medium {
			case v1.StorageMediumDefault:
				if src.EmptyDir.SizeLimit != nil {
					v.need(path+".emptyDir.sizeLimit", backend.FeatureEmptyDirSizeLimit, "an emptyDir sizeLimit on disk")
				}
			case v1.StorageMediumMemory:
				// A tmpfs always has a size, so a Memory emptyDir honours sizeLimit with it.
				v.need(path+".emptyDir.medium", backend.FeatureEmptyDirMemory, "emptyDir medium Memory")
			default:
				v.add(path+".emptyDir.medium", "emptyDir medium %q is not supported by backend %q", src.EmptyDir.Medium, v.name)
			}
			if l := src.EmptyDir.SizeLimit; l != nil && l.Sign() <= 0 {
				v.add(path+".emptyDir.sizeLimit", "must be positive")
			}
		case src.HostPath != nil:
			if !filepath.IsAbs(src.HostPath.Path) {
				v.add(path+".hostPath.path", "%q must be an absolute path", src.HostPath.Path)
			}
			if t := src.HostPath.Type; t != nil {
				switch *t {
				case v1.HostPathUnset, v1.HostPathDirectoryOrCreate, v1.HostPathDirectory, v1.HostPathFileOrCreate,
					v1.HostPathFile, v1.HostPathSocket, v1.HostPathCharDev, v1.HostPathBlockDev:
				default:
					v.add(path+".hostPath.type", "%q is not a hostPath type", *t)
				}
			}
		}
	}
	return out
}

func (v *validator) mode(path string, m *int32) {
	if m != nil && (*m < 0 || *m > 0o777) {
		v.add(path, "file mode %d is outside 0 to 0777 (511)", *m)
	}
}

func (v *validator) items(path string, items []v1.KeyToPath, defaultMode *int32) {
	v.mode(path+".defaultMode", defaultMode)
	seen := map[string]bool{}
	for i, it := range items {
		ip := fmt.Sprintf("%s.items[%d]", path, i)
		v.onlyKnown(ip, &it, "key", "path", "mode")
		if it.Key == "" {
			v.add(ip+".key", "must not be empty")
		}
		if err := ValidRelativePath(it.Path, "path"); err != nil {
			v.add(ip+".path", "%v", err)
		} else if p := filepath.Clean(it.Path); seen[p] {
			v.add(ip+".path", "path %q is used twice", it.Path)
		} else {
			seen[p] = true
		}
		v.mode(ip+".mode", it.Mode)
	}
}

func (v *validator) downwardItems(p *v1.Pod, path string, items []v1.DownwardAPIVolumeFile) {
	for i, it := range items {
		ip := fmt.Sprintf("%s[%d]", path, i)
		v.onlyKnown(ip, &it, "path", "fieldRef", "resourceFieldRef", "mode")
		if err := ValidRelativePath(it.Path, "path"); err != nil {
			v.add(ip+".path", "%v", err)
		}
		v.mode(ip+".mode", it.Mode)
		switch {
		case it.FieldRef != nil:
			if !KnownFieldPath(it.FieldRef.FieldPath) {
				v.add(ip+".fieldRef.fieldPath", "field path %q is not supported", it.FieldRef.FieldPath)
			}
		case it.ResourceFieldRef != nil:
			if it.ResourceFieldRef.ContainerName == "" {
				v.add(ip+".resourceFieldRef.containerName", "is required in a volume")
			} else {
				v.resourceRef(p, ip+".resourceFieldRef", it.ResourceFieldRef, "")
			}
		default:
			v.add(ip, "needs a fieldRef or a resourceFieldRef")
		}
	}
}

func (v *validator) resourceRef(p *v1.Pod, path string, ref *v1.ResourceFieldSelector, container string) {
	name := ref.ContainerName
	if name == "" {
		name = container
	}
	if FindContainer(p, name) == nil {
		v.add(path+".containerName", "the pod has no container %q", name)
	}
	kind, res, _ := strings.Cut(ref.Resource, ".")
	if (kind != "limits" && kind != "requests") || (res != "cpu" && res != "memory" && res != "ephemeral-storage") {
		v.add(path+".resource", "%q is not supported: use limits or requests of cpu, memory or ephemeral-storage", ref.Resource)
	}
}

func (v *validator) projected(p *v1.Pod, path string, s *v1.ProjectedVolumeSource) {
	v.onlyKnown(path, s, "sources", "defaultMode")
	v.mode(path+".defaultMode", s.DefaultMode)
	for i := range s.Sources {
		src := &s.Sources[i]
		sp := fmt.Sprintf("%s.sources[%d]", path, i)
		// The other projections (clusterTrustBundle, podCertificate) are computed by interLink into the
		// projected volume map, which only Create sees; they are accepted here and checked there.
		switch {
		case src.ConfigMap != nil:
			v.items(sp+".configMap", src.ConfigMap.Items, nil)
		case src.Secret != nil:
			v.items(sp+".secret", src.Secret.Items, nil)
		case src.DownwardAPI != nil:
			v.downwardItems(p, sp+".downwardAPI.items", src.DownwardAPI.Items)
		case src.ServiceAccountToken != nil:
			v.onlyKnown(sp+".serviceAccountToken", src.ServiceAccountToken, "audience", "expirationSeconds", "path")
			if err := ValidRelativePath(src.ServiceAccountToken.Path, "path"); err != nil {
				v.add(sp+".serviceAccountToken.path", "%v", err)
			}
		}
	}
}

func (v *validator) container(p *v1.Pod, path string, c *v1.Container, volumes map[string]*v1.Volume, mounted map[string]bool) {
	v.onlyKnown(path, c, "name", "image", "command", "args", "workingDir", "env", "envFrom", "resources",
		"volumeMounts", "ports", "imagePullPolicy", "securityContext", "livenessProbe", "readinessProbe",
		"startupProbe", "lifecycle", "stdin", "stdinOnce", "tty",
		// do not change what runs
		"terminationMessagePath", "terminationMessagePolicy", "resizePolicy")
	v.terminationMessage(path, c)
	if c.Image == "" {
		v.add(path+".image", "a container needs an image")
	}
	if c.WorkingDir != "" && !filepath.IsAbs(c.WorkingDir) {
		v.add(path+".workingDir", "%q must be an absolute path", c.WorkingDir)
	}
	v.containerFeatures(path, c)
	v.containerEnv(p, path, c)
	v.resources(path+".resources", &c.Resources)
	if c.SecurityContext != nil {
		v.containerSecurity(p, path+".securityContext", c.SecurityContext)
	} else if sc := p.Spec.SecurityContext; sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot {
		v.nonRoot("spec.securityContext.runAsNonRoot", sc.RunAsUser)
	}
	v.volumeMounts(path, c, volumes, mounted)
}

// containerFeatures checks the container's pull policy and what needs a backend feature: probes,
// lifecycle hooks, stdin and ports.
func (v *validator) containerFeatures(path string, c *v1.Container) {
	switch c.ImagePullPolicy {
	case "":
	case v1.PullAlways, v1.PullIfNotPresent, v1.PullNever:
		if c.ImagePullPolicy != DefaultPullPolicy(c.Image) {
			v.need(path+".imagePullPolicy", backend.FeatureImagePullPolicy, fmt.Sprintf("imagePullPolicy %s", c.ImagePullPolicy))
		}
	default:
		v.add(path+".imagePullPolicy", "%q is not a pull policy: use Always, IfNotPresent or Never", c.ImagePullPolicy)
	}
	if c.LivenessProbe != nil || c.ReadinessProbe != nil || c.StartupProbe != nil {
		if strings.HasPrefix(path, "spec.initContainers") {
			v.add(path, "an init container cannot have probes")
		} else {
			v.need(path, backend.FeatureProbes, "a probe")
		}
	}
	if c.Lifecycle != nil {
		v.need(path+".lifecycle", backend.FeatureLifecycleHooks, "a lifecycle hook")
	}
	if c.Stdin || c.StdinOnce || c.TTY {
		v.need(path, backend.FeatureStdin, "stdin or tty")
	}
	for i := range c.Ports {
		pp := fmt.Sprintf("%s.ports[%d]", path, i)
		v.onlyKnown(pp, &c.Ports[i], "name", "containerPort", "protocol")
		if i == 0 {
			v.need(pp, backend.FeaturePorts, "a container port")
		}
	}
}

// containerEnv checks the container's env: names, and the sources of values taken from the pod.
func (v *validator) containerEnv(p *v1.Pod, path string, c *v1.Container) {
	for i, e := range c.Env {
		ep := fmt.Sprintf("%s.env[%d]", path, i)
		if e.Name == "" {
			v.add(ep+".name", "must not be empty")
		}
		if e.ValueFrom == nil || e.Value != "" {
			continue
		}
		vf := e.ValueFrom
		v.onlyKnown(ep+".valueFrom", vf, "fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
		switch {
		case vf.FieldRef != nil:
			if !KnownFieldPath(vf.FieldRef.FieldPath) {
				v.add(ep+".valueFrom.fieldRef.fieldPath", "field path %q is not supported", vf.FieldRef.FieldPath)
			}
		case vf.ResourceFieldRef != nil:
			v.resourceRef(p, ep+".valueFrom.resourceFieldRef", vf.ResourceFieldRef, c.Name)
		}
	}
}

// volumeMounts checks the container's mounts against the pod's volumes and marks in mounted the volumes
// it mounts.
func (v *validator) volumeMounts(path string, c *v1.Container, volumes map[string]*v1.Volume, mounted map[string]bool) {
	targets := map[string]int{}
	for i, vm := range c.VolumeMounts {
		mp := fmt.Sprintf("%s.volumeMounts[%d]", path, i)
		v.onlyKnown(mp, &c.VolumeMounts[i], "name", "readOnly", "mountPath", "subPath", "subPathExpr", "mountPropagation", "recursiveReadOnly")
		if vm.MountPropagation != nil && *vm.MountPropagation != v1.MountPropagationNone {
			v.add(mp+".mountPropagation", "mount propagation %q is not supported by backend %q", *vm.MountPropagation, v.name)
		}
		if vm.RecursiveReadOnly != nil && *vm.RecursiveReadOnly != v1.RecursiveReadOnlyDisabled {
			v.add(mp+".recursiveReadOnly", "recursive read-only mounts are not supported by backend %q", v.name)
		}
		vol, ok := volumes[vm.Name]
		if !ok {
			v.add(mp+".name", "the pod has no volume %q", vm.Name)
		} else {
			mounted[vm.Name] = true
			if kind := VolumeKind(vol); kind != "" && !v.kinds[kind] {
				v.add(mp, "volume kind %q is not supported by backend %q", kind, v.name)
			}
		}
		if !filepath.IsAbs(vm.MountPath) {
			v.add(mp+".mountPath", "%q must be an absolute path", vm.MountPath)
		} else if j, dup := targets[filepath.Clean(vm.MountPath)]; dup {
			v.add(mp+".mountPath", "%q is already mounted by volumeMounts[%d]", vm.MountPath, j)
		} else {
			targets[filepath.Clean(vm.MountPath)] = i
		}
		if vm.SubPath != "" {
			v.need(mp+".subPath", backend.FeatureSubPath, "subPath")
			if err := ValidRelativePath(vm.SubPath, "subPath"); err != nil {
				v.add(mp+".subPath", "%v", err)
			}
		}
		if vm.SubPathExpr != "" {
			// Expanded with the container's environment at create (ExpandSubPathExprs), then a subPath.
			v.need(mp+".subPathExpr", backend.FeatureSubPath, "subPathExpr")
			if vm.SubPath != "" {
				v.add(mp+".subPathExpr", "subPath and subPathExpr are mutually exclusive")
			}
		}
	}
}

func (v *validator) resources(path string, r *v1.ResourceRequirements) {
	if len(r.Claims) > 0 {
		v.add(path+".claims", "resource claims are not supported by backend %q", v.name)
	}
	for _, part := range []struct {
		name string
		list v1.ResourceList
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		for name, q := range part.list {
			if q.Sign() < 0 {
				v.add(fmt.Sprintf("%s.%s[%s]", path, part.name, name), "must not be negative")
			}
			if IsExtendedResource(name) && !v.ext[string(name)] {
				v.add(fmt.Sprintf("%s.%s[%s]", path, part.name, name), "resource %q is not supported by backend %q", name, v.name)
			}
		}
	}
}

func (v *validator) containerSecurity(p *v1.Pod, path string, sc *v1.SecurityContext) {
	v.onlyKnown(path, sc, "capabilities", "privileged", "runAsUser", "runAsGroup", "runAsNonRoot",
		"readOnlyRootFilesystem", "allowPrivilegeEscalation", "procMount", "seccompProfile", "appArmorProfile")
	if sc.RunAsUser != nil {
		v.need(path+".runAsUser", backend.FeatureRunAsUser, "runAsUser")
	}
	if sc.RunAsGroup != nil {
		v.need(path+".runAsGroup", backend.FeatureRunAsGroup, "runAsGroup")
	}
	if sc.Privileged != nil && *sc.Privileged {
		v.need(path+".privileged", backend.FeaturePrivileged, "a privileged container")
	}
	if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem {
		v.need(path+".readOnlyRootFilesystem", backend.FeatureReadOnlyRootFS, "readOnlyRootFilesystem")
	}
	if sc.Capabilities != nil && (len(sc.Capabilities.Add) > 0 || len(sc.Capabilities.Drop) > 0) {
		v.need(path+".capabilities", backend.FeatureCapabilities, "adding or dropping capabilities")
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation {
		v.need(path+".allowPrivilegeEscalation", FeatureNoNewPrivileges, "allowPrivilegeEscalation false")
	}
	if sc.ProcMount != nil && *sc.ProcMount != v1.DefaultProcMount {
		v.add(path+".procMount", "procMount %q is not supported by backend %q", *sc.ProcMount, v.name)
	}
	v.seccomp(path, sc.SeccompProfile, sc.AppArmorProfile)
	nonRoot, user := sc.RunAsNonRoot, sc.RunAsUser
	if psc := p.Spec.SecurityContext; psc != nil {
		if nonRoot == nil {
			nonRoot = psc.RunAsNonRoot
		}
		if user == nil {
			user = psc.RunAsUser
		}
	}
	if nonRoot != nil && *nonRoot {
		v.nonRoot(path+".runAsNonRoot", user)
	}
}

// nonRoot checks runAsNonRoot with the runAsUser that applies: root contradicts it; without one, the user
// is the image's, which a backend declaring FeatureRunAsNonRoot checks when the container starts (the
// shim refuses to run as root); on another backend the pod must name a non-root runAsUser.
func (v *validator) nonRoot(path string, user *int64) {
	switch {
	case user != nil && *user == 0:
		v.add(path, "runAsNonRoot contradicts runAsUser 0")
	case user == nil && !v.features[backend.FeatureRunAsNonRoot]:
		v.add(path, "runAsNonRoot needs a runAsUser on backend %q, which does not check the image's user", v.name)
	}
}
