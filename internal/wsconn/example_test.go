package wsconn_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/voicegate/voicegate/internal/wsconn"
)

// ExampleAccept echoes every message back to the client. The payload
// returned by ReadMessage is reused by the next call, so it is written back
// before reading again.
func ExampleAccept() {
	http.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		c, err := wsconn.Accept(w, r, &wsconn.AcceptOptions{Subprotocols: []string{"echo.v1"}})
		if err != nil {
			return // the HTTP error has been sent
		}
		defer c.CloseNow()
		c.SetReadLimit(64 << 10)
		for {
			typ, p, err := c.ReadMessage()
			if err != nil {
				var ce *wsconn.CloseError
				if !errors.As(err, &ce) {
					slog.Info("echo: read", "err", err)
				}
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = c.WriteMessage(ctx, typ, p)
			cancel()
			if err != nil {
				return
			}
		}
	})
}

// ExampleConn_Close ends a connection with the close handshake from a
// goroutine other than the reader.
func ExampleConn_Close() {
	var c *wsconn.Conn // from Accept
	stop := func() {
		// The reader's ReadMessage sees the peer's answer as a *CloseError.
		_ = c.Close(wsconn.StatusGoingAway, "server shutting down")
	}
	_ = stop
}
