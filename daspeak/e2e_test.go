package daspeak_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/internal/fixtures"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// storeAdapter keeps session credentials in a credstore.Store.
type storeAdapter struct{ s credstore.Store }

func (a storeAdapter) StoreCredential(ctx context.Context, callerID, credential, modelHash string, _ []byte) error {
	return a.s.Put(ctx, callerID, credstore.Record{Credential: credential, ModelHash: modelHash})
}

// TestTwilioEndToEnd plays recorded calls through the Twilio simulator into a
// Media Streams endpoint (twilio.Accept), runs register and verify sessions
// on the stream, and uses the das-Peak REST client against the emulator
// backed by the offline engine: the whole path a deployment runs, on
// loopback.
func TestTwilioEndToEnd(t *testing.T) {
	const (
		authToken = "e2e-auth-token"
		apiKey    = "e2e-api-key"
	)
	emu := daspeaktest.NewServer(offline.New(nil), &daspeaktest.Options{APIKey: apiKey})
	defer emu.Close()
	client, err := daspeak.NewClient(&daspeak.ClientOptions{BaseURL: emu.URL(), APIKey: apiKey})
	if err != nil {
		t.Fatal(err)
	}
	store := credstore.NewMemory()

	type outcome struct {
		events []daspeak.Event
		err    error
	}
	results := make(chan outcome, 1)
	var wg sync.WaitGroup
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	publicURL := "wss://voice.example.com/media"
	mux.HandleFunc("/media", func(w http.ResponseWriter, r *http.Request) {
		stream, err := twilio.Accept(w, r, &twilio.AcceptOptions{
			PublicURL:   publicURL,
			AuthTokens:  []string{"old-token", authToken},
			QueueFrames: 2000, // the simulator plays faster than real time
		})
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer stream.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start, err := stream.Start(ctx)
			if err != nil {
				results <- outcome{err: err}
				return
			}
			caller := start.CustomParameters["caller"]
			var sess *daspeak.Session
			if start.CustomParameters["op"] == "register" {
				sess, err = daspeak.Register(stream, client, &daspeak.Config{Store: storeAdapter{store}, CallerID: caller})
			} else {
				var rec credstore.Record
				if rec, err = store.Get(ctx, caller); err == nil {
					sess, err = daspeak.Verify(stream, client, rec.Credential, nil)
				}
			}
			if err != nil {
				results <- outcome{err: err}
				return
			}
			var evs []daspeak.Event
			for {
				ev, err := sess.Next(ctx)
				if err == io.EOF {
					break
				}
				if err != nil {
					results <- outcome{events: evs, err: err}
					return
				}
				evs = append(evs, ev)
			}
			results <- outcome{events: evs}
		}()
	})
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http") + "/media"

	call := func(op, caller string, wav []byte) daspeak.Event {
		t.Helper()
		_, err := twiliotest.PlayWAV(context.Background(), wsURL, wav, &twiliotest.Options{
			AuthToken:        authToken,
			PublicURL:        publicURL,
			Pace:             twiliotest.AsFastAsPossible,
			CustomParameters: map[string]string{"op": op, "caller": caller},
			LossRate:         0.02,
			Seed:             7,
		})
		if err != nil {
			t.Fatalf("%s %s: play: %v", op, caller, err)
		}
		out := <-results
		if out.err != nil {
			t.Fatalf("%s %s: session: %v", op, caller, out.err)
		}
		if len(out.events) == 0 {
			t.Fatalf("%s %s: no events", op, caller)
		}
		last := out.events[len(out.events)-1]
		if !last.IsTerminal() {
			t.Fatalf("%s %s: last event %s is not terminal", op, caller, last.Type)
		}
		progress := 0
		for _, ev := range out.events[:len(out.events)-1] {
			if ev.Type != daspeak.EventProgress {
				t.Errorf("%s %s: unexpected event %s before the result", op, caller, ev.Type)
			}
			progress++
		}
		if progress == 0 {
			t.Errorf("%s %s: no progress events", op, caller)
		}
		return last
	}

	read := func(names ...string) []byte {
		// Concatenate clips of one voice into one WAV (μ-law 8 kHz).
		var data []byte
		w := fixtures.LoadWAV(t, names[0])
		for _, n := range names {
			data = append(data, fixtures.LoadWAV(t, n).Data...)
		}
		out, err := codec.EncodeWAV(nil, w.Format, data)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	reg := call("register", "+15550001", read("voices/slt_1.wav", "voices/slt_2.wav"))
	if reg.Type != daspeak.EventResultSuccess || !reg.Stored || reg.Credential == "" {
		t.Fatalf("register: %s stored=%v err=%v", reg.Type, reg.Stored, reg.Err)
	}
	if _, err := store.Get(context.Background(), "+15550001"); err != nil {
		t.Fatalf("credential not stored: %v", err)
	}
	genuine := call("verify", "+15550001", read("voices/slt_3.wav"))
	if genuine.Type != daspeak.EventResultSuccess {
		t.Fatalf("genuine verify: %s score %.3f err %v", genuine.Type, genuine.Score, genuine.Err)
	}
	impostor := call("verify", "+15550001", read("voices/kal_3.wav"))
	if impostor.Type != daspeak.EventResultFailScore {
		t.Fatalf("impostor verify: %s score %.3f err %v", impostor.Type, impostor.Score, impostor.Err)
	}
	if genuine.Score <= impostor.Score {
		t.Fatalf("genuine score %.3f not above impostor %.3f", genuine.Score, impostor.Score)
	}
	wg.Wait()
	st := emu.Stats()
	if n := st.Endpoints["/models/{hash}/credential/wav"]; n != 1 {
		t.Errorf("emulator served %d credential requests, want 1", n)
	}
	if n := st.Endpoints["/similarity/credential2wav"]; n != 2 {
		t.Errorf("emulator served %d credential2wav requests, want 2", n)
	}
}
