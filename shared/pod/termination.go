package pod

import (
	"path"

	v1 "k8s.io/api/core/v1"
)

// A container's termination message, as the kubelet makes it: the container writes it to the file at its
// terminationMessagePath (the API server's default is /dev/termination-log), which the runtime binds from
// a fresh host file for each run; after the run the last MaxTerminationMessageBytes of that file are the
// message. With terminationMessagePolicy FallbackToLogsOnError a run that failed (exit code not 0) and
// left the file empty has the end of its log instead: its last MaxTerminationLogLines lines, at most
// MaxTerminationLogBytes of them.
const (
	MaxTerminationMessageBytes = 4 << 10
	MaxTerminationLogLines     = 80
	MaxTerminationLogBytes     = 2 << 10
)

// BindsTerminationFile tells whether a run of c gets a termination message file at its
// terminationMessagePath: when it has one (the API server always sets it) that no volume is mounted at.
func BindsTerminationFile(c *v1.Container) bool {
	if c.TerminationMessagePath == "" {
		return false
	}
	for _, vm := range c.VolumeMounts {
		if path.Clean(vm.MountPath) == path.Clean(c.TerminationMessagePath) {
			return false
		}
	}
	return true
}

// TerminationMessage is the termination message of a run of c that ended with exitCode: file is what its
// terminationMessagePath file held (its last MaxTerminationMessageBytes) or fileErr why it could not be
// read, logTail reads the end of its log (at least its last MaxTerminationLogLines lines, stdout and stderr
// together), called only when the policy falls back to it. A file or log that cannot be read gives a
// message saying so, as the kubelet's does.
func TerminationMessage(c *v1.Container, exitCode int32, file []byte, fileErr error, logTail func() ([]byte, error)) string {
	if fileErr != nil {
		return "Error on reading the termination message file: " + fileErr.Error()
	}
	if len(file) > 0 {
		return string(LastBytes(file, MaxTerminationMessageBytes))
	}
	if c.TerminationMessagePolicy != v1.TerminationMessageFallbackToLogsOnError || exitCode == 0 || logTail == nil {
		return ""
	}
	tail, err := logTail()
	if err != nil {
		return "Error on reading termination message from logs: " + err.Error()
	}
	return string(LastBytes(LastLines(tail, MaxTerminationLogLines), MaxTerminationLogBytes))
}

// WithMessage returns t with the termination message m added to what the runtime said of the run, after
// ": " as the kubelet joins them.
func (t Termination) WithMessage(m string) Termination {
	switch {
	case m == "":
	case t.Message == "":
		t.Message = m
	default:
		t.Message += ": " + m
	}
	return t
}

// LastBytes is the last n bytes of b.
func LastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// LastLines is the last n lines of b (a last line without its newline counts as one).
func LastLines(b []byte, n int) []byte {
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}
