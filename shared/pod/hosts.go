package pod

import (
	"strings"

	v1 "k8s.io/api/core/v1"
)

// HostAliasEntries are p's hostAliases as the engines' extra-host entries ("names:IP": Docker's ExtraHosts,
// Podman's hostadd), which they write into the hosts file they keep for the pod. An engine writes an entry
// as "IP<tab>names"; each alias is one entry with its names joined by tabs, so that it becomes the one line
// the kubelet writes, "IP<tab>name1<tab>name2", where one entry per name would give a line per name. (The
// validator refuses a hostname holding whitespace.)
func HostAliasEntries(p *v1.Pod) []string {
	var out []string
	for _, a := range p.Spec.HostAliases {
		out = append(out, strings.Join(a.Hostnames, "\t")+":"+a.IP)
	}
	return out
}
