// Package examples_test checks the examples as a user gets them: each
// folder copied alone into a new module builds, and none imports
// examples/internal.
package examples_test

import (
	"bytes"
	"context"
	"errors"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

const modulePath = "github.com/voicegate/voicegate"

// examples lists the example folders (every folder but internal).
func examples(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && e.Name() != "internal" && e.Name() != "testdata" && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		t.Fatal("no examples found")
	}
	return out
}

// imports returns the import paths of the Go files of dir (tests when
// tests is true, the others otherwise).
func imports(t *testing.T, dir string, tests bool) []string {
	t.Helper()
	var out []string
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") != tests {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			out = append(out, p)
		}
	}
	return out
}

// TestNoInternalImports: an example's program imports public packages
// only, so that its folder works outside the repository.
func TestNoInternalImports(t *testing.T) {
	for _, ex := range examples(t) {
		for _, p := range imports(t, ex, false) {
			if p == modulePath+"/examples" || strings.HasPrefix(p, modulePath+"/examples/") ||
				strings.HasPrefix(p, modulePath+"/internal/") || strings.Contains(p, "/internal/") && strings.HasPrefix(p, modulePath) {
				t.Errorf("%s imports %s", ex, p)
			}
		}
	}
}

// goTool returns the go command, or "" when there is none.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// offline matches go command failures that come from the network (the
// module proxy or checksum database unreachable), not from the example.
var offline = regexp.MustCompile(`module lookup disabled|dial tcp|no such host|connection refused|i/o timeout|TLS handshake timeout|network is unreachable|proxyconnect|Get "https://`)

// copyDir copies the files of src (recursively) into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestExamplesBuildAlone copies each example folder alone into a new
// module that requires this module (replaced by the working tree, since
// it is not on a module proxy), resolves its dependencies with
// go mod tidy (seeded with this module's go.sum, through the module cache
// or the proxy) and builds it with go build.
func TestExamplesBuildAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: building every example in a new module takes minutes")
	}
	gobin := goTool()
	if gobin == "" {
		t.Skip("no go command found (GOROOT/bin or PATH): cannot build the examples in a new module")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mustRead(t, filepath.Join(root, "go.mod")))
	if goVersion == nil {
		t.Fatal("no go directive in go.mod")
	}
	for _, ex := range examples(t) {
		t.Run(ex, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), ex)
			copyDir(t, ex, dir)
			mod := "module example.com/" + ex + "\n\ngo " + string(goVersion[1]) + "\n\n" +
				"require " + modulePath + " v0.0.0-00010101000000-000000000000\n\n" +
				"replace " + modulePath + " => " + filepath.ToSlash(root) + "\n"
			if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
				t.Fatal(err)
			}
			gocmd := func(timeout time.Duration, args ...string) ([]byte, error) {
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				cmd := exec.CommandContext(ctx, gobin, args...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local")
				out, err := cmd.CombinedOutput()
				if ctx.Err() != nil {
					err = errors.Join(err, ctx.Err())
				}
				return out, err
			}
			// -e: a test file of the example may use packages of this
			// repository that a copied folder cannot (test fixtures);
			// go build below decides for the program.
			if out, err := gocmd(5*time.Minute, "mod", "tidy", "-e"); err != nil {
				if offline.Match(out) || errors.Is(err, context.DeadlineExceeded) {
					t.Skipf("go mod tidy could not reach the module proxy (network): %v\n%s", err, out)
				}
				t.Fatalf("go mod tidy: %v\n%s", err, out)
			}
			out, err := gocmd(10*time.Minute, "build", "-o", filepath.Join(t.TempDir(), ex), ".")
			if err != nil {
				if offline.Match(out) {
					t.Skipf("go build could not reach the module proxy (network): %v\n%s", err, out)
				}
				t.Fatalf("go build: %v\n%s", err, out)
			}
			if bytes.Contains(mustRead(t, filepath.Join(dir, "go.mod")), []byte("examples/internal")) {
				t.Fatal("go.mod names examples/internal")
			}
		})
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
