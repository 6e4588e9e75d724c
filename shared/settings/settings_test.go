package settings

import (
	"strings"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
)

type flavor struct {
	CPUDefault int64    `json:"cpu_default" was:"cpuDefault"`
	Flags      []string `json:"flags"`
}

type section struct {
	URI         string            `json:"uri"`
	Pods        int64             `json:"pods"`
	PullTimeout Duration          `json:"pull_timeout" was:"pullTimeout"`
	Enabled     *bool             `json:"enabled"`
	Flavors     map[string]flavor `json:"flavors"`
	Nested      *flavor           `json:"nested"`
	List        []flavor          `json:"list"`
	Taints      []v1.Taint        `json:"taints"`
	hidden      int
}

const prefix = "backends.podman.config"

func decode(t *testing.T, raw string) (section, []string, error) {
	t.Helper()
	var s section
	w, err := Decode([]byte(raw), prefix, &s)
	return s, w, err
}

func TestDecodeReadsEveryKind(t *testing.T) {
	s, w, err := decode(t, `{"uri": "unix:///x", "pods": 3, "pull_timeout": "90s", "enabled": false,
		"flavors": {"gpu": {"cpu_default": 4, "flags": ["--gres=gpu:1"]}}, "nested": {"cpu_default": 2},
		"list": [{"flags": ["-p", "x"]}], "taints": [{"key": "k", "effect": "NoSchedule"}]}`)
	if err != nil || len(w) != 0 {
		t.Fatalf("err %v, warnings %v", err, w)
	}
	if s.URI != "unix:///x" || s.Pods != 3 || s.PullTimeout.D() != 90*time.Second || s.Enabled == nil || *s.Enabled ||
		s.Flavors["gpu"].CPUDefault != 4 || s.Flavors["gpu"].Flags[0] != "--gres=gpu:1" || s.Nested.CPUDefault != 2 ||
		len(s.List) != 1 || s.List[0].Flags[1] != "x" || s.Taints[0].Effect != v1.TaintEffectNoSchedule || s.hidden != 0 {
		t.Errorf("decoded %+v", s)
	}
}

func TestDecodeEmptyIsAllZero(t *testing.T) {
	for _, raw := range []string{"", " ", "null", "{}"} {
		s, w, err := decode(t, raw)
		if err != nil || len(w) != 0 || s.URI != "" || s.Flavors != nil {
			t.Errorf("%q: %+v, %v, %v", raw, s, w, err)
		}
	}
}

func TestOldSpellingIsAcceptedWithOneWarningNamingTheNewKey(t *testing.T) {
	s, w, err := decode(t, `{"pullTimeout": "2m", "flavors": {"a": {"cpuDefault": 1}}}`)
	if err != nil {
		t.Fatal(err)
	}
	if s.PullTimeout.D() != 2*time.Minute || s.Flavors["a"].CPUDefault != 1 {
		t.Errorf("decoded %+v", s)
	}
	want := []string{
		"config key backends.podman.config.flavors.a.cpuDefault is now spelled backends.podman.config.flavors.a.cpu_default",
		"config key backends.podman.config.pullTimeout is now spelled backends.podman.config.pull_timeout",
	}
	if len(w) != len(want) {
		t.Fatalf("warnings %q, want %d", w, len(want))
	}
	for i := range want {
		if !strings.HasPrefix(w[i], want[i]) {
			t.Errorf("warning %q, want it to start %q", w[i], want[i])
		}
	}
}

func TestBothSpellingsAreRefused(t *testing.T) {
	_, _, err := decode(t, `{"pullTimeout": "2m", "pull_timeout": "3m"}`)
	if err == nil || !strings.Contains(err.Error(), "backends.podman.config.pull_timeout: is set twice") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnknownKeysNameTheKeyAndTheSpellingMeant(t *testing.T) {
	_, _, err := decode(t, `{"Pods": 1, "pull-timeout": "1s", "podz": 3, "nested": {"cpuDefualt": 1}}`)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"backends.podman.config.Pods: is not a known key; the key is spelled pods",
		"backends.podman.config.pull-timeout: is not a known key; the key is spelled pull_timeout",
		"backends.podman.config.podz: is not a known key (the keys here are enabled, flavors, list, nested, pods, pull_timeout, taints, uri)",
		"backends.podman.config.nested.cpuDefualt: is not a known key (the keys here are cpu_default, flags)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\nlacks %q", err, want)
		}
	}
}

