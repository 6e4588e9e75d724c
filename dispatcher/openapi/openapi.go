// Package openapi holds the OpenAPI 3.1 document of the dispatcher's HTTP API as it is (openapi.json,
// embedded), served at /openapi.json, and a validator of answers against it, with which tests check that
// every answer the dispatcher gives is one the document describes, so that the two cannot drift apart.
//
// OpenAPI 3.1 schemas are JSON Schema 2020-12: the validator compiles them with
// github.com/santhosh-tekuri/jsonschema/v6, formats asserted.
package openapi

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

//go:embed openapi.json
var document []byte

// Document returns the OpenAPI 3.1 document (JSON), for the /openapi.json route. The slice is shared:
// do not modify it.
func Document() []byte { return document }

// Validate checks one answer of the dispatcher against the document: the path (without its query) and
// method must be documented, the status among the operation's responses (exactly, as NXX, or default),
// except that any other path may be answered as the document's NotFound response and any other method of a
// documented path as its MethodNotAllowed response;
// the Content-Type one of that response's media types, its required headers present and valid, and the
// body valid against the media type's schema (a JSON body as JSON, any other body as a string). The error
// says what does not match.
func Validate(method, path string, status int, header http.Header, body []byte) error {
	v, err := load()
	if err != nil {
		return err
	}
	return v.validate(method, path, status, header, body)
}

// validator is the document, parsed and with its schemas compiled as they are first needed.
type validator struct {
	doc      map[string]any
	routes   []route
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema // by JSON pointer into the document
}

// route is one path of the document, as a pattern.
type route struct {
	template string
	re       *regexp.Regexp
	literal  int // characters outside parameters: the more, the more specific
}

var (
	loadOnce sync.Once
	loaded   *validator
	loadErr  error
)

func load() (*validator, error) {
	loadOnce.Do(func() { loaded, loadErr = newValidator(document) })
	return loaded, loadErr
}

const docURL = "urn:interlink-dispatcher:openapi.json"

func newValidator(data []byte) (*validator, error) {
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("the OpenAPI document is not JSON: %w", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, inst); err != nil {
		return nil, fmt.Errorf("the OpenAPI document cannot be loaded as schemas: %w", err)
	}
	v := &validator{doc: doc, compiler: c, compiled: map[string]*jsonschema.Schema{}}
	paths, _ := doc["paths"].(map[string]any)
	for tmpl := range paths {
		parts := strings.Split(tmpl, "/")
		literal := 0
		for i, p := range parts {
			if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
				parts[i] = "[^/]+"
				continue
			}
			literal += len(p)
			parts[i] = regexp.QuoteMeta(p)
		}
		v.routes = append(v.routes, route{template: tmpl, re: regexp.MustCompile("^" + strings.Join(parts, "/") + "$"), literal: literal})
	}
	// A literal path wins over a template that also matches it, as OpenAPI says.
	sort.Slice(v.routes, func(i, j int) bool { return v.routes[i].literal > v.routes[j].literal })
	return v, nil
}

