package audiohooktest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
)

// failingKeys is a KeyStore whose back end is down.
type failingKeys struct{}

func (failingKeys) Secret(context.Context, string) ([]byte, bool, error) {
	return nil, false, errors.New("key store unreachable")
}

// waits records the durations passed to ServerOptions.Sleep without
// sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) sleep(_ context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return nil
}

func (w *waits) get() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

// TestAuthFailureDelay checks that every kind of authentication failure is
// held back to the same least delay after verification started, in both
// failure modes, and that successes are not. The server's clock is fixed,
// so the delay asked of Sleep is exactly AuthFailureDelay.
func TestAuthFailureDelay(t *testing.T) {
	now := time.Unix(time.Now().Unix(), 0)
	clock := func() time.Time { return now }
	secret := mustB64(t, testSecret)
	keys := audiohook.StaticKeys{testKey: secret, "open-key": nil}
	const nonce = "dGhlLXNhbWUtbm9uY2UtdHdpY2U="
	cases := []struct {
		name   string
		keys   audiohook.KeyStore
		dial   DialOptions
		replay bool // dial twice; the second one fails
		fail   bool
	}{
		{name: "valid signature", dial: DialOptions{APIKey: testKey, Secret: secret}},
		{name: "unsigned, key without secret", dial: DialOptions{APIKey: "open-key"}},
		{name: "missing api key", fail: true},
		{name: "unknown key, unsigned", dial: DialOptions{APIKey: "unknown"}, fail: true},
		{name: "unknown key, signed", dial: DialOptions{APIKey: "unknown", Secret: secret}, fail: true},
		{name: "wrong secret", dial: DialOptions{APIKey: testKey, Secret: []byte("wrong")}, fail: true},
		{name: "unsigned, key with secret", dial: DialOptions{APIKey: testKey}, fail: true},
		{name: "key without secret, signed with another", dial: DialOptions{APIKey: "open-key", Secret: secret}, fail: true},
		{name: "expired signature", dial: DialOptions{APIKey: testKey, Secret: secret, Now: func() time.Time { return now.Add(-time.Minute) }}, fail: true},
		{name: "replayed nonce", dial: DialOptions{APIKey: testKey, Secret: secret, Nonce: nonce}, replay: true, fail: true},
		{name: "key store error", keys: failingKeys{}, dial: DialOptions{APIKey: testKey, Secret: secret}, fail: true},
	}
	for _, mode := range []audiohook.AuthFailureMode{audiohook.AuthReject, audiohook.AuthDisconnect} {
		for _, tc := range cases {
			t.Run(map[audiohook.AuthFailureMode]string{audiohook.AuthReject: "reject/", audiohook.AuthDisconnect: "disconnect/"}[mode]+tc.name, func(t *testing.T) {
				t.Parallel()
				w := &waits{}
				opts := &audiohook.ServerOptions{
					Keys: keys, AuthFailure: mode, Sleep: w.sleep, Now: clock,
					Nonces: audiohook.NewMemoryNonces(0), CloseTimeout: 3 * time.Second,
				}
				if tc.keys != nil {
					opts.Keys = tc.keys
				}
				url := testServer(t, opts, func(s *audiohook.Session) {
					_, _ = s.Open(ctxT(t))
					<-s.Done()
				})
				dial := func() error {
					d := tc.dial
					if d.Now == nil {
						d.Now = clock
					}
					d.PingInterval = -1
					c, err := Dial(ctxT(t), url, &d)
					if err == nil {
						err = c.Close(ctxT(t), "")
					}
					return err
				}
				if tc.replay {
					if err := dial(); err != nil {
						t.Fatalf("first use: %v", err)
					}
				}
				err := dial()
				got := w.get()
				if !tc.fail {
					if err != nil || len(got) != 0 {
						t.Fatalf("err %v, waits %v; want success without wait", err, got)
					}
					return
				}
				var ae *audiohook.AuthError
				var de *audiohook.DisconnectError
				switch {
				case mode == audiohook.AuthReject && !(errors.As(err, &ae) && ae.Status == http.StatusUnauthorized):
					t.Fatalf("err %v, want HTTP 401", err)
				case mode == audiohook.AuthDisconnect && !(errors.As(err, &de) && de.Reason == wire.ReasonUnauthorized && de.Info == "Authentication failed"):
					t.Fatalf("err %v, want disconnect unauthorized", err)
				}
				if len(got) != 1 || got[0] != audiohook.DefaultAuthFailureDelay {
					t.Fatalf("waits %v, want [%v]", got, audiohook.DefaultAuthFailureDelay)
				}
			})
		}
	}
}

// fullNonces is a NonceCache with no room left.
type fullNonces struct{}

func (fullNonces) Add(string, time.Time, time.Time) error { return audiohook.ErrNonceCacheFull }