func TestEveryProblemIsReportedAtOnce(t *testing.T) {
	_, _, err := decode(t, `{"pods": "three", "pull_timeout": "10 minutes", "uri": 5, "enabled": "yes",
		"flavors": {"x": {"cpu_default": "many"}}, "list": [{}, {"flags": "one"}, {"flags": ["a", 2]}], "taints": [{"key": 1}], "unknown": 1}`)
	ps, ok := err.(Problems)
	if !ok {
		t.Fatalf("err = %T %v, want Problems", err, err)
	}
	want := []string{
		`backends.podman.config.enabled: must be true or false, not "yes"`,
		`backends.podman.config.flavors.x.cpu_default: must be a whole number, not "many"`,
		`backends.podman.config.list[1].flags: must be a list, not "one"`,
		`backends.podman.config.list[2].flags[1]: must be a string, not 2`,
		`backends.podman.config.pods: must be a whole number, not "three"`,
		`backends.podman.config.pull_timeout: "10 minutes" is not a duration such as "10m"`,
		`backends.podman.config.taints[0].key: must be a string, not a number`,
		`backends.podman.config.unknown: is not a known key`,
		`backends.podman.config.uri: must be a string, not 5`,
	}
	if len(ps) != len(want) {
		t.Errorf("%d problems, want %d: %v", len(ps), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%v\nlacks %q", err, w)
		}
	}
	if !ps.Has("backends.podman.config.flavors") || ps.Has("backends.podman.config.nested") {
		t.Errorf("Has is wrong for %v", ps)
	}
}

func TestNotAnObject(t *testing.T) {
	_, _, err := decode(t, `["uri"]`)
	if err == nil || err.Error() != `backends.podman.config: must be a mapping of keys to values, not ["uri"]` {
		t.Errorf("err = %v", err)
	}
	var s section
	if _, err := Decode([]byte(`{}`), prefix, s); err == nil {
		t.Error("a non-pointer was accepted")
	}
}

func TestDurationMessagesQuoteTheWholeValue(t *testing.T) {
	for in, want := range map[string]string{
		`"10 minutes"`: `"10 minutes" is not a duration such as "10m"`,
		`"5 sec"`:      `"5 sec" is not a duration such as "5s"`,
		`"2 hours"`:    `"2 hours" is not a duration such as "2h"`,
		`"100 msec"`:   `"100 msec" is not a duration such as "100ms"`,
		`"30"`:         `"30" is not a duration such as "30s"`,
		`"soon"`:       `"soon" is not a duration such as "30s"`,
		`30`:           `30 is not a duration such as "30s" or "10m" (write it as a string with a unit)`,
	} {
		var d Duration
		if err := d.UnmarshalJSON([]byte(in)); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
	}
	var d Duration
	if err := d.UnmarshalJSON([]byte(`"1h30m"`)); err != nil || d.D() != 90*time.Minute {
		t.Errorf("1h30m: %v, %v", d, err)
	}
	if b, _ := d.MarshalJSON(); string(b) != `"1h30m0s"` {
		t.Errorf("MarshalJSON = %s", b)
	}
}

func TestPrefixAndJoin(t *testing.T) {
	if Prefix("podman") != "backends.podman.config" || Prefix("") != "config" {
		t.Error(Prefix("podman"), Prefix(""))
	}
	if Join("a", "[0]") != "a[0]" || Join("", "b") != "b" || Join("a", "") != "a" || Join("a", "b") != "a.b" {
		t.Error("Join")
	}
	var ps Problems
	ps.Add("backends.x.config", "pods", "must be positive, not %d", -1)
	if ps.Err().Error() != "backends.x.config.pods: must be positive, not -1" || (Problems{}).Err() != nil {
		t.Errorf("Add/Err: %v", ps)
	}
}
