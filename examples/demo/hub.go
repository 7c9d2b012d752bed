package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// callEvent is one line of a call's history: a session event of package
// daspeak (progress, result-*, error-*) or a step of the call itself
// (connected, error-not-registered, ended). It is what the console shows
// and what is printed to stdout.
type callEvent struct {
	Seq       int64           `json:"seq"`
	Time      time.Time       `json:"time"`
	Call      string          `json:"call"`     // "call 1", or the protocol's call id for calls the demo did not place
	CallID    string          `json:"call_id"`  // Twilio CallSid or AudioHook session id
	Protocol  string          `json:"protocol"` // "twilio" or "audiohook"
	Caller    string          `json:"caller"`
	Operation string          `json:"operation"`
	Type      string          `json:"type"`
	Terminal  bool            `json:"terminal"`
	Text      string          `json:"text"`            // human-readable detail
	Event     json.RawMessage `json:"event,omitempty"` // the daspeak.Event as JSON, credential left out
}

// Sizes of the hub's buffers.
const (
	historySize   = 2000 // events kept for consoles that connect later
	subscriberBuf = 256  // events queued per console before it is dropped
)

// hub numbers events, prints them to out one line each, keeps a bounded
// history and fans them out to the consoles connected over Server-Sent
// Events. A console that falls behind by subscriberBuf events is
// disconnected (counted in Stats) rather than slowing the calls down; its
// browser reconnects and gets the history again.
type hub struct {
	log *slog.Logger

	mu      sync.Mutex
	out     io.Writer
	seq     int64
	history []callEvent
	subs    map[chan callEvent]struct{}
	dropped int64
	closed  bool
	done    chan struct{}
}

func newHub(out io.Writer, log *slog.Logger) *hub {
	return &hub{out: out, log: log, subs: map[chan callEvent]struct{}{}, done: make(chan struct{})}
}

// publish stamps ev, prints it and hands it to every console.
func (h *hub) publish(ev callEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	ev.Seq = h.seq
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	fmt.Fprintln(h.out, formatLine(ev))
	if len(h.history) == historySize {
		copy(h.history, h.history[1:])
		h.history = h.history[:historySize-1]
	}
	h.history = append(h.history, ev)
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
			// Too slow: drop the console; it will reconnect.
			h.dropped++
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// callerDeleted appends a "deleted" line to every call of callerID in the
// history: a result-success that stored the caller's credential stays as
// it happened, and the line after it says the credential is gone.
func (h *hub) callerDeleted(callerID string) {
	h.mu.Lock()
	var calls []callEvent
	seen := map[string]bool{}
	for _, ev := range h.history {
		if ev.Caller == callerID && !seen[ev.CallID] {
			seen[ev.CallID] = true
			calls = append(calls, ev)
		}
	}
	h.mu.Unlock()
	for _, c := range calls {
		h.publish(callEvent{
			Call: c.Call, CallID: c.CallID, Protocol: c.Protocol, Caller: c.Caller, Operation: c.Operation,
			Type: "deleted", Text: "caller " + callerID + " deleted from the desk: credential and enrolment audio removed",
		})
	}
}

// printf writes a line to out that is not an event (headers, summary).
func (h *hub) printf(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fmt.Fprintf(h.out, format, args...)
}

// subscribe returns the history so far and a channel of later events. The
// channel is closed when the subscriber is dropped or the hub closes.
func (h *hub) subscribe() ([]callEvent, chan callEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan callEvent, subscriberBuf)
	if h.closed {
		close(ch)
	} else {
		h.subs[ch] = struct{}{}
	}
	return append([]callEvent(nil), h.history...), ch
}

func (h *hub) unsubscribe(ch chan callEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

// close ends every console stream. It is idempotent.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
	if h.dropped > 0 {
		h.log.Info("console streams dropped for falling behind", "count", h.dropped)
	}
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

// serveEvents streams the history, then live events, as Server-Sent Events
// (event type "call", data = callEvent JSON). It returns when the client
// goes away, falls too far behind, or the hub closes.
func (h *hub) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	history, ch := h.subscribe()
	defer h.unsubscribe(ch)

	// A reconnecting EventSource sends the id of the last event it saw.
	var last int64
	fmt.Sscan(r.Header.Get("Last-Event-ID"), &last)
	write := func(ev callEvent) error {
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "id: %d\nevent: call\ndata: %s\n\n", ev.Seq, b)
		return err
	}
	fmt.Fprint(w, "retry: 2000\n\n")
	for _, ev := range history {
		if ev.Seq <= last {
			continue
		}
		if write(ev) != nil {
			return
		}
	}
	if rc.Flush() != nil {
		return
	}
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return
			}
			if write(ev) != nil || rc.Flush() != nil {
				return
			}
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// formatLine renders an event as one line of text.
func formatLine(ev callEvent) string {
	return fmt.Sprintf("%s  %-7s %-9s %-8s %-14s %-24s %s",
		ev.Time.Format("15:04:05.000"), ev.Call, ev.Protocol, ev.Operation, ev.Caller, ev.Type, ev.Text)
}
