package audiohooktest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
)

const (
	tOrg  = "d7934305-0972-4844-938e-9060eef73d05"
	tConv = "96b824b3-3c9f-4cb3-9e0e-6a4a7e6c3a11"
	tPart = "bca4ef71-6f8a-4d1a-9a4e-2d0e5b0e8b55"
)

func tmsg(id, typ string, seq, serverseq int, pos, params string) string {
	return fmt.Sprintf(`{"version":"2","type":%q,"seq":%d,"serverseq":%d,"position":%q,"id":%q,"parameters":%s}`, typ, seq, serverseq, pos, id, params)
}

func openParams(media string, mod func(m map[string]any)) string {
	m := map[string]any{
		"organizationId": tOrg, "conversationId": tConv,
		"participant": map[string]any{"id": tPart, "ani": "+1", "aniName": "n", "dnis": "+2"},
		"media":       json.RawMessage(media), "language": "en-US",
	}
	if mod != nil {
		mod(m)
	}
	b, _ := json.Marshal(m)
	return string(b)
}

const stereoPCMU = `[{"type":"audio","format":"PCMU","channels":["external","internal"],"rate":8000}]`
const stereoL16 = `[{"type":"audio","format":"L16","channels":["external","internal"],"rate":8000}]`

type step struct {
	text string // with {id} replaced by the session id
	bin  []byte
	isB  bool
}

func txt(s string) step { return step{text: s} }
func bin(b []byte) step { return step{bin: b, isB: true} }
func openStep(id string) string {
	return tmsg(id, "open", 1, 0, "PT0S", openParams(stereoPCMU, nil))
}

type expect struct {
	status int    // HTTP status of a refused upgrade
	typ    string // first server message of this type is checked
	reason string // disconnect reason
	info   string // substring of disconnect info
	check  func(t *testing.T, m map[string]any)
}

type rawCase struct {
	name   string
	opts   func(o *audiohook.ServerOptions)
	header func(t *testing.T, h http.Header, u *url.URL)
	steps  func(id string) []step
	want   expect
	replay bool
}

func defaultHeader(t *testing.T, h http.Header, u *url.URL) {
	signHeader(t, h, u, time.Now(), "")
}

func signHeader(t *testing.T, h http.Header, u *url.URL, now time.Time, nonce string) {
	h.Set(wire.HeaderAPIKey, testKey)
	req := &http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: h}
	if err := audiohook.SignRequest(req, mustB64(t, testSecret), now, nonce); err != nil {
		t.Fatal(err)
	}
}

func seqs(id string, msgs ...string) []step {
	out := []step{txt(openStep(id))}
	for _, m := range msgs {
		out = append(out, txt(m))
	}
	return out
}

// paddedPing returns a ping (seq 2) of exactly size bytes.
func paddedPing(id string, size int) string {
	m := tmsg(id, "ping", 2, 1, "PT0S", `{"pad":""}`)
	return tmsg(id, "ping", 2, 1, "PT0S", `{"pad":"`+strings.Repeat("x", size-len(m))+`"}`)
}

func disc(reason, info string) expect { return expect{typ: "disconnect", reason: reason, info: info} }

