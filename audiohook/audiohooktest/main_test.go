package audiohooktest

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/audiohook"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testKey    = "test-api-key"
	testSecret = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="
)

// testServer runs an AudioHook endpoint on loopback; every accepted session
// is handed to handle, which runs in the handler goroutine.
func testServer(t testing.TB, opts *audiohook.ServerOptions, handle func(*audiohook.Session)) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, err := audiohook.Accept(w, r, opts)
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

func signedServerOptions(t testing.TB) *audiohook.ServerOptions {
	return &audiohook.ServerOptions{Keys: audiohook.StaticKeys{testKey: mustB64(t, testSecret)}, CloseTimeout: 3 * time.Second}
}

func signedDial(t testing.TB, o *DialOptions) *DialOptions {
	if o == nil {
		o = &DialOptions{}
	}
	o.APIKey = testKey
	o.Secret = mustB64(t, testSecret)
	if o.PingInterval == 0 {
		o.PingInterval = -1
	}
	return o
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

func mustB64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const monoPCMU = `[{"type":"audio","format":"PCMU","channels":["external"],"rate":8000}]`

// appendServerMessage appends a server message envelope, for fake servers.
func appendServerMessage(dst []byte, typ, id string, seq, clientSeq int64, params []byte) []byte {
	if len(params) == 0 {
		params = []byte("{}")
	}
	return fmt.Appendf(dst, `{"version":"2","type":%q,"seq":%d,"clientseq":%d,"id":%q,"parameters":%s}`, typ, seq, clientSeq, id, params)
}
