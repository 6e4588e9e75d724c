package slurm

import (
	"fmt"
	"strings"
)

// sbatchFlag is one sbatch option in canonical form: its long name (without dashes) and its value.
type sbatchFlag struct {
	Name     string // e.g. "cpus-per-task"
	Value    string
	HasValue bool
}

// String renders the flag as sbatch's long spelling, "--name=value" or "--name".
func (f sbatchFlag) String() string {
	if !f.HasValue {
		return "--" + f.Name
	}
	return "--" + f.Name + "=" + f.Value
}

// sbatchShort maps sbatch's one-letter options (22.05) to their long names, so that "-c 4" and
// "--cpus-per-task=4" are recognised as the same flag when flags are merged.
var sbatchShort = map[byte]string{
	'A': "account", 'a': "array", 'B': "extra-node-info", 'b': "begin", 'C': "constraint", 'c': "cpus-per-task",
	'D': "chdir", 'd': "dependency", 'e': "error", 'F': "nodefile", 'G': "gpus", 'H': "hold", 'h': "help",
	'i': "input", 'J': "job-name", 'k': "no-kill", 'L': "licenses", 'M': "clusters", 'm': "distribution",
	'N': "nodes", 'n': "ntasks", 'O': "overcommit", 'o': "output", 'p': "partition", 'Q': "quiet", 'q': "qos",
	's': "oversubscribe", 'S': "core-spec", 't': "time", 'V': "version", 'v': "verbose", 'W': "wait",
	'w': "nodelist", 'x': "exclude",
}

// sbatchNoValue are the options that never take a value as a separate word (some take an optional one, which
// must then be attached with "=").
var sbatchNoValue = map[string]bool{
	"contiguous": true, "exclusive": true, "get-user-env": true, "help": true, "hold": true, "ignore-pbs": true,
	"no-kill": true, "no-requeue": true, "overcommit": true, "oversubscribe": true, "parsable": true,
	"quiet": true, "reboot": true, "requeue": true, "spread-job": true, "test-only": true, "usage": true,
	"use-min-nodes": true, "verbose": true, "version": true, "wait": true, "nice": true, "propagate": true,
}

// sbatchReserved are the options the backend sets itself, because the job model depends on them: where the job
// runs and writes, how it is submitted and what environment it gets. A pod may not set them.
var sbatchReserved = map[string]string{
	"output":      "the backend writes the job's output into the pod's directory",
	"error":       "the backend writes the job's output into the pod's directory",
	"input":       "the job reads no input",
	"chdir":       "the job runs in the pod's directory",
	"parsable":    "the backend submits with --parsable itself",
	"wrap":        "the backend submits its own job script",
	"array":       "one pod is one job, not an array",
	"wait":        "submission must return at once",
	"test-only":   "the pod must be submitted for real",
	"export":      "the job's environment is set by the backend; use the containers' env",
	"export-file": "the job's environment is set by the backend; use the containers' env",
	"uid":         "the job's user comes from the flavor, the backend's config or the pod's securityContext.runAsUser",
	"gid":         "the job's group comes from the backend's config",
	"help":        "it does not submit a job",
	"usage":       "it does not submit a job",
	"version":     "it does not submit a job",
}

// flagGroup is the key under which flags replace each other when merged: the option's long name, except for
// options sbatch refuses together, which share one key so that the later one wins.
func flagGroup(name string) string {
	switch name {
	case "mem", "mem-per-cpu", "mem-per-gpu":
		return "mem"
	}
	return name
}

// parseSbatchFlags reads sbatch options from words (as splitWords returns them), in their long or short
// spelling, with values attached ("--time=10", "-t10") or as the next word ("--time 10", "-t 10").
// fromPod refuses the options the backend reserves, naming them.
func parseSbatchFlags(words []string, fromPod bool) ([]sbatchFlag, error) {
	var out []sbatchFlag
	for i := 0; i < len(words); i++ {
		w := words[i]
		var f sbatchFlag
		switch {
		case strings.HasPrefix(w, "--") && len(w) > 2:
			name, value, hasValue := strings.Cut(w[2:], "=")
			f = sbatchFlag{Name: name, Value: value, HasValue: hasValue}
			if !hasValue && !sbatchNoValue[name] && i+1 < len(words) && !strings.HasPrefix(words[i+1], "-") {
				f.Value, f.HasValue = words[i+1], true
				i++
			}
		case strings.HasPrefix(w, "-") && len(w) > 1 && w[1] != '-':
			name, ok := sbatchShort[w[1]]
			if !ok {
				return nil, fmt.Errorf("%q is not an sbatch option", w)
			}
			f = sbatchFlag{Name: name}
			switch {
			case len(w) > 2:
				f.Value, f.HasValue = strings.TrimPrefix(w[2:], "="), true
			case !sbatchNoValue[name]:
				if i+1 >= len(words) {
					return nil, fmt.Errorf("option %s (--%s) needs a value", w, name)
				}
				f.Value, f.HasValue = words[i+1], true
				i++
			}
		default:
			return nil, fmt.Errorf("%q is not an sbatch option: every word must be an option or the value of the one before it", w)
		}
		if f.Name == "" {
			return nil, fmt.Errorf("%q is not an sbatch option", w)
		}
		if strings.ContainsAny(f.Name+f.Value, "\n\r\x00") {
			return nil, fmt.Errorf("option --%s must not contain a line break", f.Name)
		}
		if why, reserved := sbatchReserved[f.Name]; reserved && fromPod {
			return nil, fmt.Errorf("option --%s cannot be set on a pod: %s", f.Name, why)
		}
		out = append(out, f)
	}
	return out, nil
}

// parseSbatchFlagText reads a shell-quoted string of sbatch options, as the slurm-job.vk.io/flags annotation
// holds them.
func parseSbatchFlagText(s string, fromPod bool) ([]sbatchFlag, error) {
	words, err := splitWords(s)
	if err != nil {
		return nil, err
	}
	return parseSbatchFlags(words, fromPod)
}

// mergeFlags merges layers of flags from lowest to highest priority: a flag of a later layer (or later in its
// layer) replaces an earlier one of the same group, whatever its spelling. The result keeps the order in which
// each group first appeared.
func mergeFlags(layers ...[]sbatchFlag) []sbatchFlag {
	index := map[string]int{}
	var out []sbatchFlag
	for _, layer := range layers {
		for _, f := range layer {
			g := flagGroup(f.Name)
			if i, ok := index[g]; ok {
				out[i] = f
				continue
			}
			index[g] = len(out)
			out = append(out, f)
		}
	}
	return out
}

// findFlag returns the flag of group name in flags.
func findFlag(flags []sbatchFlag, name string) (sbatchFlag, bool) {
	for _, f := range flags {
		if flagGroup(f.Name) == flagGroup(name) {
			return f, true
		}
	}
	return sbatchFlag{}, false
}
