package audiohook

import (
	"bytes"
	"os/exec"
	"testing"
)

// maxDocLines bounds `go doc -all` of this package. It documents what a
// server author uses; the message format lives in package wire and the
// Genesys client in package audiohooktest, so a new export that makes this
// fail probably belongs in one of them.
const maxDocLines = 533

func TestDocLength(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH: cannot run go doc")
	}
	out, err := exec.Command(gobin, "doc", "-all", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go doc -all: %v\n%s", err, out)
	}
	n := bytes.Count(out, []byte("\n"))
	if n > maxDocLines {
		t.Errorf("go doc -all prints %d lines, more than %d", n, maxDocLines)
	}
	for _, name := range []string{"func Accept(", "type ServerOptions struct", "type Session struct", "func (s *Session) ReadFrame("} {
		if !bytes.Contains(out, []byte(name)) {
			t.Errorf("go doc -all lacks %q", name)
		}
	}
}
