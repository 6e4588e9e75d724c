package pod

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// uidShape is what every backend can carry a pod UID as: a label value, part of a container or job name, a
// directory name, a word of a job script. Kubernetes UIDs (RFC 4122 UUIDs) fit it.
var uidShape = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidPodUID checks that a pod UID has the shape of a UID: 1 to 128 letters, digits, '.', '_' and '-',
// starting with a letter or digit. Anything else (a NUL, a '/', a megabyte) never names a pod.
func ValidPodUID(uid string) error {
	if uid == "" {
		return fmt.Errorf("the pod has no metadata.uid; send the pod with its UID")
	}
	if !uidShape.MatchString(uid) {
		return fmt.Errorf("metadata.uid %s is not a UID: it must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit", Quote(uid))
	}
	return nil
}

// CheckUID is the refusal of a pod UID that ValidPodUID does not accept, the same on every backend and every
// operation that takes a UID (Create, Delete, Logs): a backend.KindInvalid error naming metadata.uid, which
// the dispatcher answers with 422. Status, answering per pod, reports such a pod as not found instead.
func CheckUID(uid string) error {
	if err := ValidPodUID(uid); err != nil {
		return backend.Invalid("%v", err)
	}
	return nil
}

// ValidPodName checks metadata.name as the Kubernetes API server does: a DNS-1123 subdomain, at most 253
// characters.
func ValidPodName(name string) error {
	return k8sName("metadata.name", name, validation.IsDNS1123Subdomain)
}

// ValidNamespace checks metadata.namespace as the Kubernetes API server does: a DNS-1123 label, at most 63
// characters.
func ValidNamespace(ns string) error {
	return k8sName("metadata.namespace", ns, validation.IsDNS1123Label)
}

// ValidContainerName checks a container's name (field is its path, e.g. spec.containers[0].name) as the
// Kubernetes API server does: a DNS-1123 label, at most 63 characters.
func ValidContainerName(field, name string) error {
	return k8sName(field, name, validation.IsDNS1123Label)
}

// ValidIdentity checks the fields that name a pod to the engines: its UID always, and its name and
// namespace, which are required when requireNames is set (a create) and else checked only when given
// (status, delete and logs find a pod by its UID).
func ValidIdentity(uid, namespace, name string, requireNames bool) error {
	if err := ValidPodUID(uid); err != nil {
		return err
	}
	if requireNames || name != "" {
		if err := ValidPodName(name); err != nil {
			return err
		}
	}
	if requireNames || namespace != "" {
		if err := ValidNamespace(namespace); err != nil {
			return err
		}
	}
	return nil
}

func k8sName(field, value string, check func(string) []string) error {
	if value == "" {
		return fmt.Errorf("%s is empty; send the pod as the Kubernetes API server has it", field)
	}
	if errs := check(value); len(errs) > 0 {
		return fmt.Errorf("%s %s is not valid: %s", field, Quote(value), strings.Join(errs, "; "))
	}
	return nil
}

// quoteMax is how much of a value Quote shows.
const quoteMax = 64

// Quote is a value as an error message may show it: Go-quoted, so that a NUL or a control character is
// escaped, and cut after 64 bytes with how long it was, so that a megabyte is never echoed.
func Quote(s string) string {
	if len(s) <= quoteMax {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:quoteMax], len(s))
}
