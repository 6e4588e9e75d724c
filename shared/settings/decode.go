// Package settings is the one way a backend decodes its section of the dispatcher's config: strictly (an
// unknown key is an error naming it, and the key meant when it is another spelling of a known one), in
// snake_case as the dispatcher's own keys, with one Duration type, and with every error of the section
// reported at once, each naming its key path (backends.podman.config.pull_timeout).
//
// A struct field's key is its json tag. A key being renamed keeps working for one release: the field's
// `was` tag holds the old spelling, which Decode accepts with a warning naming the new key.
package settings

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Problem is one thing wrong with a config: the key path and what is wrong with its value.
type Problem struct {
	Key string // the full key path, e.g. backends.slurm.config.flavors.gpu.cpu_default
	Msg string
}

func (p Problem) Error() string { return p.Key + ": " + p.Msg }

// Problems are every problem of one config, in the order found. Their Error is one sentence per problem,
// joined by "; ", so that it fits one log line and one /readyz sentence.
type Problems []Problem

func (ps Problems) Error() string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Error()
	}
	return strings.Join(parts, "; ")
}

// BadConfig marks Problems as a wrong config: a backend that fails to start with them exits with
// backend.ExitBadConfig (78), and the dispatcher does not restart it.
func (ps Problems) BadConfig() bool { return len(ps) > 0 }

// Add records a problem with key (a path relative to the section, e.g. "pods" or "flavors.gpu.uid"; "" is
// the section itself) under the section's prefix.
func (ps *Problems) Add(prefix, key, format string, args ...any) {
	*ps = append(*ps, Problem{Key: Join(prefix, key), Msg: fmt.Sprintf(format, args...)})
}

// Err is nil without problems, else the Problems.
func (ps Problems) Err() error {
	if len(ps) == 0 {
		return nil
	}
	return ps
}

// Bad is the one problem err with key under prefix, for a check made after Decode (opening the engine's
// address, finding a binary).
func Bad(prefix, key string, err error) error {
	return Problems{{Key: Join(prefix, key), Msg: err.Error()}}
}

// Has reports whether a problem was recorded for the key path (or below it).
func (ps Problems) Has(path string) bool {
	for _, p := range ps {
		if p.Key == path || strings.HasPrefix(p.Key, path+".") || strings.HasPrefix(p.Key, path+"[") {
			return true
		}
	}
	return false
}

// Join appends key to the key path prefix.
func Join(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	case strings.HasPrefix(key, "["):
		return prefix + key
	}
	return prefix + "." + key
}

// Prefix is the key path of backend name's section in the dispatcher's config.
func Prefix(name string) string {
	if name == "" {
		return "config"
	}
	return "backends." + name + ".config"
}

// Decode reads the JSON object raw (empty or null is an empty section) into dst, a pointer to a struct,
// strictly: every problem is returned at once as Problems naming the key path under prefix. warnings say
// which old spellings were used and which key replaces each.
func Decode(raw []byte, prefix string, dst any) (warnings []string, err error) {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return nil, fmt.Errorf("settings.Decode needs a pointer to a struct, not %T", dst)
	}
	d := &decoder{}
	if t := bytes.TrimSpace(raw); len(t) > 0 && !bytes.Equal(t, []byte("null")) {
		d.value(prefix, t, rv.Elem())
	}
	return d.warnings, d.problems.Err()
}

type decoder struct {
	problems Problems
	warnings []string
}

func (d *decoder) bad(path, format string, args ...any) {
	d.problems = append(d.problems, Problem{Key: path, Msg: fmt.Sprintf(format, args...)})
}

// ownPackage is this module's import path: its structs are config sections Decode walks key by key;
// others' (Kubernetes types) are decoded whole, strictly, in their own spelling.
var ownPackage = func() string {
	p := reflect.TypeOf(Problem{}).PkgPath()
	return strings.TrimSuffix(p, "/shared/settings")
}()

func walked(t reflect.Type) bool {
	if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshalerType) {
		return false
	}
	return t.PkgPath() == ownPackage || strings.HasPrefix(t.PkgPath(), ownPackage+"/")
}

var unmarshalerType = reflect.TypeOf((*json.Unmarshaler)(nil)).Elem()

