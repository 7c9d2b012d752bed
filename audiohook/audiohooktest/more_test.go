package audiohooktest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/codec"
)

func TestInteropDiscardToAndWAVSource(t *testing.T) {
	// A 1.5 s μ-law WAV file as the client's source; the server's
	// discardTo of 1 s makes the client skip the first second of it.
	pcm := make([]int16, 12000)
	for i := range pcm {
		pcm[i] = int16(i % 2000)
	}
	ulaw := make([]byte, len(pcm))
	codec.EncodeULaw(ulaw, pcm)
	wav, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, ulaw)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "call.wav")
	if err := os.WriteFile(path, wav, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := signedServerOptions(t)
	opts.Languages = []string{"en-US", "de-DE"}
	custom := make(chan string, 1)
	opts.OnOpen = func(info *audiohook.OpenInfo) error {
		custom <- string(info.Params.CustomConfig) + " " + info.Params.Language
		info.DiscardTo = time.Second
		info.Media = &info.Params.Media[1] // PCMU external only
		return nil
	}
	res := make(chan serverResult, 1)
	url := testServer(t, opts, func(s *audiohook.Session) { readAll(t, s, res) })
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, &DialOptions{
		CustomConfig: json.RawMessage(`{"foo":"bar"}`), Language: "en-US", SupportedLanguages: true}))
	if err != nil {
		t.Fatal(err)
	}
	if got := <-custom; got != `{"foo":"bar"} en-US` {
		t.Fatalf("OnOpen saw %q", got)
	}
	if l := c.Opened().SupportedLanguages; len(l) != 2 || l[1] != "de-DE" {
		t.Fatalf("supportedLanguages %v", l)
	}
	src, err := WAVSource(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Stream(ctx, src, &StreamOptions{Fast: true, Chunk: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if len(r.frames) != 25 || r.frames[0].Timestamp != time.Second || r.stats.GapTime != time.Second {
		t.Fatalf("%d frames, first at %v, gap %v", len(r.frames), r.frames[0].Timestamp, r.stats.GapTime)
	}
	f := r.frames[0]
	if f.Channels != 1 || f.Parties[0] != voicegate.Customer || f.Payload[7] != ulaw[8000+7] {
		t.Fatalf("frame %+v", f)
	}
}

func TestInteropReconnectAndAgentAssist(t *testing.T) {
	res := make(chan string, 1)
	url := testServer(t, signedServerOptions(t), func(s *audiohook.Session) {
		ctx := ctxT(t)
		if _, err := s.Open(ctx); err != nil {
			res <- err.Error()
			return
		}
		aa, err := wire.AgentAssistEntity(wire.AgentAssist{ID: NewUUID(), Utterances: []wire.Utterance{{
			ID: NewUUID(), Position: wire.Duration(time.Second), Text: "hi", Language: "en-US", Confidence: 0.8, Channel: wire.ChannelExternal, IsFinal: true}}})
		if err != nil {
			res <- err.Error()
			return
		}
		_ = s.SendEvent(ctx, aa)
		_ = s.Reconnect(ctx, "draining")
		for {
			if _, err := s.ReadFrame(ctx); err != nil {
				res <- s.CloseReason()
				return
			}
		}
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	// Genesys logs reconnect and streams on: the whole source is sent.
	if err := c.Stream(ctx, ToneSource(300*time.Millisecond), &StreamOptions{Fast: true}); err != nil {
		t.Fatalf("stream: %v", err)
	}
	m, err := c.Next(ctx)
	if err != nil || m.Type != wire.TypeEvent {
		t.Fatalf("next: %v %v", m, err)
	}
	var p struct {
		Entities []struct {
			Type string
			Data wire.AgentAssist
		}
	}
	if err := json.Unmarshal(m.Parameters, &p); err != nil || p.Entities[0].Type != wire.EntityAgentAssist || p.Entities[0].Data.Utterances[0].Text != "hi" {
		t.Fatalf("event %s: %v", m.Parameters, err)
	}
	if m, err := c.Next(ctx); err != nil || m.Type != wire.TypeReconnect {
		t.Fatalf("next: %v %v", m, err)
	}
	if err := c.Close(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if got := <-res; got != wire.CloseEnd {
		t.Fatalf("server close reason %q; the client closes normally, not for the reconnect", got)
	}
}

func TestServerCloseTimeoutDropsSilentClient(t *testing.T) {
	opts := signedServerOptions(t)
	opts.CloseTimeout = 100 * time.Millisecond
	res := make(chan error, 1)
	url := testServer(t, opts, func(s *audiohook.Session) {
		ctx := ctxT(t)
		var err error
		for err == nil {
			_, err = s.ReadFrame(ctx)
		}
		<-s.Done()
		res <- err
	})
	u := mustParseURL(t, url)
	id := NewUUID()
	h := http.Header{}
	h.Set(wire.HeaderSessionID, id)
	h.Set(wire.HeaderOrganizationID, tOrg)
	h.Set(wire.HeaderCorrelationID, NewUUID())
	defaultHeader(t, h, u)
	ctx := ctxT(t)
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	_ = c.Write(ctx, websocket.MessageText, []byte(openStep(id)))
	_ = c.Write(ctx, websocket.MessageText, []byte(tmsg(id, "bogus", 2, 1, "PT0S", "{}")))
	// Read opened and disconnect, never answer with close.
	for {
		if _, _, err := c.Read(ctx); err != nil {
			break // dropped by the server after CloseTimeout
		}
	}
	var pe *audiohook.ProtocolError
	if err := <-res; !errors.As(err, &pe) || pe.Reason != wire.ReasonError {
		t.Fatalf("ReadFrame end: %v", err)
	}
}

func TestServerAuthDisconnectOpenError(t *testing.T) {
	opts := signedServerOptions(t)
	opts.AuthFailure = audiohook.AuthDisconnect
	opts.AuthFailureDelay = -1
	res := make(chan error, 1)
	url := testServer(t, opts, func(s *audiohook.Session) {
		_, err := s.Open(ctxT(t))
		res <- err
		<-s.Done()
	})
	_, err := Dial(ctxT(t), url, &DialOptions{APIKey: testKey, Secret: []byte("bad"), PingInterval: -1})
	var de *audiohook.DisconnectError
	if !errors.As(err, &de) || de.Reason != wire.ReasonUnauthorized || !errors.Is(err, audiohook.ErrUnauthorized) {
		t.Fatalf("client: %v", err)
	}
	var ae *audiohook.AuthError
	if err := <-res; !errors.As(err, &ae) || ae.Status != 0 {
		t.Fatalf("server Open: %v", err)
	}
}

func TestSessionReadFrameAfterEnd(t *testing.T) {
	res := make(chan error, 1)
	url := testServer(t, signedServerOptions(t), func(s *audiohook.Session) {
		ctx := ctxT(t)
		for {
			if _, err := s.ReadFrame(ctx); err != nil {
				_, err2 := s.ReadFrame(ctx) // stays at the end
				if !errors.Is(err2, io.EOF) {
					res <- err2
					return
				}
				res <- err
				return
			}
		}
	})
	ctx := ctxT(t)
	c, err := Dial(ctx, url, signedDial(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close(context.Background(), "")
	if err := <-res; !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
}
