package genesys

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/daspeak/agent"
)

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// tonePCMU returns the first n 20 ms frames of audiohooktest.ToneSource at
// freq as a PCMU session carries them.
func tonePCMU(t *testing.T, freq float64, n int) [][]byte {
	t.Helper()
	src := audiohooktest.ToneSource(time.Duration(n)*20*time.Millisecond, freq)
	var out [][]byte
	for range n {
		f, err := src.ReadFrame(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		p := make([]byte, f.Samples())
		for j := range p {
			p[j] = codec.EncodeULawSample(int16(binary.LittleEndian.Uint16(f.Payload[2*j:])))
		}
		out = append(out, p)
	}
	return out
}

// TestConversationSessions opens three AudioHook sessions on one
// conversation: the second names another caller and is refused with
// disconnect "error"; the third names the same caller and serves new
// operations; an operation on it ends with ErrSessionEnded (not io.EOF,
// not "call ended") when it ends first, and the conversation, still bound
// to the first caller, ends only with its last session.
func TestConversationSessions(t *testing.T) {
	var logs syncBuffer
	var mu sync.Mutex
	var convEvents []string
	src := NewSource(&SourceOptions{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		OnConversation: func(info *audiohook.OpenInfo, live bool) {
			mu.Lock()
			defer mu.Unlock()
			convEvents = append(convEvents, info.Params.ConversationID+" "+info.Params.Participant.ANI+" "+map[bool]string{true: "live", false: "ended"}[live])
		},
	})
	hs := newHookServer(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sessions := func() int {
		src.mu.Lock()
		defer src.mu.Unlock()
		if cv := src.convs[convID]; cv != nil {
			return len(cv.calls)
		}
		return 0
	}
	checkCaller := func(when string) {
		t.Helper()
		if caller, live, err := src.Call(ctx, convID); caller != "+34600000500" || !live || err != nil {
			t.Fatalf("%s: Call = %q %v %v, want +34600000500 live", when, caller, live, err)
		}
	}

	first := dial(t, ctx, hs.url, convID, "tel:+34600000500")
	waitFor(t, "the first session", func() bool { return sessions() == 1 })
	checkCaller("first session")

	// Another caller on the live conversation: refused.
	other := dial(t, ctx, hs.url, convID, "tel:+34600000501")
	m, err := other.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"reason":"error","info":"conversation already monitored for another caller: session refused"}`; m.Type != wire.TypeDisconnect || string(m.Parameters) != want {
		t.Fatalf("second caller got %s %s, want disconnect %s", m.Type, m.Parameters, want)
	}
	if err := <-hs.runs; !errors.Is(err, ErrCallerConflict) {
		t.Fatalf("Run of the other caller's session: %v", err)
	}
	other.CloseNow()
	checkCaller("after the refusal")
	if st := src.Stats(); st.Sessions != 1 || st.Refused != 1 {
		t.Fatalf("stats after the refusal %+v", st)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN msg=\"AudioHook session refused: it names another caller") ||
		strings.Contains(l, "600000501") || strings.Contains(l, "600000500") {
		t.Fatalf("logs:\n%s", l)
	}

	// The same caller again (a reconnect): new operations use it.
	again := dial(t, ctx, hs.url, convID, "tel:+34 600 000 500")
	waitFor(t, "the second session of the caller", func() bool { return sessions() == 2 })
	checkCaller("same caller again")
	a, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_1", CallID: convID, CallerID: "+34600000500"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	// The sessions send different tones, so that the frames tell which
	// session an operation reads.
	const firstTone, againTone = 1000, 440
	stream := func(c *audiohooktest.Client, freq float64) {
		t.Helper()
		if err := c.Stream(ctx, audiohooktest.ToneSource(100*time.Millisecond, freq), &audiohooktest.StreamOptions{Chunk: 20 * time.Millisecond, Fast: true}); err != nil {
			t.Fatal(err)
		}
	}
	stream(first, firstTone) // not the operation's session
	stream(again, againTone)
	want := tonePCMU(t, againTone, 5)
	for i := range 5 {
		f, err := a.ReadFrame(ctx)
		if err != nil || f.Timestamp != time.Duration(i)*20*time.Millisecond {
			t.Fatalf("frame %d at %v: %v", i, f.Timestamp, err)
		}
		if !bytes.Equal(f.Payload, want[i]) {
			t.Fatalf("frame %d is not the %d Hz tone of the operation's session", i, againTone)
		}
	}
	// Its session goes away while the first is live: the operation's
	// audio ends, the conversation does not.
	again.CloseNow()
	if err := <-hs.runs; err == nil {
		t.Fatal("Run of a dropped session returned nil")
	}
	var se *voicegate.StreamError
	if _, err := a.ReadFrame(ctx); !errors.As(err, &se) || !errors.Is(err, ErrSessionEnded) || errors.Is(err, io.EOF) {
		t.Fatalf("operation on the ended session: %v", err)
	}
	checkCaller("after the newer session ended")
	if st := src.Stats(); st.Sessions != 1 || st.Attached != 0 {
		t.Fatalf("stats after the newer session ended %+v", st)
	}

	// A new operation reads the first session until the call ends.
	b, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_2", CallID: convID, CallerID: "+34600000500"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	stream(first, firstTone)
	if f, err := b.ReadFrame(ctx); err != nil || f.Timestamp != 100*time.Millisecond {
		t.Fatalf("first session's frame at %v: %v", f.Timestamp, err)
	} else if !bytes.Equal(f.Payload, tonePCMU(t, firstTone, 1)[0]) {
		t.Fatalf("the frame is not the first session's %d Hz tone", firstTone)
	}
	if err := first.Close(ctx, wire.CloseEnd); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := b.ReadFrame(ctx); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("operation at the call's end: %v", err)
			}
			break
		}
	}
	if err := <-hs.runs; err != nil {
		t.Fatalf("Run of the first session: %v", err)
	}
	if caller, live, err := src.Call(ctx, convID); caller != "+34600000500" || live || err != nil {
		t.Fatalf("Call after the last session = %q %v %v, want +34600000500 ended", caller, live, err)
	}
	mu.Lock()
	got := strings.Join(convEvents, "; ")
	mu.Unlock()
	if want := convID + " tel:+34600000500 live; " + convID + " tel:+34600000500 ended"; got != want {
		t.Fatalf("OnConversation: %s, want %s", got, want)
	}
}

// TestOpenAfterCallerChange: the agent checks a conversation's caller
// (Call) before it opens the audio; if meanwhile the conversation's last
// session ended, it was forgotten (EndedTTL) and a new one named another
// caller, Open refuses the operation bound to the first caller instead of
// giving it the other caller's audio.
func TestOpenAfterCallerChange(t *testing.T) {
	src := NewSource(nil)
	clock := newTestClock(src)
	hs := newHookServer(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	first := dial(t, ctx, hs.url, convID, "tel:+34600000500")
	waitFor(t, "the first session", func() bool { return src.Stats().Sessions == 1 })
	if caller, live, err := src.Call(ctx, convID); caller != "+34600000500" || !live || err != nil {
		t.Fatalf("Call = %q %v %v", caller, live, err)
	}
	if err := first.Close(ctx, wire.CloseEnd); err != nil {
		t.Fatal(err)
	}
	if err := <-hs.runs; err != nil {
		t.Fatalf("Run of the first session: %v", err)
	}
	clock.add(DefaultEndedTTL)
	other := dial(t, ctx, hs.url, convID, "tel:+34600000999")
	waitFor(t, "the other caller's session", func() bool { return src.Stats().Sessions == 1 })

	a, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_1", CallID: convID, CallerID: "+34600000500"})
	if err == nil {
		defer a.Close()
		if err := other.Stream(ctx, audiohooktest.ToneSource(100*time.Millisecond, 440), &audiohooktest.StreamOptions{Chunk: 20 * time.Millisecond, Fast: true}); err != nil {
			t.Fatal(err)
		}
		f, err := a.ReadFrame(ctx)
		t.Fatalf("Open for the first caller succeeded on the other caller's session; ReadFrame = %d bytes at %v, %v", len(f.Payload), f.Timestamp, err)
	}
	if !errors.Is(err, agent.ErrNoCall) || !errors.Is(err, ErrCallerConflict) {
		t.Fatalf("Open for the first caller: %v, want agent.ErrNoCall and ErrCallerConflict", err)
	}
	if strings.Contains(err.Error(), "600000") {
		t.Fatalf("Open's error names a caller: %v", err)
	}
	if st := src.Stats(); st.Attached != 0 {
		t.Fatalf("stats %+v", st)
	}
	// The conversation's caller, or none named, still opens.
	for _, caller := range []string{"+34600000999", ""} {
		b, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_2", CallID: convID, CallerID: caller})
		if err != nil {
			t.Fatalf("Open for %q: %v", caller, err)
		}
		b.Close()
	}
	other.CloseNow()
	<-hs.runs
}

// TestOpenDetachesOlderSession: an operation attached to a conversation
// is detached by a newer one even when a newer session of the same caller
// arrived in between, so a conversation never feeds two operations.
func TestOpenDetachesOlderSession(t *testing.T) {
	src := NewSource(nil)
	hs := newHookServer(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sessions := func() int {
		src.mu.Lock()
		defer src.mu.Unlock()
		if cv := src.convs[convID]; cv != nil {
			return len(cv.calls)
		}
		return 0
	}

	first := dial(t, ctx, hs.url, convID, "tel:+34600000500")
	waitFor(t, "the first session", func() bool { return sessions() == 1 })
	a, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_1", CallID: convID, CallerID: "+34600000500"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	again := dial(t, ctx, hs.url, convID, "tel:+34600000500")
	waitFor(t, "the second session", func() bool { return sessions() == 2 })
	b, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_2", CallID: convID, CallerID: "+34600000500"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	defer rcancel()
	var se *voicegate.StreamError
	if _, err := a.ReadFrame(rctx); !errors.As(err, &se) || !errors.Is(err, ErrDetached) {
		t.Fatalf("the older operation's ReadFrame: %v, want ErrDetached", err)
	}
	if st := src.Stats(); st.Attached != 1 {
		t.Fatalf("stats %+v, want one operation attached", st)
	}
	first.CloseNow()
	again.CloseNow()
	<-hs.runs
	<-hs.runs
}

// TestNotifyResultAfterSessionEnded: the result of an operation whose
// session ended while the conversation goes on is sent on the
// conversation's live session, not lost.
func TestNotifyResultAfterSessionEnded(t *testing.T) {
	src := NewSource(nil)
	hs := newHookServer(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sessions := func() int {
		src.mu.Lock()
		defer src.mu.Unlock()
		if cv := src.convs[convID]; cv != nil {
			return len(cv.calls)
		}
		return 0
	}
	first := dial(t, ctx, hs.url, convID, "tel:+34600000500")
	waitFor(t, "the first session", func() bool { return sessions() == 1 })
	again := dial(t, ctx, hs.url, convID, "tel:+34600000500")
	waitFor(t, "the second session", func() bool { return sessions() == 2 })
	a, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_1", CallID: convID, CallerID: "+34600000500"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	again.CloseNow()
	if err := <-hs.runs; err == nil {
		t.Fatal("Run of a dropped session returned nil")
	}
	if _, err := a.ReadFrame(ctx); !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("operation on the ended session: %v", err)
	}

	ev := agent.Event{OperationID: "op_1", CallID: convID, CallerID: "+34600000500", Seq: 3, Type: "result-failure"}
	if err := a.(agent.ResultNotifier).NotifyResult(ctx, ev); err != nil {
		t.Fatalf("NotifyResult after the operation's session ended: %v", err)
	}
	m, err := first.Next(ctx)
	if err != nil || m.Type != wire.TypeEvent {
		t.Fatalf("the live session got %+v, %v", m, err)
	}
	if !strings.Contains(string(m.Parameters), `"operation_id":"op_1"`) || !strings.Contains(string(m.Parameters), EntityResult) {
		t.Fatalf("event %s", m.Parameters)
	}

	// With no live session left, NotifyResult fails.
	first.CloseNow()
	<-hs.runs
	if err := a.(agent.ResultNotifier).NotifyResult(ctx, ev); err == nil {
		t.Fatal("NotifyResult with no live session returned nil")
	}
}

// testClock is a Source's clock that tests move.
type testClock struct {
	src *Source
	t   time.Time
}

// newTestClock makes src's clock a testClock.
func newTestClock(src *Source) *testClock {
	c := &testClock{src: src, t: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
	src.mu.Lock()
	src.now = func() time.Time { return c.t } // read with src.mu held
	src.mu.Unlock()
	return c
}

func (c *testClock) add(d time.Duration) {
	c.src.mu.Lock()
	c.t = c.t.Add(d)
	c.src.mu.Unlock()
}

// TestEndedConversation: a conversation whose last session closed stays
// ended for EndedTTL. A new session on it is refused with disconnect
// "error" whichever caller it names (ErrConversationEnded; with
// ErrCallerConflict for another caller), so it is never bound to another
// caller under the agent's widget; Call answers it ended, with its
// caller; Open refuses it. Once forgotten, the id binds again.
func TestEndedConversation(t *testing.T) {
	var logs syncBuffer
	var mu sync.Mutex
	var convEvents []string
	src := NewSource(&SourceOptions{
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		OnConversation: func(info *audiohook.OpenInfo, live bool) {
			mu.Lock()
			defer mu.Unlock()
			convEvents = append(convEvents, info.Params.Participant.ANI+" "+map[bool]string{true: "live", false: "ended"}[live])
		},
	})
	clock := newTestClock(src)
	hs := newHookServer(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	refusedOn := func(who, conv, ani, info string, conflict bool) {
		t.Helper()
		c := dial(t, ctx, hs.url, conv, ani)
		defer c.CloseNow()
		m, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"reason":"error","info":"` + info + `"}`; m.Type != wire.TypeDisconnect || string(m.Parameters) != want {
			t.Fatalf("%s got %s %s, want disconnect %s", who, m.Type, m.Parameters, want)
		}
		err = <-hs.runs
		if errors.Is(err, ErrCallerConflict) != conflict || errors.Is(err, ErrConversationEnded) != (info == EndedInfo) {
			t.Fatalf("Run of %s: %v", who, err)
		}
	}
	refused := func(who, ani, info string, conflict bool) {
		t.Helper()
		refusedOn(who, convID, ani, info, conflict)
	}

	// Two sessions of one caller; a third caller is refused while live.
	a := dial(t, ctx, hs.url, convID, "tel:+34600000001")
	b := dial(t, ctx, hs.url, convID, "tel:+34600000001")
	waitFor(t, "two sessions", func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		cv := src.convs[convID]
		return cv != nil && len(cv.calls) == 2
	})
	refused("another caller on the live conversation", "tel:+34600000099", ConflictInfo, true)
	// The same conversation id in upper case is the same conversation.
	refusedOn("another caller on the live conversation's id in upper case", strings.ToUpper(convID), "tel:+34600000099", ConflictInfo, true)

	// Both end: the conversation ended.
	a.CloseNow()
	b.CloseNow()
	<-hs.runs
	<-hs.runs
	if caller, live, err := src.Call(ctx, convID); caller != "+34600000001" || live || err != nil {
		t.Fatalf("Call of the ended conversation = %q %v %v, want +34600000001 ended", caller, live, err)
	}

	// The other caller on the ended conversation: refused, not bound.
	refused("another caller on the ended conversation", "tel:+34600000099", EndedInfo, true)
	refusedOn("another caller on the ended conversation's id in upper case", strings.ToUpper(convID), "tel:+34600000099", EndedInfo, true)
	// Its own caller: refused too, the call stays ended.
	refused("the same caller on the ended conversation", "tel:+34600000001", EndedInfo, false)
	clock.add(DefaultEndedTTL - time.Second)
	refused("the other caller just before the conversation is forgotten", "tel:+34600000099", EndedInfo, true)

	if caller, live, err := src.Call(ctx, convID); caller != "+34600000001" || live || err != nil {
		t.Fatalf("Call after the refusals = %q %v %v, want +34600000001 ended", caller, live, err)
	}
	if _, err := src.Open(ctx, agent.SourceRequest{OperationID: "op_1", CallID: convID, CallerID: "+34600000001"}); !errors.Is(err, agent.ErrNoCall) {
		t.Fatalf("Open of the ended conversation: %v, want agent.ErrNoCall", err)
	}
	if st := src.Stats(); st.Sessions != 0 || st.Ended != 1 || st.Refused != 6 {
		t.Fatalf("stats %+v, want 0 sessions, 1 ended, 6 refused", st)
	}
	if l := logs.String(); strings.Count(l, `level=WARN msg="AudioHook session refused: its conversation has ended"`) != 4 ||
		strings.Contains(l, "600000001") || strings.Contains(l, "600000099") {
		t.Fatalf("logs:\n%s", l)
	}
	mu.Lock()
	got := strings.Join(convEvents, "; ")
	mu.Unlock()
	if want := "tel:+34600000001 live; tel:+34600000001 ended"; got != want {
		t.Fatalf("OnConversation: %s, want %s", got, want)
	}

	// EndedTTL after its end the conversation is forgotten: the id binds
	// again.
	clock.add(time.Second)
	if _, _, err := src.Call(ctx, convID); !errors.Is(err, agent.ErrNoCall) {
		t.Fatalf("Call of the forgotten conversation: %v, want agent.ErrNoCall", err)
	}
	c := dial(t, ctx, hs.url, convID, "tel:+34600000099")
	waitFor(t, "the session after the conversation was forgotten", func() bool { return src.Stats().Sessions == 1 })
	if caller, live, err := src.Call(ctx, convID); caller != "+34600000099" || !live || err != nil {
		t.Fatalf("Call = %q %v %v, want +34600000099 live", caller, live, err)
	}
	if st := src.Stats(); st.Ended != 0 {
		t.Fatalf("stats %+v, want 0 ended", st)
	}
	c.CloseNow()
	<-hs.runs
}

