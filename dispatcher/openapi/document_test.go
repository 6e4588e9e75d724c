package openapi

import (
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestEverySchemaCompiles compiles every schema of the document, the components and each response's and
// request's, so that a broken $ref or a mistyped keyword shows here, not in the one test that reaches it.
func TestEverySchemaCompiles(t *testing.T) {
	v, err := load()
	if err != nil {
		t.Fatal(err)
	}
	var ptrs []string
	var walk func(ptr string, node any)
	walk = func(ptr string, node any) {
		switch n := node.(type) {
		case map[string]any:
			for k, child := range n {
				p := ptr + "/" + escape(k)
				if k == "schema" {
					ptrs = append(ptrs, p)
					continue
				}
				walk(p, child)
			}
		case []any: // parameters
			for i, child := range n {
				walk(ptr+"/"+strconv.Itoa(i), child)
			}
		}
	}
	walk("", v.doc["paths"])
	for i := range ptrs {
		ptrs[i] = "/paths" + ptrs[i]
	}
	comps := v.doc["components"].(map[string]any)
	for name := range comps["schemas"].(map[string]any) {
		ptrs = append(ptrs, "/components/schemas/"+escape(name))
	}
	for name, r := range comps["responses"].(map[string]any) {
		for mt := range r.(map[string]any)["content"].(map[string]any) {
			ptrs = append(ptrs, "/components/responses/"+escape(name)+"/content/"+escape(mt)+"/schema")
		}
	}
	sort.Strings(ptrs)
	if len(ptrs) < 40 {
		t.Fatalf("only %d schemas found: the walk is broken", len(ptrs))
	}
	for _, p := range ptrs {
		if _, err := v.compiler.Compile(docURL + "#" + p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	t.Logf("%d schemas compile, e.g. %s", len(ptrs), strings.Join(ptrs[:3], ", "))
}
