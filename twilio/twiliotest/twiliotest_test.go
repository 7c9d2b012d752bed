package twiliotest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "tok"

func server(t *testing.T, opts *twilio.AcceptOptions) (string, chan *twilio.Stream) {
	ch := make(chan *twilio.Stream, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := *opts
		o.PublicURL = "ws://" + r.Host + "/media"
		s, err := twilio.Accept(w, r, &o)
		if err == nil {
			ch <- s
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/media", ch
}

func TestPlayJSONL(t *testing.T) {
	url, ch := server(t, &twilio.AcceptOptions{AuthTokens: []string{token}})
	capture := `{"event":"connected","protocol":"Call","version":"1.0.0"}

{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"k":"v"}},"streamSid":"MZ1"}
{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"155","payload":"////"},"streamSid":"MZ1"}
{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"2","timestamp":"175","payload":"////"},"streamSid":"MZ1"}
{"event":"stop","sequenceNumber":"4","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}
`
	clk := twiliotest.NewFakeClock(time.Unix(0, 0))
	done := make(chan *twiliotest.Result, 1)
	go func() {
		r, err := twiliotest.PlayJSONL(context.Background(), url, strings.NewReader(capture), &twiliotest.Options{AuthToken: token, Clock: clk})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	s := <-ch
	defer s.Close()
	var n int
	for {
		f, err := s.ReadFrame(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Payload) != 3 || f.Timestamp != time.Duration(n)*20*time.Millisecond {
			t.Errorf("frame %d: %+v", n, f)
		}
		n++
	}
	r := <-done
	st, _ := s.Start(context.Background())
	if n != 2 || r.MessagesSent != 5 || r.MediaSent != 2 || st.CustomParameters["k"] != "v" || s.StopInfo() == nil {
		t.Errorf("frames %d result %+v start %+v", n, r, st)
	}
	if got := clk.Now(); got != time.Unix(0, 0).Add(20*time.Millisecond) {
		t.Errorf("clock advanced to %v, want one frame", got)
	}
}

func TestPlayWAVTracks(t *testing.T) {
	url, ch := server(t, &twilio.AcceptOptions{AuthTokens: []string{token}})
	data := make([]byte, 800)
	wav, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, data)
	if err != nil {
		t.Fatal(err)
	}
	go twiliotest.PlayWAV(context.Background(), url, wav, &twiliotest.Options{AuthToken: token, Tracks: twiliotest.Both, Pace: twiliotest.AsFastAsPossible})
	s := <-ch
	defer s.Close()
	count := map[voicegate.Party]int{}
	for {
		f, err := s.ReadFrame(context.Background())
		if err != nil {
			break
		}
		count[f.Parties[0]]++
	}
	if count[voicegate.Customer] != 5 || count[voicegate.Agent] != 5 {
		t.Errorf("frames per party %v", count)
	}
	wav16k, _ := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 16000, Channels: 1}, data)
	if _, err := twiliotest.PlayWAV(context.Background(), url, wav16k, nil); err == nil {
		t.Error("16 kHz WAV accepted")
	}
	if _, err := twiliotest.PlayWAV(context.Background(), url, []byte("nope"), nil); err == nil {
		t.Error("garbage accepted")
	}
}

func TestPlayRejectedAndCancelled(t *testing.T) {
	url, ch := server(t, &twilio.AcceptOptions{AuthTokens: []string{token}})
	_, err := twiliotest.PlayAudio(context.Background(), url, make([]byte, 160), nil, &twiliotest.Options{AuthToken: "wrong"})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("bad signature: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := twiliotest.PlayAudio(ctx, url, make([]byte, 160*500), nil, &twiliotest.Options{AuthToken: token})
		done <- err
	}()
	s := <-ch
	defer s.Close()
	if _, err := s.ReadFrame(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled play: %v", err)
	}
	<-s.Done()
}

