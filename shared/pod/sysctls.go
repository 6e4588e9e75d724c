package pod

import (
	"fmt"
	"slices"
	"strings"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// SafeSysctls are the sysctls the kubelet allows a pod without an operator's leave: namespaced, so that
// setting one changes only the pod's own network or IPC namespace.
var SafeSysctls = []string{
	"kernel.shm_rmid_forced",
	"net.ipv4.ip_local_port_range",
	"net.ipv4.ip_local_reserved_ports",
	"net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.ping_group_range",
	"net.ipv4.tcp_fin_timeout",
	"net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
	"net.ipv4.tcp_keepalive_time",
	"net.ipv4.tcp_syncookies",
}

// SysctlName is a sysctl name with "." separators, as the kubelet reads one written with "/" separators (in
// which a "." stands for a "/": net/ipv4/conf/eth0.100/rp_filter is net.ipv4.conf.eth0/100.rp_filter).
func SysctlName(name string) string {
	if !strings.Contains(name, "/") {
		return name
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '/':
			return '.'
		case '.':
			return '/'
		}
		return r
	}, name)
}

// Sysctls returns the sysctls of p's security context by their dotted name (SysctlName); nil when it has
// none.
func Sysctls(p *v1.Pod) map[string]string {
	sc := p.Spec.SecurityContext
	if sc == nil || len(sc.Sysctls) == 0 {
		return nil
	}
	out := make(map[string]string, len(sc.Sysctls))
	for _, s := range sc.Sysctls {
		out[SysctlName(s.Name)] = s.Value
	}
	return out
}

// IsNetSysctl tells whether name (dotted) belongs to the network namespace.
func IsNetSysctl(name string) bool { return strings.HasPrefix(name, "net.") }

func (v *validator) sysctls(p *v1.Pod, sc *v1.PodSecurityContext) {
	if len(sc.Sysctls) == 0 {
		return
	}
	v.need("spec.securityContext.sysctls", backend.FeatureSysctls, "sysctls")
	seen := map[string]bool{}
	for i, s := range sc.Sysctls {
		path := fmt.Sprintf("spec.securityContext.sysctls[%d]", i)
		name := SysctlName(s.Name)
		switch {
		case !slices.Contains(SafeSysctls, name):
			v.add(path+".name", "%q is not one of the sysctls Kubernetes allows every pod (%s)", s.Name, strings.Join(SafeSysctls, ", "))
		case seen[name]:
			v.add(path+".name", "%q is set twice", s.Name)
		case IsNetSysctl(name) && p.Spec.HostNetwork:
			v.add(path+".name", "%q would change the host's network: it cannot be set with hostNetwork", s.Name)
		}
		seen[name] = true
		if strings.ContainsAny(s.Value, "\n\x00") {
			v.add(path+".value", "a sysctl value is one line")
		}
	}
}
