package audiohooktest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
)

// fakeServer accepts one connection, reads open, then sends the given
// replies (text, or binary when prefixed with "BIN:") and reports every
// client message it receives afterwards.
func fakeServer(t *testing.T, replies func(id string) []string) (string, chan []string) {
	got := make(chan []string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := ctxT(t)
		id := r.Header.Get(wire.HeaderSessionID)
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
		seq := int64(1)
		for _, rep := range replies(id) {
			if !strings.HasPrefix(rep, "BIN:") {
				seq++
			}
			if strings.HasPrefix(rep, "BIN:") {
				_ = c.Write(ctx, websocket.MessageBinary, []byte(rep[4:]))
			} else {
				_ = c.Write(ctx, websocket.MessageText, []byte(rep))
			}
		}
		var seen []string
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				break
			}
			m, err := wire.ParseClientMessage(b)
			if err != nil {
				seen = append(seen, "invalid")
				continue
			}
			seen = append(seen, m.Type+":"+string(m.Parameters))
			if m.Type == wire.TypeClose {
				_ = c.Write(ctx, websocket.MessageText, appendServerMessage(nil, wire.TypeClosed, id, seq, m.Seq, nil))
			}
		}
		got <- seen
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), got
}

func TestClientProtocolViolations(t *testing.T) {
	opened := func(id string, seq int64, media string) string {
		return string(appendServerMessage(nil, wire.TypeOpened, id, seq, 1, []byte(`{"media":`+media+`}`)))
	}
	cases := []struct {
		name    string
		replies func(id string) []string
		code    int
		msg     string
	}{
		{"media not offered", func(id string) []string { return []string{opened(id, 1, stereoL16)} }, 400, "Selected media not one of the offered"},
		{"two media selected", func(id string) []string {
			return []string{opened(id, 1, `[`+strings.Trim(stereoPCMU, "[]")+`,`+strings.Trim(stereoPCMU, "[]")+`]`)}
		}, 400, "More than one media selected"},
		{"bad seq", func(id string) []string { return []string{opened(id, 2, stereoPCMU)} }, 500, "Invalid seq"},
		{"clientseq ahead", func(id string) []string {
			return []string{string(appendServerMessage(nil, wire.TypeOpened, id, 1, 5, []byte(`{"media":`+stereoPCMU+`}`)))}
		}, 400, "Invalid clientseq"},
		{"wrong id", func(id string) []string { return []string{opened(NewUUID(), 1, stereoPCMU)} }, 400, "Session identifier mismatch"},
		{"missing parameters", func(id string) []string {
			return []string{`{"version":"2","type":"opened","seq":1,"clientseq":1,"id":"` + id + `"}`}
		}, 400, "missing parameters"},
		{"unknown type", func(id string) []string {
			return []string{string(appendServerMessage(nil, "bogus", id, 1, 1, nil))}
		}, 500, "Unknown message type"},
		{"binary from server", func(id string) []string { return []string{"BIN:abc"} }, 415, "Unexpected binary message"},
		{"closed without close", func(id string) []string {
			return []string{string(appendServerMessage(nil, wire.TypeClosed, id, 1, 1, nil))}
		}, 409, "Unexpected closed"},
		{"oversized message", func(id string) []string {
			return []string{string(appendServerMessage(nil, wire.TypeEvent, id, 1, 1, []byte(`{"x":"`+strings.Repeat("a", 70000)+`"}`)))}
		}, 413, "too large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, got := fakeServer(t, tc.replies)
			_, err := Dial(ctxT(t), url, &DialOptions{PingInterval: -1, CloseTimeout: 2 * time.Second})
			var pe *audiohook.ProtocolError
			if !errors.As(err, &pe) || pe.Code != tc.code || !strings.Contains(pe.Info, tc.msg) {
				t.Fatalf("Dial: %v, want code %d %q", err, tc.code, tc.msg)
			}
			seen := <-got
			if len(seen) < 2 || !strings.HasPrefix(seen[0], "error:") || !strings.Contains(seen[0], tc.msg) ||
				seen[1] != `close:{"reason":"error"}` {
				t.Fatalf("client sent %v, want error and close", seen)
			}
		})
	}
}

