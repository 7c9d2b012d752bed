//go:build unix

package audiohook

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDirSinkModes: under the usual umask 022 the recorded WAV and JSON
// files are 0600 (os.Create made them 0644), also when a file of that
// name existed with a wider mode.
func TestDirSinkModes(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	const id = "4a6b3f2e-6c1d-4e8f-9a0b-1c2d3e4f5a6b"
	for _, existing := range []os.FileMode{0, 0o644, 0o666} {
		name := "new"
		if existing != 0 {
			name = "existing " + existing.String()
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if existing != 0 {
				for _, ext := range []string{".wav", ".json"} {
					p := filepath.Join(dir, id+ext)
					if err := os.WriteFile(p, []byte("old"), existing); err != nil {
						t.Fatal(err)
					}
					if err := os.Chmod(p, existing); err != nil {
						t.Fatal(err)
					}
				}
			}
			a, s, err := DirSink(dir).Create(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Write([]byte("RIFF")); err != nil {
				t.Fatal(err)
			}
			a.Close()
			s.Close()
			for _, ext := range []string{".wav", ".json"} {
				p := filepath.Join(dir, id+ext)
				fi, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("%s: mode %v, want 0600", filepath.Base(p), fi.Mode())
				}
			}
			if b, _ := os.ReadFile(filepath.Join(dir, id+".json")); len(b) != 0 {
				t.Errorf("existing file not truncated: %q", b)
			}
		})
	}
}
