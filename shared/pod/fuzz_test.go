package pod

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

// FuzzValidate validates arbitrary pods (as JSON) against the fullest and the most limited capabilities:
// never a panic, and a refusal is always a KindInvalid naming field paths. The grace periods of any pod are
// clamped into [0, the bound].
func FuzzValidate(f *testing.F) {
	f.Add([]byte(defaultPodJSON))
	f.Add([]byte(`{"metadata":{"uid":"u"},"spec":{"containers":[{"name":"c","image":"i","volumeMounts":[{"name":"v","mountPath":"/m","subPath":"../x"}]}],"volumes":[{"name":"v","hostPath":{"path":"/"}}]}}`))
	f.Add([]byte(`{"metadata":{"uid":"u","deletionGracePeriodSeconds":9223372036},"spec":{"terminationGracePeriodSeconds":-1,"containers":[{"name":"c","livenessProbe":{"terminationGracePeriodSeconds":9223372036854775807}}]}}`))
	f.Add([]byte(`{"spec":{"containers":[{"name":"c","env":[{"name":"X","valueFrom":{"fieldRef":{"fieldPath":"metadata.labels['a']"}}}],"resources":{"limits":{"cpu":"1e30"}}}]}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p v1.Pod
		if json.Unmarshal(data, &p) != nil {
			return
		}
		for _, caps := range []backend.Capabilities{fullCaps, minimalCaps} {
			err := Validate(p.DeepCopy(), caps, "fuzz")
			if err != nil && (backend.KindOf(err) != backend.KindInvalid || err.Error() == "") {
				t.Fatalf("%q: Validate returned %v (kind %v)", data, err, backend.KindOf(err))
			}
		}
		bound := 10 * time.Minute
		ClampGracePeriods(&p, bound)
		if g := GracePeriod(&p); g < 0 || (g > bound && g != DefaultGracePeriod) {
			t.Fatalf("%q: grace period %s after clamping to %s", data, g, bound)
		}
		if changed := ClampGracePeriods(&p, bound); len(changed) != 0 {
			t.Fatalf("%q: clamping twice changed %v", data, changed)
		}
	})
}

// FuzzIdentity checks that whatever ValidIdentity accepts is safe to name a pod with, and that its refusals
// are short and hold no raw control characters.
func FuzzIdentity(f *testing.F) {
	f.Add("0b7c5e5e-4a7e-4d43-9d51-2f4c1f3b8a11", "team-a", "web-1.example", "main")
	f.Add("uid", "\x00", "../../../../etc/passwd", "Main")
	f.Add("../x", "default", "web\x00x", "c")
	f.Add(strings.Repeat("a", 300), strings.Repeat("b", 64), strings.Repeat("c", 254), strings.Repeat("d", 64))
	f.Fuzz(func(t *testing.T, uid, ns, name, container string) {
		for _, err := range []error{ValidIdentity(uid, ns, name, true), ValidContainerName("c", container)} {
			if err == nil {
				continue
			}
			msg := err.Error()
			if len(msg) > 1024 || strings.ContainsAny(msg, "\x00\n\r") {
				t.Fatalf("refusal %q is not one short safe line", msg)
			}
		}
		if ValidIdentity(uid, ns, name, true) == nil {
			if len(uid) > 128 || len(name) > 253 || len(ns) > 63 || strings.ContainsAny(uid+ns+name, "/\\\x00 ") ||
				name == "." || name == ".." || uid == "." || uid == ".." {
				t.Fatalf("accepted uid %q, namespace %q, name %q", uid, ns, name)
			}
		}
		if ValidContainerName("c", container) == nil && (len(container) > 63 || strings.ContainsAny(container, "/.\x00 ")) {
			t.Fatalf("accepted container name %q", container)
		}
	})
}

// FuzzValidRelativePath: a path ValidRelativePath accepts, joined under a root, stays under it.
func FuzzValidRelativePath(f *testing.F) {
	for _, s := range []string{"a", "a/b", "../a", "a/../../b", "/etc/passwd", "a/./b", "", "a\x00b", "..", "...", "a//b/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		if ValidRelativePath(rel, "path") != nil {
			return
		}
		const root = "/volume/root"
		joined := filepath.Join(root, rel)
		if joined != root && !strings.HasPrefix(joined, root+"/") {
			t.Fatalf("%q is accepted and joins to %q, outside %s", rel, joined, root)
		}
	})
}

// FuzzSecureJoin joins arbitrary paths under a root holding directories and symbolic links that point inside,
// outside and to absolute paths: whatever it returns is under the root.
func FuzzSecureJoin(f *testing.F) {
	for _, s := range []string{"a", "dir/file", "in/x", "out/x", "abs", "up/up/x", "loop/x", "dir/../in", "../x", "in/../../x", "dir/..", "."} {
		f.Add(s)
	}
	root := f.TempDir()
	for _, d := range []string{"dir", "dir/sub"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			f.Fatal(err)
		}
	}
	for link, target := range map[string]string{"in": "dir/sub", "out": "../..", "abs": "/etc", "up": "dir/../..", "loop": "loop", "dir/sub/back": "../../in"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			f.Fatal(err)
		}
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		got, err := SecureJoin(root, rel)
		if err != nil {
			return
		}
		if got != realRoot && !strings.HasPrefix(got, realRoot+string(os.PathSeparator)) {
			t.Fatalf("SecureJoin(%q) = %q, outside %s", rel, got, realRoot)
		}
		// What exists of it resolves inside the root too (a link it returned unresolved would be a way out).
		if real, err := filepath.EvalSymlinks(got); err == nil && real != realRoot && !strings.HasPrefix(real, realRoot+string(os.PathSeparator)) {
			t.Fatalf("SecureJoin(%q) = %q, which resolves to %q outside the root", rel, got, real)
		}
	})
}