func TestClientAuthAndOpenFailures(t *testing.T) {
	url := testServer(t, signedServerOptions(t), nil)
	ctx := ctxT(t)
	_, err := Dial(ctx, url, &DialOptions{APIKey: testKey, Secret: []byte("wrong secret"), PingInterval: -1})
	var ae *audiohook.AuthError
	if !errors.As(err, &ae) || ae.Status != 401 || !errors.Is(err, audiohook.ErrUnauthorized) {
		t.Fatalf("wrong secret: %v", err)
	}
	opts := signedServerOptions(t)
	opts.OnOpen = func(info *audiohook.OpenInfo) error {
		return errors.New("no capacity")
	}
	url2 := testServer(t, opts, func(s *audiohook.Session) {
		_, _ = s.Open(ctx)
		<-s.Done()
	})
	_, err = Dial(ctx, url2, signedDial(t, nil))
	var de *audiohook.DisconnectError
	if !errors.As(err, &de) || de.Reason != wire.ReasonError || de.Info != "no capacity" {
		t.Fatalf("refused open: %v", err)
	}
}

func TestClientPingAndSessionCancel(t *testing.T) {
	res := make(chan error, 1)
	url := testServer(t, signedServerOptions(t), func(s *audiohook.Session) {
		ctx := ctxT(t)
		if _, err := s.Open(ctx); err != nil {
			res <- err
			return
		}
		// A cancelled ReadFrame leaves the session usable.
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := s.ReadFrame(cctx)
		if !errors.Is(err, context.Canceled) {
			res <- err
			return
		}
		for {
			if _, err := s.ReadFrame(ctx); err != nil {
				res <- err
				return
			}
		}
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, &DialOptions{PingInterval: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		rtt, err := c.Ping(ctx)
		if err != nil || rtt <= 0 {
			t.Fatalf("ping: %v %v", rtt, err)
		}
	}
	if err := c.Stream(ctx, ToneSource(200*time.Millisecond), &StreamOptions{Fast: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx, ""); !errors.Is(err, audiohook.ErrClosed) {
		t.Fatalf("second close: %v", err)
	}
	if err := <-res; err == nil || !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("server end: %v", err)
	}
}

func TestSessionCloseNowErrors(t *testing.T) {
	res := make(chan []error, 1)
	url := testServer(t, signedServerOptions(t), func(s *audiohook.Session) {
		ctx := ctxT(t)
		if _, err := s.Open(ctx); err != nil {
			res <- []error{err}
			return
		}
		e1 := s.CloseNow()
		_, e2 := s.ReadFrame(ctx)
		e3 := s.CloseNow()
		e4 := s.Pause(ctx)
		res <- []error{e1, e2, e3, e4}
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	errs := <-res
	if len(errs) != 4 || errs[0] != nil || !errors.Is(errs[1], net.ErrClosed) || !errors.Is(errs[2], net.ErrClosed) || !errors.Is(errs[3], net.ErrClosed) {
		t.Fatalf("errors after CloseNow: %v", errs)
	}
	// The client sees the connection drop.
	if err := c.Stream(ctx, ToneSource(10*time.Second), &StreamOptions{Fast: true}); err == nil {
		t.Fatal("stream on a dropped connection succeeded")
	}
	_ = c.CloseNow()
}

// A send whose ctx has already ended must not use up a sequence number:
// otherwise the next message is out of sequence and the server disconnects.
func TestClientCancelledSendKeepsSequence(t *testing.T) {
	res := make(chan error, 1)
	url := testServer(t, signedServerOptions(t), func(s *audiohook.Session) {
		ctx := ctxT(t)
		for {
			if _, err := s.ReadFrame(ctx); err != nil {
				res <- err
				return
			}
		}
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, &DialOptions{PingInterval: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	for i := range 50 {
		if _, err := c.Ping(cancelled); !errors.Is(err, context.Canceled) {
			t.Fatalf("ping %d with a cancelled ctx: %v", i, err)
		}
		if err := c.SendError(cancelled, 500, "x"); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %d with a cancelled ctx: %v", i, err)
		}
		if _, err := c.Ping(ctx); err != nil {
			t.Fatalf("ping %d after a cancelled one: %v", i, err)
		}
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err == nil || !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("server end: %v", err)
	}
}