func TestFakeServerRouting(t *testing.T) {
	started := make(chan twiliotest.CreatedStream, 1)
	srv := twiliotest.NewServer(&twiliotest.ServerOptions{OnStreamStart: func(c twiliotest.CreatedStream) { started <- c }})
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		auth         bool
		status       int
	}{
		{http.MethodGet, "/v2/WebChats", true, 405},
		{http.MethodPost, "/v2/WebChats", false, 401},
		{http.MethodPost, "/nowhere", true, 404},
		{http.MethodPost, "/2010-04-01/Accounts/ACother/Calls/CA1/Streams.json", true, 404},
		{http.MethodPost, "/2010-04-01/Accounts/" + srv.AccountSID() + "/Calls/CA1/Streams.json", true, 400},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.auth {
			req.SetBasicAuth(srv.AccountSID(), srv.AuthToken())
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Code   int `json:"code"`
			Status int `json:"status"`
		}
		decodeJSON(t, resp, &body)
		if resp.StatusCode != tc.status || body.Status != tc.status || body.Code == 0 {
			t.Errorf("%s %s: %d %+v", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	c, _ := twilio.NewClient(&twilio.ClientOptions{AccountSID: srv.AccountSID(), AuthToken: srv.AuthToken(), BaseURL: srv.URL})
	if _, err := c.StartStream(context.Background(), "CA1", &twilio.StreamParams{URL: "wss://x.example/m", Parameters: []twilio.Parameter{{Name: "a", Value: "b"}}}); err != nil {
		t.Fatal(err)
	}
	cs := <-started
	if cs.URL != "wss://x.example/m" || cs.Parameters["a"] != "b" || cs.Track != twilio.TrackInbound {
		t.Errorf("created %+v", cs)
	}
}

func TestFakeClock(t *testing.T) {
	c := twiliotest.NewFakeClock(time.Unix(10, 0))
	if err := c.Sleep(context.Background(), time.Second); err != nil || c.Now() != time.Unix(11, 0) {
		t.Errorf("%v %v", c.Now(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.Sleep(ctx, time.Second); err == nil || c.Now() != time.Unix(11, 0) {
		t.Error("cancelled sleep advanced")
	}
	if a, b := twiliotest.SID("MZ"), twiliotest.SID("MZ"); len(a) != 34 || a == b || !strings.HasPrefix(a, "MZ") {
		t.Errorf("SIDs %s %s", a, b)
	}
}

// Jitter moves send times, never media time.
func TestJitter(t *testing.T) {
	url, ch := server(t, &twilio.AcceptOptions{AuthTokens: []string{token}})
	clk := twiliotest.NewFakeClock(time.Unix(0, 0))
	done := make(chan *twiliotest.Result, 1)
	go func() {
		r, err := twiliotest.PlayAudio(context.Background(), url, make([]byte, 160*200), nil,
			&twiliotest.Options{AuthToken: token, Clock: clk, Jitter: 15 * time.Millisecond, Seed: 1})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	s := <-ch
	defer s.Close()
	n := 0
	for {
		f, err := s.ReadFrame(context.Background())
		if err != nil {
			break
		}
		if f.Timestamp != time.Duration(n)*twiliotest.FrameDuration {
			t.Fatalf("frame %d at %v", n, f.Timestamp)
		}
		n++
	}
	r := <-done
	moved := 0
	for i, off := range r.SendOffsets {
		due := time.Duration(i) * twiliotest.FrameDuration
		if off < due || off >= due+15*time.Millisecond {
			t.Fatalf("frame %d sent at %v, due %v", i, off, due)
		}
		if off != due {
			moved++
		}
	}
	if n != 200 || moved < 150 {
		t.Errorf("%d frames, %d sent late", n, moved)
	}
}

// A server that ends the stream while audio is still being sent is not a
// failure of the simulation: PlayWAV must return nil even when its write
// fails before its reader has seen the close.
func TestPlayServerHangsUp(t *testing.T) {
	url, ch := server(t, &twilio.AcceptOptions{AuthTokens: []string{token}})
	wav, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, make([]byte, 8000*30))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		errc := make(chan error, 1)
		go func() {
			_, err := twiliotest.PlayWAV(context.Background(), url, wav, &twiliotest.Options{AuthToken: token, Pace: twiliotest.AsFastAsPossible})
			errc <- err
		}()
		s := <-ch
		if _, err := s.ReadFrame(context.Background()); err != nil {
			t.Fatalf("run %d: first frame: %v", i, err)
		}
		s.CloseNow()
		if err := <-errc; err != nil {
			t.Fatalf("run %d: PlayWAV after the server hung up: %v", i, err)
		}
	}
}

// Twilio sends 160-byte media payloads only: audio that is not a multiple
// of 20 ms ends with a frame padded with μ-law silence.
func TestPlayPadsLastFrame(t *testing.T) {
	url, ch := server(t, &twilio.AcceptOptions{AuthTokens: []string{token}})
	audio := make([]byte, 160+80)
	for i := range audio {
		audio[i] = 0x11
	}
	done := make(chan error, 1)
	go func() {
		_, err := twiliotest.PlayAudio(context.Background(), url, audio, nil, &twiliotest.Options{AuthToken: token, Pace: twiliotest.AsFastAsPossible})
		done <- err
	}()
	s := <-ch
	defer s.Close()
	var payloads [][]byte
	for {
		f, err := s.ReadFrame(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, f.Clone().Payload)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(payloads) != 2 || len(payloads[1]) != 160 {
		t.Fatalf("payload sizes %d frames, last %d bytes; want 2 frames of 160", len(payloads), len(payloads[len(payloads)-1]))
	}
	for i, b := range payloads[1] {
		want := byte(0x11)
		if i >= 80 {
			want = codec.ULawSilence
		}
		if b != want {
			t.Fatalf("last frame byte %d = %#x, want %#x", i, b, want)
		}
	}
}

// A stream stopped over the fake REST API ends the simulated stream with a
// stop message, as Twilio does.
func TestFakeServerStopEndsSimulatedStream(t *testing.T) {
	url, ch := server(t, &twilio.AcceptOptions{AuthTokens: []string{token}})
	played := make(chan error, 1)
	srv := twiliotest.NewServer(&twiliotest.ServerOptions{OnStreamStart: func(c twiliotest.CreatedStream) {
		// 60 s of audio in real time: only the stop ends it in time.
		_, err := twiliotest.PlayAudio(context.Background(), url, make([]byte, 8000*60), nil,
			&twiliotest.Options{AuthToken: token, Stop: c.Stopped})
		played <- err
	}})
	defer srv.Close()
	c, _ := twilio.NewClient(&twilio.ClientOptions{AccountSID: srv.AccountSID(), AuthToken: srv.AuthToken(), BaseURL: srv.URL})
	res, err := c.StartStream(context.Background(), "CA1", &twilio.StreamParams{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	s := <-ch
	defer s.Close()
	if _, err := s.ReadFrame(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.StopStream(context.Background(), "CA1", res.SID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, err := s.ReadFrame(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after REST stop: %v; want io.EOF after the stop event", err)
		}
	}
	if s.StopInfo() == nil {
		t.Error("no stop event")
	}
	if err := <-played; err != nil {
		t.Errorf("simulator: %v", err)
	}
}
