package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent"
)

// TestDeskHangupEndsOperation: hanging up a call ends its simulated
// stream, as Twilio ends a Media Stream when the call ends, so a register
// running on it ends without enough speech (error-audio) and stores no
// voiceprint. The simulator once kept playing after the hang-up and the
// register succeeded seconds after the call had ended.
func TestDeskHangupEndsOperation(t *testing.T) {
	d, _ := startDesk(t) // real-time audio: 10 s of net speech take longer than the test waits
	st := d.desk.state()
	call := st.Calls[1] // a caller with no credential
	auth := map[string]string{"Authorization": "Bearer " + st.Token, "Content-Type": "application/json"}
	status, body := send(t, "POST", d.base+"/agent/register", "", auth, `{"call_id":"`+call.CallSID+`","caller_id":"`+call.CallerID+`"}`)
	if status != http.StatusAccepted {
		t.Fatalf("register: %d %s", status, body)
	}
	var ans struct {
		EventsURL string `json:"events_url"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil || ans.EventsURL == "" {
		t.Fatalf("register answer %q: %v", body, err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", d.base+ans.EventsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: HTTP %d", resp.StatusCode)
	}
	// The event stream's JSON (agent.Event.MarshalJSON), as the widget reads it.
	type event struct {
		Type      daspeak.EventType `json:"type"`
		Reason    agent.Reason      `json:"reason"`
		Error     string            `json:"error"`
		NetSpeech float64           `json:"net_speech"`
	}
	events := make(chan event)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data:")
			if !ok {
				continue
			}
			var ev event
			if err := json.Unmarshal([]byte(strings.TrimSpace(data)), &ev); err != nil {
				t.Errorf("event %q: %v", data, err)
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	next := func() event {
		t.Helper()
		ev, ok := <-events
		if !ok {
			t.Fatalf("the event stream ended without a result (%v)", ctx.Err())
		}
		return ev
	}

	// The caller is speaking: hang up.
	for ev := next(); ev.Type != daspeak.EventProgress || ev.NetSpeech == 0; ev = next() {
		if agent.IsTerminal(ev.Type) {
			t.Fatalf("operation ended before the hang-up: %s %s", ev.Type, ev.Error)
		}
	}
	hungUp := time.Now()
	jsonHdr := map[string]string{"Content-Type": "application/json"}
	if status, body := send(t, "POST", d.base+"/desk/calls/"+call.CallSID, "", jsonHdr, `{"live":false}`); status != http.StatusOK {
		t.Fatalf("hang up: %d %s", status, body)
	}
	var final event
	for final = next(); !agent.IsTerminal(final.Type); final = next() {
	}
	t.Logf("after the hang-up: %s (reason %s, net speech %.1f s) in %v", final.Type, final.Reason, final.NetSpeech, time.Since(hungUp))
	if final.Type != daspeak.EventErrorAudio {
		t.Errorf("operation ended with %s (reason %s), want %s: the call's audio ended", final.Type, final.Reason, daspeak.EventErrorAudio)
	}
	if _, err := d.desk.store.Get(t.Context(), call.CallerID); !errors.Is(err, credstore.ErrNotFound) {
		t.Errorf("credential of a caller who hung up mid-register: %v", err)
	}
}
