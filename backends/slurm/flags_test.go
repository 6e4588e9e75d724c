package slurm

import (
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func TestSplitWords(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"sbatch", []string{"sbatch"}},
		{"  ssh   login01\tsbatch ", []string{"ssh", "login01", "sbatch"}},
		{`sudo -u alice "/opt/slurm bin/sbatch"`, []string{"sudo", "-u", "alice", "/opt/slurm bin/sbatch"}},
		{`--comment='it'"'"'s' -J a\ b`, []string{"--comment=it's", "-J", "a b"}},
		{`"a\"b\\c\$d\e"`, []string{`a"b\c$d\e`}},
		{`'' x`, []string{"", "x"}},
		{"$(rm -rf /) `x`", []string{"$(rm", "-rf", "/)", "`x`"}},
	}
	for _, c := range cases {
		got, err := splitWords(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{`'open`, `"open`, `trailing\`} {
		if _, err := splitWords(bad); err == nil {
			t.Errorf("splitWords(%q) succeeded, want an error", bad)
		}
	}
}

// TestShellQuoteRoundTrip checks with the real bash that quoted words come back exactly, whatever they hold.
func TestShellQuoteRoundTrip(t *testing.T) {
	words := []string{"plain", "", "a b", "it's", `"dq"`, "$(touch /tmp/slurm-quote-pwned)", "`id`", "new\nline",
		"back\\slash", "*", "~", "a;b|c&d", "tab\there", "ünïcödé"}
	out, err := exec.Command("bash", "-c", `for w in `+shellJoin(words)+`; do printf '%s\0' "$w"; done`).Output()
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if !reflect.DeepEqual(got, words) {
		t.Errorf("bash read back %q, want %q", got, words)
	}
	back, err := splitWords(shellJoin(words))
	if err != nil || !reflect.DeepEqual(back, words) {
		t.Errorf("splitWords(shellJoin) = %q, %v", back, err)
	}
}

func TestParseSbatchFlags(t *testing.T) {
	got, err := parseSbatchFlagText(`-c 4 --mem=8G -t10 --partition gpu --exclusive --comment='a b' -J name -H`, true)
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, f := range got {
		s = append(s, f.String())
	}
	want := []string{"--cpus-per-task=4", "--mem=8G", "--time=10", "--partition=gpu", "--exclusive", "--comment=a b", "--job-name=name", "--hold"}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("parsed %q, want %q", s, want)
	}
	for _, bad := range []string{"--output=/etc/x", "-o x", "-D /", "--wrap=id", "--uid=0", "--export=ALL", "notaflag", "-Z", "-c"} {
		if _, err := parseSbatchFlagText(bad, true); err == nil {
			t.Errorf("flags %q were accepted from a pod", bad)
		}
	}
	if _, err := parseSbatchFlagText("--uid=1000", false); err != nil {
		t.Errorf("--uid refused from the config: %v", err)
	}
	if _, err := parseSbatchFlagText("--comment='a\nb'", true); err == nil {
		t.Errorf("a flag with a line break was accepted")
	}
}

func TestMergeFlagsLaterWinsAcrossSpellings(t *testing.T) {
	low, _ := parseSbatchFlagText("--partition=cpu -c 2 --mem-per-cpu=1G --time=60", false)
	high, _ := parseSbatchFlagText("-p gpu --cpus-per-task=8 --mem=16G", true)
	var s []string
	for _, f := range mergeFlags(low, high) {
		s = append(s, f.String())
	}
	want := []string{"--partition=gpu", "--cpus-per-task=8", "--mem=16G", "--time=60"}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("merged %q, want %q", s, want)
	}
}

func TestParseMemory(t *testing.T) {
	cases := map[string]int64{"16G": 16 << 30, "16GB": 16 << 30, "32000M": 32000 << 20, "1024K": 1 << 20,
		"1024": 1024, "8Gi": 8 << 30, "16g": 16 << 30, " 2T ": 2 << 40}
	for in, want := range cases {
		if got, err := parseMemory(in); err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "16X", "abcG", "-1G"} {
		if _, err := parseMemory(bad); err == nil {
			t.Errorf("parseMemory(%q) succeeded", bad)
		}
	}
}
