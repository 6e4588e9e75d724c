package slurm

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/interlink-hq/interlink-dispatcher/shared/backend"
	"github.com/interlink-hq/interlink-dispatcher/shared/interlink"
)

// TestLogsOptionsFromFiles reads a log file as the job writes it, with every option.
func TestLogsOptionsFromFiles(t *testing.T) {
	b := offlineBackend(t, Config{Runtime: RuntimePodman})
	dir := b.podDir("uid-logs")
	cdir := filepath.Join(dir, containersDir, "main")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeRecord(dir, &podRecord{UID: "uid-logs", Namespace: "ns", Name: "p", JobID: "1", Containers: []string{"main"}}); err != nil {
		t.Fatal(err)
	}
	log := "1700000000.000001 one\n1700000001.5 two words\n1700000002.25  three with a leading blank\n1700000003.0 four"
	if err := os.WriteFile(filepath.Join(cdir, "log"), []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cdir, "state"), []byte("terminated 0 1700000000.0 1700000003.0 0 -\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func(o interlink.LogOpts) (string, error) {
		var sb strings.Builder
		err := b.Logs(ctxFor(t, time.Minute), backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: "uid-logs", ContainerName: "main", Opts: o}}, &sb)
		return sb.String(), err
	}
	cases := []struct {
		opts interlink.LogOpts
		want string
	}{
		{interlink.LogOpts{}, "one\ntwo words\n three with a leading blank\n"}, // the unfinished last line waits
		{interlink.LogOpts{Tail: 1}, " three with a leading blank\n"},
		{interlink.LogOpts{LimitBytes: 6}, "one\ntw"},
		{interlink.LogOpts{Timestamps: true, Tail: 2}, "2023-11-14T22:13:21.5Z two words\n2023-11-14T22:13:22.25Z  three with a leading blank\n"},
		{interlink.LogOpts{SinceTime: time.Unix(1700000001, 0)}, "two words\n three with a leading blank\n"},
		{interlink.LogOpts{Follow: true}, "one\ntwo words\n three with a leading blank\n"}, // the container ended
	}
	for _, c := range cases {
		got, err := read(c.opts)
		if err != nil || got != c.want {
			t.Errorf("Logs(%+v) = %q, %v; want %q", c.opts, got, err, c.want)
		}
	}
	for _, bad := range []interlink.LogOpts{{Tail: 1, LimitBytes: 1}, {SinceSeconds: 1, SinceTime: time.Now()}} {
		if _, err := read(bad); backend.KindOf(err) != backend.KindInvalid {
			t.Errorf("Logs(%+v) err = %v, want invalid", bad, err)
		}
	}
	if _, err := read(interlink.LogOpts{Previous: true}); backend.KindOf(err) != backend.KindNotFound {
		t.Errorf("Previous without a restart: err = %v, want not found", err)
	}
	var sb strings.Builder
	err := b.Logs(ctxFor(t, time.Minute), backend.LogRequest{LogStruct: interlink.LogStruct{PodUID: "uid-logs", ContainerName: "other"}}, &sb)
	if backend.KindOf(err) != backend.KindNotFound {
		t.Errorf("unknown container: err = %v, want not found", err)
	}
}
