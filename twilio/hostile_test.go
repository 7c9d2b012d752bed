package twilio_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/twilio"
)

type outcome int

const (
	ignored   outcome = iota // counted in Stats.Ignored, stream goes on
	malformed                // counted in Stats.Malformed, stream goes on (no input may: it closes with 1007)
	late                     // counted in Stats.FramesLate, stream goes on
	accepted                 // an extra frame
	event                    // an event for ReadEvent
	closes                   // the stream ends with an error
)

func (o outcome) String() string {
	return [...]string{"ignored", "malformed", "late", "accepted", "event", "closes"}[o]
}

type rawMsg struct {
	typ  websocket.MessageType
	data string
}

func text(s string) rawMsg { return rawMsg{websocket.MessageText, s} }

func media(track string, ts any, payload string) string {
	return fmt.Sprintf(`{"event":"media","sequenceNumber":"3","media":{"track":%q,"chunk":"2","timestamp":%v,"payload":%q},"streamSid":"MZ1"}`, track, ts, payload)
}

var frame160 = base64.StdEncoding.EncodeToString(make([]byte, 160))

// TestHostileInput sends each input after a valid start and first frame,
// then a valid frame and stop, and checks the defined outcome. None may
// panic or stop the valid frames around it (except the closes ones, which
// must close the WebSocket with the status in code).
func TestHostileInput(t *testing.T) {
	t.Parallel()
	big := base64.StdEncoding.EncodeToString(make([]byte, 30000))
	for _, tc := range []struct {
		name string
		msgs []rawMsg
		want outcome
		code websocket.StatusCode // close status sent, for closes
	}{
		{"not json", []rawMsg{text("hello")}, closes, websocket.StatusInvalidFramePayloadData},
		{"empty message", []rawMsg{text("")}, closes, websocket.StatusInvalidFramePayloadData},
		{"empty object", []rawMsg{text("{}")}, ignored, 0},
		{"json null", []rawMsg{text("null")}, ignored, 0},
		{"json array", []rawMsg{text("[1,2,3]")}, closes, websocket.StatusInvalidFramePayloadData},
		{"json string", []rawMsg{text(`"media"`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"truncated", []rawMsg{text(`{"event":"media","media":{"track"`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"trailing garbage", []rawMsg{text(media("inbound", `"200"`, frame160) + "xyz")}, closes, websocket.StatusInvalidFramePayloadData},
		{"unknown event", []rawMsg{text(`{"event":"transcript","text":"hi"}`)}, ignored, 0},
		{"event as number", []rawMsg{text(`{"event":42}`)}, ignored, 0},
		{"event as object", []rawMsg{text(`{"event":{"a":1}}`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"binary message", []rawMsg{{websocket.MessageBinary, "\x00\x01\x02"}}, ignored, 0},
		{"media without media", []rawMsg{text(`{"event":"media","streamSid":"MZ1"}`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"media null", []rawMsg{text(`{"event":"media","media":null}`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"media as array", []rawMsg{text(`{"event":"media","media":[1]}`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"payload not base64", []rawMsg{text(media("inbound", `"200"`, "!!!not base64!!!"))}, closes, websocket.StatusInvalidFramePayloadData},
		{"payload empty", []rawMsg{text(media("inbound", `"200"`, ""))}, ignored, 0},
		{"timestamp missing", []rawMsg{text(`{"event":"media","media":{"track":"inbound","payload":"` + frame160 + `"}}`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"timestamp negative", []rawMsg{text(media("inbound", `"-5"`, frame160))}, closes, websocket.StatusInvalidFramePayloadData},
		{"timestamp huge", []rawMsg{text(media("inbound", `"99999999999999999999999"`, frame160))}, closes, websocket.StatusInvalidFramePayloadData},
		{"timestamp fraction", []rawMsg{text(media("inbound", `1.5`, frame160))}, closes, websocket.StatusInvalidFramePayloadData},
		{"timestamp object", []rawMsg{text(media("inbound", `{"ms":200}`, frame160))}, closes, websocket.StatusInvalidFramePayloadData},
		{"timestamp beyond 2^40", []rawMsg{text(media("inbound", `"1099511627776"`, frame160))}, closes, websocket.StatusInvalidFramePayloadData},
		{"unknown track", []rawMsg{text(media("sideways", `"200"`, frame160))}, ignored, 0},
		// RFC 6455 section 8.1: a text message that is not UTF-8 fails the
		// connection (status 1007). The parser's own handling of invalid
		// UTF-8 is covered by TestHandleInvalidUTF8.
		{"invalid utf-8 track", []rawMsg{text(`{"event":"media","media":{"track":"in` + "\xff" + `bound","timestamp":"200","payload":"` + frame160 + `"}}`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"control char in string", []rawMsg{text("{\"event\":\"media\",\"media\":{\"track\":\"in\x01\",\"timestamp\":\"200\",\"payload\":\"" + frame160 + "\"}}")}, closes, websocket.StatusInvalidFramePayloadData},
		{"duplicate frame", []rawMsg{text(media("inbound", `"155"`, frame160))}, late, 0},
		{"timestamp before first", []rawMsg{text(media("inbound", `"100"`, frame160))}, late, 0},
		{"deep nesting", []rawMsg{text(`{"event":"media","x":` + strings.Repeat("[", 30000) + `}`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"second start", []rawMsg{text(`{"event":"start","start":{"streamSid":"MZ2","accountSid":"AC2","callSid":"CA2"}}`)}, ignored, 0},
		{"start without start", []rawMsg{text(`{"event":"start","streamSid":"MZ9"}`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"mediaFormat as string", []rawMsg{text(`{"event":"start","start":{"mediaFormat":"mulaw"}}`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"customParameters nested", []rawMsg{text(`{"event":"start","start":{"customParameters":{"a":{"b":1}}}}`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"dtmf without dtmf", []rawMsg{text(`{"event":"dtmf","streamSid":"MZ1"}`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"mark without mark", []rawMsg{text(`{"event":"mark","streamSid":"MZ1"}`)}, closes, websocket.StatusInvalidFramePayloadData},
		{"mark never sent", []rawMsg{text(`{"event":"mark","mark":{"name":"<script>"}}`)}, event, 0},
		{"large frame", []rawMsg{text(media("inbound", `"200"`, big))}, accepted, 0},
		{"message over 64 KiB", []rawMsg{text(media("inbound", `"200"`, strings.Repeat("A", 70000)))}, closes, websocket.StatusMessageTooBig},
		{"binary over 64 KiB", []rawMsg{{websocket.MessageBinary, strings.Repeat("\x00", 70000)}}, closes, websocket.StatusMessageTooBig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			h := http.Header{twilio.SignatureHeader: {twilio.ComputeSignature(testToken, ms.URL, nil)}}
			c, _, err := websocket.Dial(ctx, ms.URL, &websocket.DialOptions{HTTPHeader: h})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			msgs := append([]rawMsg{
				text(`{"event":"connected","protocol":"Call","version":"1.0.0"}`),
				text(`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{}},"streamSid":"MZ1"}`),
				text(media("inbound", `"155"`, frame160)),
			}, tc.msgs...)
			msgs = append(msgs, text(media("inbound", `"10000"`, frame160)), text(`{"event":"stop","sequenceNumber":"9","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}`))
			s := ms.next(t)
			for _, m := range msgs {
				if err := c.Write(ctx, m.typ, []byte(m.data)); err != nil {
					break // the server may close on a hostile message
				}
			}
			peerErr := make(chan error, 1)
			go func() {
				// Keep reading so the close handshake completes.
				for {
					if _, _, err := c.Read(ctx); err != nil {
						peerErr <- err
						return
					}
				}
			}()
			frames, err := readAll(t, s)
			st := s.Stats()
			wantFrames := 2
			if tc.want == accepted {
				wantFrames = 3
			}
			if tc.want == closes {
				if err == io.EOF || err == nil || len(frames) != 1 {
					t.Fatalf("want the stream to end with an error after 1 frame; got %d frames, %v", len(frames), err)
				}
				var se *voicegate.StreamError
				var ce *voicegate.CloseError
				if !errors.As(err, &se) || !errors.As(err, &ce) || !ce.Sent || ce.Code != int(tc.code) {
					t.Errorf("ended with %v, want a *voicegate.StreamError wrapping the *voicegate.CloseError sent with status %d", err, tc.code)
				}
				if pe := <-peerErr; websocket.CloseStatus(pe) != tc.code {
					t.Errorf("peer saw %v, want close status %d", pe, tc.code)
				}
				return
			}
			if err != io.EOF || len(frames) != wantFrames {
				t.Fatalf("got %d frames, %v; want %d frames then EOF (stats %+v)", len(frames), err, wantFrames, st)
			}
			var got outcome = -1
			switch {
			case st.Malformed == 1 && st.Ignored == 0 && st.FramesLate == 0:
				got = malformed
			case st.Ignored == 1 && st.Malformed == 0 && st.FramesLate == 0:
				got = ignored
			case st.FramesLate == 1 && st.Ignored == 0 && st.Malformed == 0:
				got = late
			case st.Ignored == 0 && st.Malformed == 0 && st.FramesLate == 0:
				if tc.want == accepted && len(frames[1].Payload) == 30000 {
					got = accepted
				}
				if tc.want == event {
					ev, err := s.ReadEvent(ctx)
					if err == nil && ev.Kind == twilio.EventMark && ev.MarkStatus == twilio.MarkUnknown && ev.Mark == "<script>" {
						got = event
					}
				}
			}
			if got != tc.want {
				t.Errorf("outcome %v, want %v (stats %+v)", got, tc.want, st)
			}
			if st2, _ := s.Start(ctx); st2.StreamSID != "MZ1" {
				t.Errorf("start replaced: %+v", st2)
			}
		})
	}
}

// dialStarted connects to ms, sends connected and start, and returns the
// client and the server's stream once it has the start.
func dialStarted(t *testing.T, ctx context.Context, ms *mediaServer) (*websocket.Conn, *twilio.Stream) {
	t.Helper()
	h := http.Header{twilio.SignatureHeader: {twilio.ComputeSignature(testToken, ms.URL, nil)}}
	c, _, err := websocket.Dial(ctx, ms.URL, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	for _, m := range []string{
		`{"event":"connected","protocol":"Call","version":"1.0.0"}`,
		`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{}},"streamSid":"MZ1"}`,
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	s := ms.next(t)
	if _, err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c, s
}

// peerClose reads until c ends and returns the close frame's payload as
// sent: the status code big-endian, then the reason.
func peerClose(ctx context.Context, c *websocket.Conn) []byte {
	for {
		if _, _, err := c.Read(ctx); err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) {
				return []byte(err.Error())
			}
			return append(binary.BigEndian.AppendUint16(nil, uint16(ce.Code)), ce.Reason...)
		}
	}
}

// A message that is not JSON, or a media payload that is not base64, ends
// the stream at once: the peer gets close 1007 with a fixed reason, and
// ReadFrame an error matching ErrMalformed and the close sent.
func TestMalformedCloses1007(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, msg string
		close     string // the close frame's payload
	}{
		{"not json", `{not json`, "\x03\xefmessage is not valid JSON"},
		{"payload not base64", media("inbound", `"200"`, "!!!notbase64"), "\x03\xefmedia payload is not base64"},
		{"media without media", `{"event":"media","streamSid":"MZ1"}`, "\x03\xefmalformed message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			c, s := dialStarted(t, ctx, ms)
			if err := c.Write(ctx, websocket.MessageText, []byte(tc.msg)); err != nil {
				t.Fatal(err)
			}
			if got := peerClose(ctx, c); string(got) != tc.close {
				t.Errorf("peer got close %q, want %q", got, tc.close)
			}
			_, err := s.ReadFrame(ctx)
			var ce *voicegate.CloseError
			if !errors.Is(err, twilio.ErrMalformed) || !errors.As(err, &ce) || !ce.Sent || ce.Code != 1007 || ce.Reason != tc.close[2:] {
				t.Errorf("ReadFrame: %v; want ErrMalformed and the close 1007 sent", err)
			}
			if !errors.Is(s.Err(), twilio.ErrMalformed) {
				t.Errorf("Err: %v", s.Err())
			}
			if st := s.Stats(); st.Malformed != 1 {
				t.Errorf("stats: %d malformed, want 1", st.Malformed)
			}
		})
	}
}

// Refuse closes with 1008 and the reason given.
func TestRefuseCloses1008(t *testing.T) {
	t.Parallel()
	ms := newMediaServer(t, &twilio.AcceptOptions{AuthTokens: []string{testToken}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, s := dialStarted(t, ctx, ms)
	got := make(chan []byte, 1)
	go func() { got <- peerClose(ctx, c) }()
	if err := s.Refuse("no session waiting for this call"); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "\x03\xf0no session waiting for this call" {
		t.Errorf("peer got close %q", b)
	}
	if _, err := s.ReadFrame(ctx); !errors.Is(err, voicegate.ErrClosed) {
		t.Errorf("ReadFrame after Refuse: %v", err)
	}
}
