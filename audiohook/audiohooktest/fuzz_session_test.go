package audiohooktest

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
)

// FuzzServerSession drives a live server session over loopback with
// arbitrary client messages (one per line; lines starting with "B:" are sent
// as binary) and checks that the server never sends an invalid message,
// never skips a seq, and always ends the session.
func FuzzServerSession(f *testing.F) {
	const id = "994dba0a-7d1b-4b8e-9c62-2b6f7e1f9a01"
	lines := func(ls ...string) []byte { return []byte(strings.Join(ls, "\n")) }
	f.Add(lines(openStep(id), tmsg(id, "ping", 2, 1, "PT0S", "{}"), "B:abcd", tmsg(id, "close", 3, 2, "PT1S", `{"reason":"end"}`)))
	f.Add(lines(openStep(id), tmsg(id, "paused", 2, 1, "PT0S", "{}"), tmsg(id, "resumed", 3, 1, "PT1S", `{"start":"PT0S","discarded":"PT1S"}`)))
	f.Add(lines(openStep(id), tmsg(id, "discarded", 2, 1, "PT0S", `{"start":"PT0S","discarded":"PT2S"}`), tmsg(id, "update", 3, 1, "PT0S", `{"language":"es-US"}`)))
	f.Add(lines("B:xx", openStep(id)))
	f.Add(lines(`{"version":"2","type":"open"}`))
	f.Add(lines(tmsg(id, "open", 1, 0, "PT0S", `{"media":[{"type":"audio","format":"L16","channels":["internal"],"rate":8000}]}`)))

	opts := &audiohook.ServerOptions{InsecureSkipAuth: true, CloseTimeout: 200 * time.Millisecond, OpenTimeout: 500 * time.Millisecond}
	url := testServer(f, opts, func(s *audiohook.Session) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for {
			if _, err := s.ReadFrame(ctx); err != nil {
				break
			}
		}
		select {
		case <-s.Done():
		case <-ctx.Done():
		}
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h := http.Header{}
		h.Set(wire.HeaderSessionID, id)
		h.Set(wire.HeaderOrganizationID, tOrg)
		h.Set(wire.HeaderCorrelationID, tConv)
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		done := make(chan struct{})
		var lastSeq int64
		var bad []byte
		go func() {
			defer close(done)
			for {
				_, b, err := c.Read(ctx)
				if err != nil {
					return
				}
				m, err := wire.ParseServerMessage(b)
				if err != nil || m.Seq != lastSeq+1 || m.ID != id {
					bad = b
					return
				}
				lastSeq = m.Seq
			}
		}()
		for _, l := range bytes.Split(in, []byte("\n")) {
			var err error
			if bytes.HasPrefix(l, []byte("B:")) {
				err = c.Write(ctx, websocket.MessageBinary, l[2:])
			} else {
				err = c.Write(ctx, websocket.MessageText, l)
			}
			if err != nil {
				break
			}
		}
		_ = c.Write(ctx, websocket.MessageText, []byte(tmsg(id, "close", 1000, 0, "PT0S", `{"reason":"end"}`)))
		stop := time.AfterFunc(300*time.Millisecond, func() { c.CloseNow() })
		<-done
		stop.Stop()
		if bad != nil {
			t.Fatalf("server sent invalid or out-of-sequence message %s", bad)
		}
	})
}
