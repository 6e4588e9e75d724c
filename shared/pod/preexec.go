package pod

import (
	"fmt"
	"strings"

	v1 "k8s.io/api/core/v1"
)

// Annotations whose shell text runs in the pod's network namespace before its containers: the tunnel of exposed
// ports, and the pre-exec text where interLink's virtual kubelet puts its mesh bootstrap in mesh mode (the
// README's "Host paths, privileges and networks" says what the helper that runs them may do).
const (
	AnnotationPreExec  = "slurm-job.vk.io/pre-exec"
	AnnotationWstunnel = "interlink.eu/wstunnel-client-commands"
)

const (
	// PreExecContainer names the helper container that runs the pre-exec text; it is not a DNS label, so no
	// container of the pod can share its name.
	PreExecContainer = "_pre-exec"
	// RolePreExec is the LabelRole of that helper.
	RolePreExec = "pre-exec"
	// ReasonPreExecError is the waiting reason of every container when the pre-exec text failed.
	ReasonPreExecError = "PreExecError"
)

// PreExecText returns the shell text to run before the pod's containers, "" when there is none: the pre-exec
// annotation, then the wstunnel one, each under a comment naming it.
func PreExecText(p *v1.Pod) string {
	var parts []string
	for _, key := range []string{AnnotationPreExec, AnnotationWstunnel} {
		if s := strings.TrimSpace(p.Annotations[key]); s != "" {
			parts = append(parts, "# "+key+"\n"+s)
		}
	}
	return strings.Join(parts, "\n")
}

// PreExecFailed is the message of every container of a pod whose pre-exec text ended with exitCode ("" when
// the backend could not learn it).
func PreExecFailed(exitCode string) string {
	msg := fmt.Sprintf("the pod's pre-exec commands (annotations %s, %s) failed", AnnotationPreExec, AnnotationWstunnel)
	if exitCode != "" {
		msg += " with exit code " + exitCode
	}
	return msg
}
