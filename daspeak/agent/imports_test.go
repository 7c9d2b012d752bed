package agent

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImports keeps the core platform-neutral: no Twilio or AudioHook
// package, and no platform adapter, is imported by its non-test files.
func TestImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, banned := range []string{"/twilio", "/audiohook", "/agent/flex", "/agent/genesys"} {
				if strings.Contains(p, "voicegate/voicegate"+banned) || strings.HasSuffix(p, banned) && strings.Contains(p, "voicegate") {
					t.Errorf("%s imports %s", name, p)
				}
			}
		}
	}
}