func (v *validator) validate(method, path string, status int, header http.Header, body []byte) error {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	tmpl := ""
	for _, r := range v.routes {
		if r.re.MatchString(path) {
			tmpl = r.template
			break
		}
	}
	// The catch-alls no path item can hold: any other path is a 404, any other method of a path a 405, each
	// answered as the document's NotFound and MethodNotAllowed responses.
	var respPtr, where string
	opPtr := "/paths/" + escape(tmpl) + "/" + strings.ToLower(method)
	_, hasOp := v.at(opPtr).(map[string]any)
	switch {
	case tmpl == "" && status == http.StatusNotFound:
		where, respPtr = fmt.Sprintf("%s %s (no such path)", method, path), "/components/responses/NotFound"
	case tmpl == "":
		return fmt.Errorf("%s %s: the document has no such path (only a 404 may answer it)", method, path)
	case !hasOp && status == http.StatusMethodNotAllowed:
		where, respPtr = fmt.Sprintf("%s %s (%s, no such method)", method, path, tmpl), "/components/responses/MethodNotAllowed"
	case !hasOp:
		return fmt.Errorf("%s %s (%s): the document has no %s operation on this path (only a 405 may answer it)", method, path, tmpl, method)
	default:
		where = fmt.Sprintf("%s %s (%s)", method, path, tmpl)
		op := v.at(opPtr).(map[string]any)
		resps, _ := op["responses"].(map[string]any)
		code := strconv.Itoa(status)
		key := ""
		for _, k := range []string{code, code[:1] + "XX", "default"} {
			if _, ok := resps[k]; ok {
				key = k
				break
			}
		}
		if key == "" {
			return fmt.Errorf("%s: status %d is not among the documented responses", where, status)
		}
		respPtr = opPtr + "/responses/" + escape(key)
	}
	resp, respPtr := v.deref(respPtr)
	if err := v.headers(where, status, respPtr, resp, header); err != nil {
		return err
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("%s: status %d is documented without a body, but %d bytes came", where, status, len(body))
		}
		return nil
	}
	ct := header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("%s: status %d: the Content-Type %q is not a media type", where, status, ct)
	}
	name := ""
	for _, cand := range []string{mt, strings.SplitN(mt, "/", 2)[0] + "/*", "*/*"} {
		if _, ok := content[cand]; ok {
			name = cand
			break
		}
	}
	if name == "" {
		return fmt.Errorf("%s: status %d: Content-Type %s is not documented (the document has %s)", where, status, mt, keys(content))
	}
	schemaPtr := respPtr + "/content/" + escape(name) + "/schema"
	if v.at(schemaPtr) == nil {
		return nil
	}
	var inst any
	if mt == "application/json" || strings.HasSuffix(mt, "+json") {
		if inst, err = jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
			return fmt.Errorf("%s: status %d: the body is not JSON: %v", where, status, err)
		}
	} else {
		inst = string(body)
	}
	if err := v.check(schemaPtr, inst); err != nil {
		return fmt.Errorf("%s: status %d: the body does not match the document: %v", where, status, err)
	}
	return nil
}

// headers checks the response's documented headers: a required one must be there, and each present one
// must match its schema.
func (v *validator) headers(where string, status int, respPtr string, resp map[string]any, header http.Header) error {
	hs, _ := resp["headers"].(map[string]any)
	for name, h := range hs {
		hm, _ := h.(map[string]any)
		val, present := header.Get(name), len(header.Values(name)) > 0
		if req, _ := hm["required"].(bool); req && !present {
			return fmt.Errorf("%s: status %d: the required header %s is missing", where, status, name)
		}
		if present && hm["schema"] != nil {
			if err := v.check(respPtr+"/headers/"+escape(name)+"/schema", val); err != nil {
				return fmt.Errorf("%s: status %d: header %s: %v", where, status, name, err)
			}
		}
	}
	return nil
}

// check validates inst against the schema at ptr, compiled once.
func (v *validator) check(ptr string, inst any) error {
	v.mu.Lock()
	s, ok := v.compiled[ptr]
	if !ok {
		var err error
		if s, err = v.compiler.Compile(docURL + "#" + ptr); err != nil {
			v.mu.Unlock()
			return fmt.Errorf("the document's schema at %s does not compile: %w", ptr, err)
		}
		v.compiled[ptr] = s
	}
	v.mu.Unlock()
	return s.Validate(inst)
}

// deref follows a response's $ref (components/responses) and returns it with its pointer.
func (v *validator) deref(ptr string) (map[string]any, string) {
	for range 8 {
		m, _ := v.at(ptr).(map[string]any)
		ref, _ := m["$ref"].(string)
		if !strings.HasPrefix(ref, "#") {
			return m, ptr
		}
		ptr = ref[1:]
	}
	return nil, ptr
}

// at returns the document's value at a JSON pointer, nil when there is none.
func (v *validator) at(ptr string) any {
	var cur any = v.doc
	for _, tok := range strings.Split(strings.TrimPrefix(ptr, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[tok]
	}
	return cur
}

func escape(tok string) string { return strings.NewReplacer("~", "~0", "/", "~1").Replace(tok) }

func keys(m map[string]any) string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// Operations lists every documented "METHOD path template", sorted: what a test can check it exercised.
func Operations() []string {
	v, err := load()
	if err != nil {
		return nil
	}
	var out []string
	paths, _ := v.doc["paths"].(map[string]any)
	for tmpl, item := range paths {
		for m := range item.(map[string]any) {
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options", "trace":
				out = append(out, strings.ToUpper(m)+" "+tmpl)
			}
		}
	}
	sort.Strings(out)
	return out
}
