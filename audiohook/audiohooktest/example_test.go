package audiohooktest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/audiohook/wire"
)

// ExampleAccept runs an AudioHook endpoint that reads every call's audio.
func ExampleAccept() {
	keys, err := audiohook.KeysFromJSON([]byte(`{"my-api-key":"TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="}`))
	if err != nil {
		log.Fatal(err)
	}
	opts := &audiohook.ServerOptions{Keys: keys, Nonces: audiohook.NewMemoryNonces(0)}
	done := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := audiohook.Accept(w, r, opts)
		if err != nil {
			return // Accept already answered 400 or 401
		}
		defer s.Close()
		ctx := context.Background() // never r.Context() after the upgrade
		info, err := s.Open(ctx)
		if err != nil {
			return
		}
		var audio time.Duration
		for {
			f, err := s.ReadFrame(ctx)
			if err != nil {
				if errors.Is(err, io.EOF) {
					done <- fmt.Sprintf("%s %v: %v of audio", info.Media.Format, info.Media.Channels, audio)
				}
				return
			}
			audio += f.Duration()
		}
	}))
	defer srv.Close()

	ctx := context.Background()
	c, err := audiohooktest.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &audiohooktest.DialOptions{
		APIKey: "my-api-key",
		Secret: []byte("MySuperSecretKeyTellNo-1!2@3#4$5"),
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = c.Stream(ctx, audiohooktest.ToneSource(time.Second, 440, 660), &audiohooktest.StreamOptions{Fast: true})
	_ = c.Close(ctx, wire.CloseEnd)
	fmt.Println(<-done)
	// Output: PCMU [external internal]: 1s of audio
}

// ExampleDial points the Genesys-like client at an AudioHook server, streams
// a WAV file in real time and prints what the server sends back.
func ExampleDial() {
	ctx := context.Background()
	c, err := audiohooktest.Dial(ctx, "wss://audiohook.example.com/api/v1/voicebiometrics/ws", &audiohooktest.DialOptions{
		APIKey: "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh",
		Secret: []byte("MySuperSecretKeyTellNo-1!2@3#4$5"), // the decoded client secret
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	go func() {
		for {
			m, err := c.Next(ctx)
			if err != nil {
				return
			}
			fmt.Println(m.Type, string(m.Parameters))
		}
	}()
	src, err := audiohooktest.WAVSource("call.wav")
	if err != nil {
		log.Fatal(err)
	}
	if rtt, err := c.Ping(ctx); err == nil {
		fmt.Println("rtt", rtt)
	}
	if err := c.Stream(ctx, src, nil); err != nil {
		log.Println("stream ended:", err) // e.g. *audiohook.DisconnectError
	}
	_ = c.Close(ctx, wire.CloseEnd)
}
