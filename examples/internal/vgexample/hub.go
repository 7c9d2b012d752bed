package vgexample

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/voicegate/voicegate/daspeak"
)

// Message is one event published on a Hub.
type Message struct {
	// Event is the SSE event name, e.g. "progress" or "result-success".
	Event string
	// Data is the JSON payload.
	Data []byte
}

// Hub fans events out to subscribers by topic ("call:CA…", "caller:+34…").
// Each subscriber has a bounded queue; when it is full, the oldest message
// is dropped and counted, so a stalled browser never blocks a session.
// The last message of each of the most recent topics is kept and replayed
// to new subscribers, so a page that subscribes late still sees the latest
// state. A Hub is safe for concurrent use; the zero value is not usable.
type Hub struct {
	mu      sync.Mutex
	subs    map[string]map[*Sub]struct{}
	last    map[string]Message
	order   []string // topics of last, oldest first
	maxLast int
	queue   int
}

// NewHub returns a Hub whose subscribers queue up to queue messages
// (default 64) and which remembers the last message of up to topics topics
// (default 10000).
func NewHub(queue, topics int) *Hub {
	if queue <= 0 {
		queue = 64
	}
	if topics <= 0 {
		topics = 10000
	}
	return &Hub{subs: map[string]map[*Sub]struct{}{}, last: map[string]Message{}, maxLast: topics, queue: queue}
}

// Sub is a subscription. Read C until Close.
type Sub struct {
	h       *Hub
	topics  []string
	c       chan Message
	mu      sync.Mutex
	closed  bool
	dropped int
}

// C returns the channel messages arrive on. It is never closed; stop
// reading after Close.
func (s *Sub) C() <-chan Message { return s.c }

// Dropped returns how many messages were dropped because the queue was full.
func (s *Sub) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Close ends the subscription. It is idempotent.
func (s *Sub) Close() {
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	for _, t := range s.topics {
		delete(s.h.subs[t], s)
		if len(s.h.subs[t]) == 0 {
			delete(s.h.subs, t)
		}
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// send queues m, dropping the oldest message when the queue is full.
func (s *Sub) send(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	for {
		select {
		case s.c <- m:
			return
		default:
		}
		select {
		case <-s.c:
			s.dropped++
		default:
		}
	}
}

// Subscribe subscribes to topics. The last message of each topic, if
// remembered, is queued at once.
func (h *Hub) Subscribe(topics ...string) *Sub {
	s := &Sub{h: h, topics: topics, c: make(chan Message, h.queue)}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range topics {
		if h.subs[t] == nil {
			h.subs[t] = map[*Sub]struct{}{}
		}
		h.subs[t][s] = struct{}{}
		if m, ok := h.last[t]; ok {
			s.send(m)
		}
	}
	return s
}

// Publish sends m to every subscriber of any of topics (once per
// subscriber) and remembers it as the topics' last message.
func (h *Hub) Publish(m Message, topics ...string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	sent := map[*Sub]bool{}
	for _, t := range topics {
		for s := range h.subs[t] {
			if !sent[s] {
				sent[s] = true
				s.send(m)
			}
		}
		if _, ok := h.last[t]; !ok {
			h.order = append(h.order, t)
			if len(h.order) > h.maxLast {
				delete(h.last, h.order[0])
				h.order = h.order[1:]
			}
		}
		h.last[t] = m
	}
}

// EventMessage turns a session event into a Message for browsers and IVRs:
// the credential and the collected audio are left out (they stay on the
// server, in the credential store).
func EventMessage(ev daspeak.Event) Message {
	ev.Credential = ""
	ev.Audio = nil
	b, err := json.Marshal(ev)
	if err != nil {
		b = []byte(`{"type":"error-audio","error":"event not encodable"}`)
	}
	return Message{Event: string(ev.Type), Data: b}
}

// ServeSSE streams the subscription to w as Server-Sent Events until the
// client goes away, ctx ends (server shutdown, see Tracker) or a message
// for which stop returns true was sent. It sends a comment every keepAlive
// (default 15 s) so proxies keep the connection open. It closes sub.
func ServeSSE(ctx context.Context, w http.ResponseWriter, r *http.Request, sub *Sub, keepAlive time.Duration, stop func(Message) bool) {
	defer sub.Close()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	if keepAlive <= 0 {
		keepAlive = 15 * time.Second
	}
	tick := time.NewTicker(keepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ctx.Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil || rc.Flush() != nil {
				return
			}
		case m := <-sub.C():
			data := bytes.ReplaceAll(m.Data, []byte("\n"), []byte("\ndata: "))
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", m.Event, data); err != nil || rc.Flush() != nil {
				return
			}
			if stop != nil && stop(m) {
				return
			}
		}
	}
}

// IsResult reports whether an event name is a session's terminal event
// (result-* or error-*), as opposed to progress or this package's own
// notices such as "stream-requested".
func IsResult(event string) bool {
	return strings.HasPrefix(event, "result-") || strings.HasPrefix(event, "error-")
}
