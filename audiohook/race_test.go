package audiohook

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/audiohook/wire"
)

// The application ending a session (Disconnect, Close, timers) while the
// client's update changes the open parameters: the session's state has one
// writer, so -race finds nothing. (Before, failWith read the open info
// without the lock while the reader goroutine replaced it on update.)
func TestUpdateRacesDisconnect(t *testing.T) {
	pad := strings.Repeat("x", 15000)
	for i := range 30 {
		opened := make(chan *Session, 1)
		var updates atomic.Int32
		flowing := make(chan struct{})
		opts := &ServerOptions{Keys: StaticKeys{testKey: nil}, CloseTimeout: time.Second,
			OnMessage: func(_ *Session, m *wire.Message) {
				if m.Type == wire.TypeUpdate && updates.Add(1) == 10 {
					close(flowing)
				}
			}}
		u := testServer(t, opts, func(s *Session) {
			if _, err := s.Open(context.Background()); err != nil {
				t.Error(err)
				return
			}
			opened <- s
			<-s.Done()
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := dialRaw(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.roundTrip(ctx, "open", openParams(stereoPCMU, nil)); err != nil {
			t.Fatal(err)
		}
		s := <-opened
		go func() { // drain the server's answers
			for {
				if _, _, err := r.c.Read(ctx); err != nil {
					return
				}
			}
		}()
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			for k := range 30 {
				r.seq++
				lang := "en-US"
				if k%2 == 1 {
					lang = "de-DE"
				}
				// The padding makes the update slow to decode, the
				// window in which the old code raced.
				msg := tmsg(r.id, "update", r.seq, 1, "PT0S", `{"language":"`+lang+`","pad":"`+pad+`"}`)
				if r.c.Write(ctx, websocket.MessageText, []byte(msg)) != nil {
					return
				}
			}
		}()
		select {
		case <-flowing:
		case <-ctx.Done():
			t.Fatal("updates do not reach the server")
		}
		// Land at varying points of the update's handling.
		time.Sleep(time.Duration(i%10) * 100 * time.Microsecond)
		if i%2 == 0 {
			dctx, dcancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_ = s.Disconnect(dctx, wire.ReasonCompleted, "")
			dcancel()
			_ = s.Info()
			_ = s.CloseNow()
		} else {
			dctx, dcancel := context.WithTimeout(ctx, 50*time.Millisecond)
			_ = s.DisconnectWith(dctx, wire.DisconnectParameters{Reason: wire.ReasonError, Info: "x"})
			dcancel()
			_ = s.Info()
			_ = s.CloseNow()
		}
		<-sent
		r.c.CloseNow()
		cancel()
	}
}
