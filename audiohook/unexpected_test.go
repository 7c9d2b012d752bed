package audiohook

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// readText returns the next text message the server sends.
func (r *rawSession) readText(ctx context.Context) (string, error) {
	for {
		mt, p, err := r.c.Read(ctx)
		if err != nil {
			return "", err
		}
		if mt == websocket.MessageText {
			return string(p), nil
		}
	}
}

// sessionEnd runs a session until its audio ends and returns the end,
// then closes done once the session has ended.
func sessionEnd(t *testing.T) (u string, ended chan error, done chan struct{}) {
	ended, done = make(chan error, 1), make(chan struct{})
	u = testServer(t, &ServerOptions{Keys: StaticKeys{testKey: nil}, CloseTimeout: 2 * time.Second}, func(s *Session) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		for err == nil {
			_, err = s.ReadFrame(ctx)
		}
		ended <- err
		<-s.Done()
		close(done)
	})
	return u, ended, done
}

// waitDone waits until the session ended and closes the client.
func waitDone(t *testing.T, r *rawSession, done chan struct{}) {
	t.Helper()
	r.c.CloseNow()
	start := time.Now()
	select {
	case <-done:
		t.Logf("session ended %v after the client closed", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end after the client closed")
	}
}

func checkProtocolEnd(t *testing.T, ended chan error, info string) {
	t.Helper()
	select {
	case err := <-ended:
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Reason != "error" || pe.Info != info {
			t.Fatalf("ReadFrame ended with %v, want a *ProtocolError (error) %q", err, info)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session's audio did not end")
	}
}

// A second open after opened is a message in the wrong state: it is
// answered with disconnect "error", and the close transaction is still
// completed.
func TestSecondOpenDisconnects(t *testing.T) {
	u, ended, done := sessionEnd(t)
	ctx := ctxT(t)
	r := openMono(t, ctx, u)
	defer r.c.CloseNow()
	r.seq++
	if err := r.c.Write(ctx, websocket.MessageText, []byte(tmsg(r.id, "open", r.seq, 1, "PT0S", openParams(monoPCMU, nil)))); err != nil {
		t.Fatal(err)
	}
	got, err := r.readText(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"version":"2","type":"disconnect","seq":2,"clientseq":2,"id":%q,"parameters":{"reason":"error","info":"Client Error: Unexpected open message in current state"}}`, r.id)
	if got != want {
		t.Fatalf("answer to a second open:\n got %s\nwant %s", got, want)
	}
	r.seq++
	if err := r.c.Write(ctx, websocket.MessageText, []byte(tmsg(r.id, "close", r.seq, 2, "PT0S", `{"reason":"disconnect"}`))); err != nil {
		t.Fatal(err)
	}
	if got, err = r.readText(ctx); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`{"version":"2","type":"closed","seq":3,"clientseq":3,"id":%q,"parameters":{}}`, r.id); got != want {
		t.Fatalf("answer to close:\n got %s\nwant %s", got, want)
	}
	checkProtocolEnd(t, ended, "Client Error: Unexpected open message in current state")
	waitDone(t, r, done)
}

// A binary message over the WebSocket read limit is refused from its
// header, unread: disconnect "error" first, then close status 1009.
func TestOversizedFrameDisconnectsBefore1009(t *testing.T) {
	u, ended, done := sessionEnd(t)
	ctx := ctxT(t)
	r := openMono(t, ctx, u)
	defer r.c.CloseNow()
	r.c.SetReadLimit(1 << 16)
	go func() { _ = r.c.Write(ctx, websocket.MessageBinary, make([]byte, 2<<20)) }()
	got, err := r.readText(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"version":"2","type":"disconnect","seq":2,"clientseq":1,"id":%q,"parameters":{"reason":"error","info":"Message too large (more than 65536 bytes)"}}`, r.id)
	if got != want {
		t.Fatalf("answer to a 2 MiB frame:\n got %s\nwant %s", got, want)
	}
	if _, err := r.readText(ctx); websocket.CloseStatus(err) != websocket.StatusMessageTooBig {
		t.Fatalf("after the disconnect: %v, want close status 1009", err)
	}
	checkProtocolEnd(t, ended, "Message too large (more than 65536 bytes)")
	waitDone(t, r, done)
}
