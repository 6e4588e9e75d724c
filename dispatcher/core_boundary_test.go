package dispatcher

import (
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// The Core's files stay free of HTTP: what it decides is called alike by the interLink routes, the admin
// API and tests, and an HTTP type creeping in would tie it to one of them.
func TestCoreFilesImportNoHTTP(t *testing.T) {
	core := []string{"core.go", "create.go", "delete.go", "status.go", "logs.go", "ping.go", "pods.go",
		"backends.go", "unknown.go", "routing.go", "policy.go", "journal.go", "reconcile.go", "supervisor.go",
		"fanout.go", "observer.go"}
	fset := token.NewFileSet()
	for _, name := range core {
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "net/http") || strings.Contains(path, "go-chi/") {
				t.Errorf("%s imports %s: the Core is free of HTTP; put HTTP handling in the Server's files", name, path)
			}
		}
	}
}
