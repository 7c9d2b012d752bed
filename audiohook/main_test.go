package audiohook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testKey    = "test-api-key"
	testSecret = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
)

// testServer runs an AudioHook endpoint on loopback; every accepted session
// is handed to handle, which runs in the handler goroutine.
func testServer(t testing.TB, opts *ServerOptions, handle func(*Session)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := Accept(w, r, opts)
		if err != nil {
			return
		}
		if handle != nil {
			handle(s)
		}
		_ = s.Close()
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustParseURL(t testing.TB, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