// TestNonceCacheFullRefuses checks how a valid request is refused when the
// nonce cache holds only live nonces: HTTP 503 with Retry-After, or
// disconnect "error", at once (it is not an authentication failure).
func TestNonceCacheFullRefuses(t *testing.T) {
	for _, mode := range []audiohook.AuthFailureMode{audiohook.AuthReject, audiohook.AuthDisconnect} {
		w := &waits{}
		opts := signedServerOptions(t)
		opts.Nonces, opts.AuthFailure, opts.Sleep = fullNonces{}, mode, w.sleep
		res := make(chan error, 1)
		wsURL := testServer(t, opts, func(s *audiohook.Session) {
			_, err := s.Open(ctxT(t))
			res <- err
			<-s.Done()
		})
		if mode == audiohook.AuthReject {
			u, _ := url.Parse(wsURL)
			h := http.Header{}
			h.Set(wire.HeaderSessionID, NewUUID())
			h.Set(wire.HeaderOrganizationID, tOrg)
			h.Set(wire.HeaderCorrelationID, NewUUID())
			defaultHeader(t, h, u)
			c, resp, err := websocket.Dial(ctxT(t), wsURL, &websocket.DialOptions{HTTPHeader: h})
			if err == nil {
				c.CloseNow()
			}
			if resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
				t.Fatalf("reject: %v %v, want HTTP 503 with Retry-After", resp, err)
			}
		} else {
			_, err := Dial(ctxT(t), wsURL, signedDial(t, nil))
			var de *audiohook.DisconnectError
			if !errors.As(err, &de) || de.Reason != wire.ReasonError || errors.Is(err, audiohook.ErrUnauthorized) {
				t.Fatalf("disconnect: %v, want disconnect error", err)
			}
			if err := <-res; !errors.Is(err, audiohook.ErrNonceCacheFull) || errors.Is(err, audiohook.ErrUnauthorized) {
				t.Fatalf("server Open: %v", err)
			}
		}
		if got := w.get(); len(got) != 0 {
			t.Fatalf("mode %d: waited %v", mode, got)
		}
	}
}

// TestAuthDisconnectAnswersOpen checks the exact exchange of a failed
// authentication with AuthDisconnect: nothing is sent before the client's
// open, then disconnect "unauthorized" acknowledging it (clientseq 1), the
// client's close is answered with closed and the WebSocket is closed with
// a close handshake. Without an open, the disconnect comes after
// OpenTimeout (clientseq 0). A disconnect sent before open would race the
// client's open: a client answering it with close could see the WebSocket
// closed under its open.
func TestAuthDisconnectAnswersOpen(t *testing.T) {
	for _, sendOpen := range []bool{true, false} {
		t.Run(fmt.Sprint("open=", sendOpen), func(t *testing.T) {
			opts := signedServerOptions(t)
			opts.AuthFailure, opts.AuthFailureDelay = audiohook.AuthDisconnect, -1
			// With open, OpenTimeout is out of reach: only the open can
			// bring the disconnect before the test's context ends.
			opts.OpenTimeout = time.Hour
			if !sendOpen {
				opts.OpenTimeout = 100 * time.Millisecond
			}
			wsURL := testServer(t, opts, func(s *audiohook.Session) { _, _ = s.Open(ctxT(t)) })
			u, _ := url.Parse(wsURL)
			id := NewUUID()
			h := http.Header{}
			h.Set(wire.HeaderSessionID, id)
			h.Set(wire.HeaderOrganizationID, tOrg)
			h.Set(wire.HeaderCorrelationID, NewUUID())
			signHeader(t, h, u, time.Now().Add(-time.Hour), "") // expired
			ctx := ctxT(t)
			c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			type read struct {
				b   []byte
				err error
			}
			reads := make(chan read, 4)
			go func() {
				for {
					_, b, err := c.Read(ctx)
					reads <- read{b, err}
					if err != nil {
						return
					}
				}
			}()
			wantSeq := 0
			if sendOpen {
				select {
				case r := <-reads:
					t.Fatalf("before open: %s %v", r.b, r.err)
				case <-time.After(200 * time.Millisecond):
				}
				if err := c.Write(ctx, websocket.MessageText, []byte(openStep(id))); err != nil {
					t.Fatal(err)
				}
				wantSeq = 1
			}
			r := <-reads
			want := fmt.Sprintf(`{"version":"2","type":"disconnect","seq":1,"clientseq":%d,"id":%q,"parameters":{"reason":"unauthorized","info":"Authentication failed"}}`, wantSeq, id)
			if r.err != nil || string(r.b) != want {
				t.Fatalf("got %s %v, want %s", r.b, r.err, want)
			}
			closeMsg := tmsg(id, "close", wantSeq+1, 1, "PT0S", `{"reason":"disconnect"}`)
			if err := c.Write(ctx, websocket.MessageText, []byte(closeMsg)); err != nil {
				t.Fatal(err)
			}
			r = <-reads
			want = fmt.Sprintf(`{"version":"2","type":"closed","seq":2,"clientseq":%d,"id":%q,"parameters":{}}`, wantSeq+1, id)
			if r.err != nil || string(r.b) != want {
				t.Fatalf("got %s %v, want %s", r.b, r.err, want)
			}
			if r = <-reads; websocket.CloseStatus(r.err) != websocket.StatusNormalClosure {
				t.Fatalf("after closed: %s %v, want close 1000", r.b, r.err)
			}
		})
	}
}
