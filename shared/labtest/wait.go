package labtest

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// WaitForLines waits until the file at path holds at least n lines, failing the test after timeout with what it
// holds. A container's probe or command that appends a line each time it runs (to a file in a hostPath or bind
// mount) lets a test wait for "it ran n times" instead of sleeping for as long as that should take.
func WaitForLines(t testing.TB, path string, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		data, err := os.ReadFile(path)
		if bytes.Count(data, []byte("\n")) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not hold %d lines after %v (%v): %q", path, n, timeout, err, data)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
