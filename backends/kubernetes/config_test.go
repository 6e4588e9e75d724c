package kubernetes

import (
	"strings"
	"testing"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
)

func TestParseConfig(t *testing.T) {
	c, err := parse(nil)
	if err != nil {
		t.Fatalf("an empty config: %v", err)
	}
	if c.QPS != 50 || c.Burst != 100 {
		t.Errorf("defaults qps/burst = %v/%d, want 50/100", c.QPS, c.Burst)
	}
	c, err = parse([]byte(`{"namespace":"remote","namespace_map":{"team-a":"burst-a"},
		"node_selector":{"pool":"burst"},"tolerations":[{"key":"k","operator":"Exists","effect":"NoSchedule"}],
		"priority_class":"low","labels":{"cost":"x"},"annotations":{"dispatcher.interlink.eu/backend":"slurm"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.remoteNamespace("team-a"); got != "burst-a" {
		t.Errorf("team-a goes to %q, want burst-a", got)
	}
	if got := c.remoteNamespace("other"); got != "remote" {
		t.Errorf("other goes to %q, want remote", got)
	}
	for _, tc := range []struct{ raw, want string }{
		{`{"namespce":"x"}`, "backends.kubernetes.config.namespce: is not a known key"},
		{`{"nodeSelector":{}}`, "the key is spelled node_selector"},
		{`{"namespace":"Not_A_Name"}`, "backends.kubernetes.config.namespace"},
		{`{"namespace_map":{"a":"B"}}`, "backends.kubernetes.config.namespace_map.a"},
		{`{"node_selector":{"a":"not a value"}}`, "backends.kubernetes.config.node_selector.a"},
		{`{"labels":{"dispatcher.interlink.eu/pod-uid":"x"}}`, "backend's own"},
		{`{"tolerations":[{"key":"k","operator":"Maybe"}]}`, "tolerations[0].operator"},
		{`{"taints":[{"key":"k","effect":"Sometimes"}]}`, "taints[0].effect"},
		{`{"qps":-1}`, "qps"},
	} {
		if _, err := parse([]byte(tc.raw)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseConfig(%s) = %v, want an error with %q", tc.raw, err, tc.want)
		}
	}
}

// parse is ParseConfig for the backend named kubernetes, without its warnings.
func parse(raw []byte) (Config, error) {
	c, _, err := ParseConfig("kubernetes", raw)
	return c, err
}

// Every problem of a section at once, as a bad config (the backend then exits 78).
func TestParseConfigReportsEveryProblem(t *testing.T) {
	_, err := parse([]byte(`{"qps": -1, "burst": -2, "priority_class": "Not A Name"}`))
	if err == nil || !backend.IsBadConfig(err) {
		t.Fatalf("err = %v, want a bad config", err)
	}
	for _, key := range []string{"config.qps", "config.burst", "config.priority_class"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("%v does not name %s", err, key)
		}
	}
}

func TestRemoteName(t *testing.T) {
	uid := "0f6b1bd4-3b8e-4c57-9d1e-3e6b8a2f1c00"
	if got := remoteName(uid); got != "il-"+uid {
		t.Errorf("remoteName(%s) = %s", uid, got)
	}
	if again := remoteName(uid); again != remoteName(uid) {
		t.Error("remoteName is not deterministic")
	}
	// UIDs the contract accepts that are no DNS label: hashed, under their own prefix, never equal.
	seen := map[string]string{}
	for _, u := range []string{"ABC", "abc_", "a.b", strings.Repeat("x", 128), "abc"} {
		n := remoteName(u)
		if len(n) > 63 {
			t.Errorf("remoteName(%s) = %s is longer than a label", u, n)
		}
		if prev, ok := seen[n]; ok {
			t.Errorf("remoteName(%s) = remoteName(%s) = %s", u, prev, n)
		}
		seen[n] = u
	}
	if objectName("il-x", objConfigMap, "a") == objectName("il-x", objSecret, "a") {
		t.Error("a ConfigMap and a Secret of the same local name get the same remote name")
	}
}

// TestNamespaces: one informer per remote namespace a pod may go to, each once.
func TestNamespaces(t *testing.T) {
	c, err := parse([]byte(`{"namespace":"r","namespace_map":{"a":"x","b":"r","c":"x"}}`))
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{cfg: c}
	if got := strings.Join(b.namespaces(), ","); got != "r,x" {
		t.Errorf("namespaces %s, want r,x", got)
	}
	if got := b.remoteNS("", "x/il-1"); got != "x" {
		t.Errorf("the remote id's namespace: %q", got)
	}
	if got := b.remoteNS("a", ""); got != "x" {
		t.Errorf("local namespace a: %q", got)
	}
	if got := b.remoteNS("", ""); got != "" {
		t.Errorf("nothing known: %q, want every namespace searched", got)
	}
}