// TestEndedConversationsBounded: at most MaxEnded ended conversations are
// remembered, the one that ended first forgotten first.
func TestEndedConversationsBounded(t *testing.T) {
	src := NewSource(&SourceOptions{MaxEnded: 2})
	newTestClock(src)
	hs := newHookServer(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ids := []string{
		"1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7001",
		"1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7002",
		"1b2c3d4e-5f60-4718-9a2b-3c4d5e6f7003",
	}
	for _, id := range ids {
		c := dial(t, ctx, hs.url, id, "tel:+34600000001")
		if err := c.Close(ctx, wire.CloseEnd); err != nil {
			t.Fatal(err)
		}
		if err := <-hs.runs; err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	if st := src.Stats(); st.Ended != 2 {
		t.Fatalf("stats %+v, want 2 ended", st)
	}
	if _, _, err := src.Call(ctx, ids[0]); !errors.Is(err, agent.ErrNoCall) {
		t.Fatalf("Call of the first conversation: %v, want agent.ErrNoCall (forgotten)", err)
	}
	for _, id := range ids[1:] {
		if caller, live, err := src.Call(ctx, id); caller != "+34600000001" || live || err != nil {
			t.Fatalf("Call of %s = %q %v %v, want ended", id, caller, live, err)
		}
	}
}
