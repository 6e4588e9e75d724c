package slurm

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzSplitWords: whatever splitWords reads as words, shellJoin writes back so that it reads the same.
func FuzzSplitWords(f *testing.F) {
	for _, s := range []string{`--time=10 -c 4`, `a 'b c' "d \"e\" \$f" g\ h`, `'unterminated`, `trailing\`, `"a\
b"`, "\t\n", `--comment='it''s'`, `$(rm -rf /)`, "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitWords(s)
		if err != nil {
			return
		}
		again, err := splitWords(shellJoin(words))
		if err != nil {
			t.Fatalf("%q: the joined words %q do not split: %v", s, shellJoin(words), err)
		}
		if len(words) == 0 && len(again) == 0 {
			return
		}
		if !reflect.DeepEqual(words, again) {
			t.Fatalf("%q: words %q joined as %q split as %q", s, words, shellJoin(words), again)
		}
	})
}

// FuzzSbatchFlags: flags read from an annotation render as sbatch options that read back as the same flags,
// never hold a line break (they go into #SBATCH lines), and never include a reserved one from a pod.
func FuzzSbatchFlags(f *testing.F) {
	for _, s := range []string{"--time=10 -c 4 --mem 1G", "-t10 --exclusive --qos=high", "--output=/tmp/x", "-J name",
		"--comment='a b'", "-x", "--", "-", "--mem-per-cpu=1G --mem=2G", "--gres=gpu:2 -p debug"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, fromPod bool) {
		flags, err := parseSbatchFlagText(s, fromPod)
		if err != nil {
			return
		}
		words := make([]string, len(flags))
		for i, fl := range flags {
			words[i] = fl.String()
			for _, c := range fl.Name + fl.Value {
				if c == '\n' || c == '\r' || c == 0 {
					t.Fatalf("%q: flag %q holds a line break", s, fl)
				}
			}
			if _, reserved := sbatchReserved[fl.Name]; reserved && fromPod {
				t.Fatalf("%q: the reserved flag --%s was accepted from a pod", s, fl.Name)
			}
		}
		again, err := parseSbatchFlags(words, fromPod)
		if err != nil {
			t.Fatalf("%q: the rendered flags %q do not parse: %v", s, words, err)
		}
		if !reflect.DeepEqual(flags, again) {
			t.Fatalf("%q: flags %+v render as %q and read back as %+v", s, flags, words, again)
		}
		merged := mergeFlags(flags)
		for _, fl := range merged {
			if got, ok := findFlag(merged, fl.Name); !ok || got != fl {
				t.Fatalf("%q: merged flag %+v is found as %+v", s, fl, got)
			}
		}
	})
}

// FuzzSqueue reads arbitrary bytes as `squeue --json` output: an error or jobs, never a panic.
func FuzzSqueue(f *testing.F) {
	addTestdata(f, "squeue-*.json")
	f.Add([]byte(`{"jobs":[{"job_id":{"set":true,"number":7},"job_state":["RUNNING","COMPLETING"],"start_time":{"number":1}}]}`))
	f.Add([]byte(`{"jobs":[{"job_id":1,"job_state":[]}]}`))
	f.Add([]byte(`{"jobs":null,"errors":[{}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		jobs, err := parseSqueue(data)
		if err != nil {
			return
		}
		for id, j := range jobs {
			if j == nil {
				t.Fatalf("%q: job %s is nil", data, id)
			}
			_ = stateClass(j.JobState)
		}
	})
}

// FuzzSinfo reads arbitrary bytes as `sinfo --json` output: an error or nodes whose capacity sums without a
// panic; GPUs are never counted negative from a well-formed gres.
func FuzzSinfo(f *testing.F) {
	addTestdata(f, "sinfo-*.json")
	f.Add([]byte(`{"nodes":[{"name":"n","state":["IDLE","DRAIN"],"cpus":{"number":4},"real_memory":1024,"gres":"gpu:a100:2(S:0-1),gpu:1","partitions":["debug"]}]}`))
	f.Add([]byte(`{"nodes":[{"gres":"gpu:-5"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		nodes, err := parseSinfo(data)
		if err != nil {
			return
		}
		nodeCapacity(nodes, nil)
		nodeCapacity(nodes, []string{"debug"})
		for _, n := range nodes {
			_ = n.usable()
			_ = gresGPUs(n.Gres)
		}
	})
}

// addTestdata seeds a fuzz target with the real command outputs kept in testdata, each cut to its first two
// jobs or nodes (the fuzzer mutates inputs of tens of kilobytes at a crawl) with every field they have.
func addTestdata(f *testing.F, glob string) {
	files, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(files) == 0 {
		f.Fatalf("no testdata/%s to seed from (%v)", glob, err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		var out map[string]any
		if err := json.Unmarshal(data, &out); err != nil {
			f.Fatalf("%s: %v", name, err)
		}
		for _, key := range []string{"jobs", "nodes"} {
			if list, ok := out[key].([]any); ok && len(list) > 2 {
				out[key] = list[:2]
			}
		}
		delete(out, "meta")
		small, err := json.Marshal(out)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(small)
	}
}
