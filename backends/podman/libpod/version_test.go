package libpod

import (
	"strings"
	"testing"
)

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"4.3.1", "4.3.0", 1},
		{"4.3.0", "4.3.0", 0},
		{"4.10.0", "4.3.1", 1},
		{"4.2.9", "4.3.0", -1},
		{"5.0.0-dev", "4.3.0", 1},
		{"3.4.4", "4.3.0", -1},
	}
	for _, c := range cases {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestCheckVersionRefusesOldPodman(t *testing.T) {
	err := CheckVersion("4.2.0")
	if err == nil || !strings.Contains(err.Error(), "4.3 or later") || !strings.Contains(err.Error(), "4.2.0") {
		t.Fatalf("CheckVersion(4.2.0) = %v, want a refusal naming 4.2.0 and 4.3", err)
	}
	if err := CheckVersion("3.4.4"); err == nil || !strings.Contains(err.Error(), "libpod v4") {
		t.Fatalf("CheckVersion(3.4.4) = %v, want a refusal naming the missing libpod v4 API", err)
	}
	if err := CheckVersion("4.3.1"); err != nil {
		t.Fatalf("CheckVersion(4.3.1) = %v, want nil", err)
	}
}

func TestRoute(t *testing.T) {
	cases := map[string]string{
		"GET /containers/json":              "/containers/json",
		"POST /containers/create":           "/containers/create",
		"POST /containers/abc123/wait":      "/containers/{name}/wait",
		"DELETE /containers/abc123":         "/containers/{name}",
		"GET /images/busybox:latest/exists": "/images/{name}/exists",
		"POST /images/pull":                 "/images/pull",
		"GET /version":                      "/version",
	}
	for in, want := range cases {
		method, path, _ := strings.Cut(in, " ")
		if got := route(method, path); got != want {
			t.Errorf("route(%s) = %s, want %s", in, got, want)
		}
	}
}
