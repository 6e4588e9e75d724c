package docker

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/conformance"
	"github.com/interlink-hq/interlink-dispatcher/shared/labtest"
)

// Launched by `interlink-dispatcher check` (Env.Check), the backend recovers nothing of the pods in its data
// directory, whose dispatcher may be running: a pod whose creation did not finish is left as it is, where an
// ordinary start removes it.
func TestCheckStartRecoversNothing(t *testing.T) {
	labtest.RequireDocker(t)
	env := testEnv(t, nil)
	uid := string(conformance.NewUID())
	half := filepath.Join(env.DataDir, "pods", uid)
	if err := os.MkdirAll(half, 0o700); err != nil {
		t.Fatal(err)
	}
	start := func(check bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		e := env
		e.Check = check
		b, err := NewBackend(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
	}

	start(true)
	if _, err := os.Stat(half); err != nil {
		t.Fatalf("a check start touched the half-created pod %s: %v", uid, err)
	}
	start(false)
	if _, err := os.Stat(half); !os.IsNotExist(err) {
		t.Fatalf("an ordinary start left the half-created pod %s: %v", uid, err)
	}
}
