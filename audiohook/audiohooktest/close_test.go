package audiohooktest

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
)

// The close transaction's timeout runs from when close was sent: after the
// server's disconnect the client sent close at once, so a Close called
// later waits only for what is left of CloseTimeout.
func TestClientCloseTimeoutFromCloseSent(t *testing.T) {
	// A server that disconnects at once and never answers close.
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
		_ = c.Write(ctx, websocket.MessageText, appendServerMessage(nil, wire.TypeOpened, id, 1, 1, []byte(`{"media":`+monoPCMU+`}`)))
		_ = c.Write(ctx, websocket.MessageText, appendServerMessage(nil, wire.TypeDisconnect, id, 2, 1, []byte(`{"reason":"completed"}`)))
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	ctx := ctxT(t)
	c, err := Dial(ctx, url, &DialOptions{PingInterval: -1, CloseTimeout: 800 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // the disconnect arrived and close was sent meanwhile
	start := time.Now()
	err = c.Close(ctx, "")
	t.Logf("Close after %v: %v", time.Since(start), err)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Close waited %v; close was sent 500 ms before, with a timeout of 800 ms", d)
	}
	if !errors.Is(err, audiohook.ErrTimeout) {
		t.Errorf("Close: %v, want ErrTimeout", err)
	}
}