func TestMalformedInputs(t *testing.T) {
	errDisc := func(info string) expect { return disc("error", info) }
	cases := []rawCase{
		{name: "invalid JSON", steps: func(id string) []step { return []step{txt(`{"version":"2",`)} }, want: errDisc("invalid JSON")},
		{name: "wrong version", steps: func(id string) []step {
			return []step{txt(strings.Replace(openStep(id), `"version":"2"`, `"version":"1"`, 1))}
		}, want: errDisc("unsupported version")},
		{name: "missing parameters", steps: func(id string) []step {
			return []step{txt(fmt.Sprintf(`{"version":"2","type":"open","seq":1,"serverseq":0,"position":"PT0S","id":%q}`, id))}
		}, want: errDisc("missing parameters")},
		{name: "missing seq", steps: func(id string) []step {
			return []step{txt(strings.Replace(openStep(id), `"seq":1,`, ``, 1))}
		}, want: errDisc("missing seq")},
		{name: "fractional seq", steps: func(id string) []step {
			return []step{txt(strings.Replace(openStep(id), `"seq":1,`, `"seq":1.5,`, 1))}
		}, want: errDisc("seq")},
		{name: "first seq not 1", steps: func(id string) []step {
			return []step{txt(strings.Replace(openStep(id), `"seq":1,`, `"seq":2,`, 1))}
		}, want: errDisc("Invalid seq value")},
		{name: "repeated seq", steps: func(id string) []step {
			return seqs(id, tmsg(id, "ping", 1, 1, "PT0S", `{}`))
		}, want: errDisc("Invalid seq value")},
		{name: "skipped seq", steps: func(id string) []step {
			return seqs(id, tmsg(id, "ping", 3, 1, "PT0S", `{}`))
		}, want: errDisc("Invalid seq value")},
		{name: "serverseq ahead", steps: func(id string) []step {
			return seqs(id, tmsg(id, "ping", 2, 7, "PT0S", `{}`))
		}, want: errDisc("Invalid serverseq")},
		{name: "wrong session id", steps: func(id string) []step {
			return []step{txt(openStep("30b0e395-84d3-4570-ac13-9a62d8f514c0"))}
		}, want: errDisc("Session identifier mismatch")},
		{name: "id not a UUID", steps: func(id string) []step { return []step{txt(openStep("not-a-uuid"))} }, want: errDisc("not a UUID")},
		{name: "bad position", steps: func(id string) []step {
			return seqs(id, tmsg(id, "ping", 2, 1, "1.5s", `{}`))
		}, want: errDisc("position")},
		{name: "position with exponent", steps: func(id string) []step {
			return seqs(id, tmsg(id, "ping", 2, 1, "PT1e3S", `{}`))
		}, want: errDisc("position")},
		{name: "negative position", steps: func(id string) []step {
			return seqs(id, tmsg(id, "ping", 2, 1, "PT-1S", `{}`))
		}, want: errDisc("position")},
		{name: "unknown type", steps: func(id string) []step {
			return seqs(id, tmsg(id, "bogus", 2, 1, "PT0S", `{}`))
		}, want: errDisc("Unknown message type")},
		{name: "open without organizationId", steps: func(id string) []step {
			return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(stereoPCMU, func(m map[string]any) { delete(m, "organizationId") })))}
		}, want: errDisc("missing organizationId")},
		{name: "open without participant", steps: func(id string) []step {
			return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(stereoPCMU, func(m map[string]any) { delete(m, "participant") })))}
		}, want: errDisc("missing participant")},
		{name: "participant without ani", steps: func(id string) []step {
			return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(stereoPCMU, func(m map[string]any) {
				m["participant"] = map[string]any{"id": tPart, "aniName": "", "dnis": ""}
			})))}
		}, want: errDisc("participant needs")},
		{name: "open without media", steps: func(id string) []step {
			return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(stereoPCMU, func(m map[string]any) { delete(m, "media") })))}
		}, want: errDisc("missing media")},
		{name: "media rate 16000", steps: func(id string) []step {
			return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(`[{"type":"audio","format":"PCMU","channels":["external"],"rate":16000}]`, nil)))}
		}, want: errDisc("rate 16000")},
		{name: "media format PCMA", steps: func(id string) []step {
			return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(`[{"type":"audio","format":"PCMA","channels":["external"],"rate":8000}]`, nil)))}
		}, want: errDisc("format")},
		{name: "media three channels", steps: func(id string) []step {
			return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(`[{"type":"audio","format":"PCMU","channels":["external","internal","external"],"rate":8000}]`, nil)))}
		}, want: errDisc("3 channels")},
		{name: "bad language", steps: func(id string) []step {
			return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(stereoPCMU, func(m map[string]any) { m["language"] = "english" })))}
		}, want: errDisc("language")},
		{name: "wrong organization", steps: func(id string) []step {
			return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(stereoPCMU, func(m map[string]any) {
				m["organizationId"] = "e160e428-53e2-487c-977d-96989bf5c99d"
			})))}
		}, want: disc("unauthorized", "Organization identifier mismatch")},
		{name: "oversized text", steps: func(id string) []step {
			return seqs(id, tmsg(id, "ping", 2, 1, "PT0S", `{"pad":"`+strings.Repeat("x", 70000)+`"}`))
		}, want: errDisc("Message too large")},
		{name: "text of 65535 bytes accepted", steps: func(id string) []step {
			return seqs(id, paddedPing(id, wire.MaxTextMessage))
		}, want: expect{typ: "pong"}},
		{name: "text of 65536 bytes refused", steps: func(id string) []step {
			return seqs(id, paddedPing(id, wire.MaxTextMessage+1))
		}, want: errDisc("Message too large")},
		{name: "binary before opened", steps: func(id string) []step { return []step{bin(make([]byte, 160))} },
			want: errDisc("before open")},
		{name: "media not offered then audio", opts: func(o *audiohook.ServerOptions) { o.Media = []wire.MediaParameter{wire.MediaPCMUExternal} },
			steps: func(id string) []step {
				return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(stereoL16, nil))), bin(make([]byte, 320))}
			}, want: errDisc("no media was selected")},
		{name: "audio not a whole sample frame", steps: func(id string) []step {
			return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(stereoL16, nil))), bin(make([]byte, 6))}
		}, want: errDisc("not a multiple of 4")},
		{name: "audio while paused", steps: func(id string) []step {
			return append(seqs(id, tmsg(id, "paused", 2, 1, "PT0S", `{}`)), bin(make([]byte, 320)))
		}, want: errDisc("while paused")},
		{name: "paused before open", steps: func(id string) []step {
			return []step{txt(tmsg(id, "paused", 1, 0, "PT0S", `{}`))}
		}, want: errDisc("Unexpected paused")},
		{name: "resumed before open", steps: func(id string) []step {
			return []step{txt(tmsg(id, "resumed", 1, 0, "PT0S", `{"start":"PT0S","discarded":"PT0S"}`))}
		}, want: errDisc("Unexpected resumed")},
		{name: "resumed missing parameters", steps: func(id string) []step {
			return seqs(id, tmsg(id, "paused", 2, 1, "PT0S", `{}`), tmsg(id, "resumed", 3, 1, "PT1S", `{}`))
		}, want: errDisc("missing start or discarded")},
		{name: "discarded with bad duration", steps: func(id string) []step {
			return seqs(id, tmsg(id, "discarded", 2, 1, "PT0S", `{"start":"PT0S","discarded":"2s"}`))
		}, want: errDisc("discarded")},
		{name: "update before open", steps: func(id string) []step {
			return []step{txt(tmsg(id, "update", 1, 0, "PT0S", `{"language":"es-US"}`))}
		}, want: errDisc("Unexpected update")},
		{name: "update with bad language", steps: func(id string) []step {
			return seqs(id, tmsg(id, "update", 2, 1, "PT0S", `{"language":"spanish"}`))
		}, want: errDisc("invalid language")},
		{name: "update answered with updated", steps: func(id string) []step {
			return seqs(id, tmsg(id, "update", 2, 1, "PT0S", `{"language":"es-US"}`))
		}, want: expect{typ: "updated"}},
		{name: "ping answered with pong", steps: func(id string) []step {
			return seqs(id, tmsg(id, "ping", 2, 1, "PT0.5S", `{"rtt":"PT0.002072374S"}`))
		}, want: expect{typ: "pong", check: func(t *testing.T, m map[string]any) {
			if m["clientseq"] != float64(2) || m["seq"] != float64(2) {
				t.Fatalf("pong %v", m)
			}
		}}},
		{name: "pong before later answers", steps: func(id string) []step {
			return seqs(id, tmsg(id, "ping", 2, 1, "PT0S", `{}`), tmsg(id, "update", 3, 1, "PT0S", `{"language":"es-US"}`))
		}, want: expect{typ: "pong", check: func(t *testing.T, m map[string]any) {
			// opened is 1; the pong is answered at once, before updated.
			if m["clientseq"] != float64(2) || m["seq"] != float64(2) {
				t.Fatalf("pong %v, want seq 2 clientseq 2", m)
			}
		}}},
		{name: "close answered with closed", steps: func(id string) []step {
			return seqs(id, tmsg(id, "close", 2, 1, "PT0S", `{"reason":"end"}`))
		}, want: expect{typ: "closed"}},
		{name: "close before open", steps: func(id string) []step {
			return []step{txt(tmsg(id, "close", 1, 0, "PT0S", `{"reason":"error"}`))}
		}, want: expect{typ: "closed"}},
		{name: "client error tolerated", steps: func(id string) []step {
			return seqs(id, tmsg(id, "error", 2, 1, "PT0S", `{"code":400,"message":"x"}`), tmsg(id, "ping", 3, 1, "PT0S", `{}`))
		}, want: expect{typ: "pong"}},
		{name: "second open ignored", steps: func(id string) []step {
			return seqs(id, tmsg(id, "open", 2, 1, "PT0S", openParams(stereoPCMU, nil)), tmsg(id, "ping", 3, 1, "PT0S", `{}`))
		}, want: expect{typ: "pong", check: func(t *testing.T, m map[string]any) {
			if m["clientseq"] != float64(3) {
				t.Fatalf("pong %v", m)
			}
		}}},
		{name: "zero-length binary accepted", steps: func(id string) []step {
			return append(seqs(id), bin([]byte{}), txt(tmsg(id, "ping", 2, 1, "PT0S", `{}`)))
		}, want: expect{typ: "pong"}},
		{name: "supportedLanguages returned", opts: func(o *audiohook.ServerOptions) { o.Languages = []string{"en-US", "es-US"} },
			steps: func(id string) []step {
				return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(stereoPCMU, func(m map[string]any) { m["supportedLanguages"] = true })))}
			}, want: expect{typ: "opened", check: func(t *testing.T, m map[string]any) {
				p := m["parameters"].(map[string]any)
				if fmt.Sprint(p["supportedLanguages"]) != "[en-US es-US]" || len(p["media"].([]any)) != 1 {
					t.Fatalf("opened %v", m)
				}
			}}},
		{name: "probe answered with opened", steps: func(id string) []step {
			return []step{txt(tmsg(id, "open", 1, 0, "PT0S", openParams(stereoPCMU, func(m map[string]any) {
				m["conversationId"] = wire.NullUUID
				m["participant"] = map[string]any{"id": wire.NullUUID, "ani": "", "aniName": "", "dnis": ""}
			}))), bin([]byte{}), txt(tmsg(id, "close", 2, 1, "PT0S", `{"reason":"end"}`))}
		}, want: expect{typ: "closed"}},
		{name: "open timeout", opts: func(o *audiohook.ServerOptions) { o.OpenTimeout = 50 * time.Millisecond },
			steps: func(id string) []step { return nil }, want: errDisc("Open transaction timeout")},
		{name: "missing session header", header: func(t *testing.T, h http.Header, u *url.URL) {
			defaultHeader(t, h, u)
			h.Del(wire.HeaderSessionID)
		}, want: expect{status: 400}},
		{name: "correlation id not a UUID", header: func(t *testing.T, h http.Header, u *url.URL) {
			h.Set(wire.HeaderCorrelationID, "abc")
			defaultHeader(t, h, u)
		}, want: expect{status: 400}},
		{name: "missing api key", header: func(t *testing.T, h http.Header, u *url.URL) {}, want: expect{status: 401}},
		{name: "unknown api key", header: func(t *testing.T, h http.Header, u *url.URL) {
			defaultHeader(t, h, u)
			h.Set(wire.HeaderAPIKey, "other")
		}, want: expect{status: 401}},
		{name: "unsigned request for key with secret", header: func(t *testing.T, h http.Header, u *url.URL) {
			h.Set(wire.HeaderAPIKey, testKey)
		}, want: expect{status: 401}},
		{name: "unsigned request for key without secret", opts: func(o *audiohook.ServerOptions) { o.Keys = audiohook.StaticKeys{"open-key": nil} },
			header: func(t *testing.T, h http.Header, u *url.URL) { h.Set(wire.HeaderAPIKey, "open-key") },
			steps:  func(id string) []step { return seqs(id) }, want: expect{typ: "opened"}},
		{name: "expired signature", header: func(t *testing.T, h http.Header, u *url.URL) {
			signHeader(t, h, u, time.Now().Add(-time.Minute), "")
		}, want: expect{status: 401}},
		{name: "signature from the future", header: func(t *testing.T, h http.Header, u *url.URL) {
			signHeader(t, h, u, time.Now().Add(time.Minute), "")
		}, want: expect{status: 401}},
		{name: "tampered organization header", header: func(t *testing.T, h http.Header, u *url.URL) {
			defaultHeader(t, h, u)
			h.Set(wire.HeaderOrganizationID, "e160e428-53e2-487c-977d-96989bf5c99d")
		}, want: expect{status: 401}},
		{name: "replayed nonce", replay: true, opts: func(o *audiohook.ServerOptions) { o.Nonces = audiohook.NewMemoryNonces(0) },
			header: func(t *testing.T, h http.Header, u *url.URL) {
				signHeader(t, h, u, time.Now(), "cmVwbGF5ZWQtbm9uY2UtdmFsdWU=")
			}, want: expect{status: 401}},
		{name: "bad signature, disconnect style", opts: func(o *audiohook.ServerOptions) {
			o.AuthFailure = audiohook.AuthDisconnect
			o.AuthFailureDelay = 20 * time.Millisecond
		}, header: func(t *testing.T, h http.Header, u *url.URL) {
			signHeader(t, h, u, time.Now().Add(-time.Hour), "")
		}, steps: func(id string) []step { return seqs(id) }, want: disc("unauthorized", "Authentication failed")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runRawCase(t, tc)
		})
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
}