// value decodes raw into v (addressable) at path.
func (d *decoder) value(path string, raw json.RawMessage, v reflect.Value) {
	t := v.Type()
	switch {
	case walked(t):
		d.object(path, raw, v)
		return
	case t.Kind() == reflect.Pointer && walked(t.Elem()):
		if isNull(raw) {
			v.SetZero()
			return
		}
		nv := reflect.New(t.Elem())
		d.object(path, raw, nv.Elem())
		v.Set(nv)
		return
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String && walked(t.Elem()):
		var m map[string]json.RawMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			d.bad(path, "must be a mapping of names to sections, not %s", shortJSON(raw))
			return
		}
		out := reflect.MakeMapWithSize(t, len(m))
		for _, k := range sortedKeys(m) {
			ev := reflect.New(t.Elem()).Elem()
			d.object(Join(path, k), m[k], ev)
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
		}
		v.Set(out)
		return
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8 && !isNull(raw):
		// element by element, so that a problem names its index
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			d.bad(path, "must be a list, not %s", shortJSON(raw))
			return
		}
		out := reflect.MakeSlice(t, len(list), len(list))
		for i, r := range list {
			d.value(fmt.Sprintf("%s[%d]", path, i), r, out.Index(i))
		}
		v.Set(out)
		return
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Addr().Interface()); err != nil {
		d.jsonError(path, raw, t, err)
	}
}

// object decodes the JSON object raw into the struct v key by key.
func (d *decoder) object(path string, raw json.RawMessage, v reflect.Value) {
	if isNull(raw) {
		return
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		d.bad(orSection(path), "must be a mapping of keys to values, not %s", shortJSON(raw))
		return
	}
	fields := fieldsOf(v.Type())
	byKey := map[string]int{}
	for i, f := range fields {
		byKey[f.key] = i
		if f.was != "" {
			byKey[f.was] = i
		}
	}
	seen := map[int]string{}
	for _, k := range sortedKeys(m) {
		i, ok := byKey[k]
		if !ok {
			d.unknown(path, k, fields)
			continue
		}
		f := fields[i]
		if other, dup := seen[i]; dup {
			d.bad(Join(path, f.key), "is set twice, as %s and as %s; keep only %s", other, k, f.key)
			continue
		}
		seen[i] = k
		if k == f.was {
			d.warnings = append(d.warnings, fmt.Sprintf("config key %s is now spelled %s; the old spelling will stop working in the next release",
				Join(path, k), Join(path, f.key)))
		}
		d.value(Join(path, f.key), m[k], v.FieldByIndex(f.index))
	}
}

func (d *decoder) unknown(path, key string, fields []field) {
	norm := normalize(key)
	for _, f := range fields {
		if normalize(f.key) == norm {
			d.bad(Join(path, key), "is not a known key; the key is spelled %s", f.key)
			return
		}
	}
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.key
	}
	sort.Strings(names)
	d.bad(Join(path, key), "is not a known key (the keys here are %s)", strings.Join(names, ", "))
}

// normalize makes the spellings of one key equal: pullTimeout, pull_timeout, PullTimeout, pull-timeout.
func normalize(k string) string {
	return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(k))
}

// jsonError rewrites an encoding/json error at path as an operator reads it.
func (d *decoder) jsonError(path string, raw json.RawMessage, t reflect.Type, err error) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		got := shortJSON(raw)
		p := path
		if te.Field != "" { // inside a value of a type of another package: raw is more than the value at fault
			p = Join(path, te.Field)
			got = jsonKinds[te.Value]
			if got == "" {
				got = te.Value
			}
		}
		d.bad(p, "must be %s, not %s", describe(te.Type), got)
		return
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		d.bad(path, "is not valid JSON: %v", err)
		return
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if rest, ok := strings.CutPrefix(msg, "unknown field "); ok {
		msg = "has the unknown key " + rest
	}
	d.bad(path, "%s", msg)
}

// jsonKinds name encoding/json's kinds of JSON value (UnmarshalTypeError.Value).
var jsonKinds = map[string]string{"number": "a number", "string": "a string", "bool": "true or false",
	"object": "a mapping", "array": "a list"}

// describe is what a value of type t is written as, for "must be ..." messages.
func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Pointer:
		return describe(t.Elem())
	}
	return t.String()
}

type field struct {
	key, was string
	index    []int
}

// fieldsOf lists the keys of struct type t: exported fields with a json tag (embedded structs' keys are
// their own).
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for _, inner := range fieldsOf(f.Type) {
				inner.index = append([]int{i}, inner.index...)
				out = append(out, inner)
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, field{key: name, was: f.Tag.Get("was"), index: []int{i}})
	}
	return out
}

func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

func orSection(path string) string {
	if path == "" {
		return "config"
	}
	return path
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