func runRawCase(t *testing.T, tc rawCase) {
	opts := signedServerOptions(t)
	opts.CloseTimeout = 2 * time.Second
	if tc.opts != nil {
		tc.opts(opts)
	}
	wsURL := testServer(t, opts, func(s *audiohook.Session) {
		ctx := ctxT(t)
		for {
			if _, err := s.ReadFrame(ctx); err != nil {
				break
			}
		}
		// Leave the protocol to the session until the client goes away.
		select {
		case <-s.Done():
		case <-ctx.Done():
		}
	})
	u, _ := url.Parse(wsURL)
	id := NewUUID()
	h := http.Header{}
	h.Set(wire.HeaderSessionID, id)
	h.Set(wire.HeaderOrganizationID, tOrg)
	h.Set(wire.HeaderCorrelationID, NewUUID())
	if tc.header != nil {
		tc.header(t, h, u)
	} else {
		defaultHeader(t, h, u)
	}
	ctx := ctxT(t)
	if tc.replay {
		c, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h})
		if err != nil {
			t.Fatalf("first use: %v", err)
		}
		c.CloseNow()
	}
	c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h})
	if tc.want.status != 0 {
		if err == nil {
			c.CloseNow()
			t.Fatalf("upgrade accepted, want HTTP %d", tc.want.status)
		}
		if resp == nil || resp.StatusCode != tc.want.status {
			t.Fatalf("dial: %v, want HTTP %d", err, tc.want.status)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	for _, st := range tc.steps(id) {
		if st.isB {
			err = c.Write(ctx, websocket.MessageBinary, st.bin)
		} else {
			err = c.Write(ctx, websocket.MessageText, []byte(st.text))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var seen []string
	for {
		_, b, err := c.Read(rctx)
		if err != nil {
			t.Fatalf("no %s message (saw %v): %v", tc.want.typ, seen, err)
		}
		m, err := wire.ParseServerMessage(b)
		if err != nil {
			t.Fatalf("server sent an invalid message %s: %v", b, err)
		}
		if m.ID != id || m.Seq != int64(len(seen)+1) {
			t.Fatalf("server message %s: wrong id or seq", b)
		}
		seen = append(seen, m.Type)
		if m.Type != tc.want.typ {
			continue
		}
		var raw map[string]any
		_ = json.Unmarshal(b, &raw)
		if tc.want.typ == "disconnect" {
			var p wire.DisconnectParameters
			_ = json.Unmarshal(m.Parameters, &p)
			if p.Reason != tc.want.reason || !strings.Contains(p.Info, tc.want.info) {
				t.Fatalf("disconnect %+v, want reason %q info containing %q", p, tc.want.reason, tc.want.info)
			}
			// The close transaction still completes after a disconnect.
			if err := c.Write(ctx, websocket.MessageText, []byte(tmsg(id, "close", 99, int(m.Seq), "PT0S", `{"reason":"disconnect"}`))); err != nil {
				t.Fatal(err)
			}
			_, b, err := c.Read(rctx)
			if err != nil || !strings.Contains(string(b), `"type":"closed"`) {
				t.Fatalf("after disconnect: %s %v, want closed", b, err)
			}
		}
		if tc.want.check != nil {
			tc.want.check(t, raw)
		}
		return
	}
}
