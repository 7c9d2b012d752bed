package twilio

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
)

// realPayload1 rebuilds the first real frame of spec §8.1: it starts
// "f39///////9/f39/f3//" and ends "fw==", 160 bytes.
func realPayload1(t testing.TB) (string, []byte) {
	head, err := base64.StdEncoding.DecodeString("f39///////9/f39/f3//")
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Repeat([]byte{0xFF}, 160)
	copy(b, head)
	b[159] = 0x7F
	s := base64.StdEncoding.EncodeToString(b)
	if !strings.HasPrefix(s, "f39///////9/f39/f3//") || !strings.HasSuffix(s, "fw==") || len(s) != 216 {
		t.Fatalf("bad reconstruction %s", s)
	}
	return s, b
}

func testStream(o *AcceptOptions) *Stream {
	return newStream(nil, o.withDefaults())
}

func readNow(t *testing.T, s *Stream) (voicegate.Frame, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return s.ReadFrame(ctx)
}

func TestRealFrames(t *testing.T) {
	p1, want1 := realPayload1(t)
	lines := []string{
		`{"event":"connected","protocol":"Call","version":"1.0.0"}`,
		`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC7e2b…","streamSid":"MZ5174…","callSid":"CA4539…","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{}},"streamSid":"MZ5174…"}`,
		`{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"155","payload":"` + p1 + `"},"streamSid":"MZ5174…"}`,
		`{"event":"media","sequenceNumber":"102","media":{"track":"inbound","chunk":"101","timestamp":"2088","payload":"` + strings.Repeat("////", 53) + `/w=="},"streamSid":"MZ351c…"}`,
		`{"event":"stop","sequenceNumber":"378","streamSid":"MZ5174…","stop":{"accountSid":"AC7e2b…","callSid":"CA4539…"}}`,
	}
	s := testStream(nil)
	for _, l := range lines {
		s.handle([]byte(l))
	}
	st, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.AccountSID != "AC7e2b…" || st.StreamSID != "MZ5174…" || st.CallSID != "CA4539…" || len(st.Tracks) != 1 || st.Tracks[0] != "inbound" ||
		st.MediaFormat != (MediaFormat{"audio/x-mulaw", 8000, 1}) || st.SequenceNumber != 1 || st.CustomParameters == nil {
		t.Errorf("start = %+v", st)
	}
	f, err := readNow(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if f.Timestamp != 0 || f.Seq != 1 || f.Parties[0] != voicegate.Customer || f.Encoding != voicegate.PCMU || f.SampleRate != 8000 || f.Channels != 1 || !bytes.Equal(f.Payload, want1) {
		t.Errorf("frame 1 = %+v", f)
	}
	if first, ok := s.FirstTimestamp(); !ok || first != 155 {
		t.Errorf("first timestamp %d %v", first, ok)
	}
	f, err = readNow(t, s)
	if err != nil {
		t.Fatal(err)
	}
	// 2088-155 ms; the 1,913 ms skipped are one gap (not filled).
	if f.Timestamp != 1933*time.Millisecond || len(f.Payload) != 160 || !bytes.Equal(f.Payload, bytes.Repeat([]byte{0xFF}, 160)) || f.Seq != 98 {
		t.Errorf("frame 2 = ts %v seq %d len %d", f.Timestamp, f.Seq, len(f.Payload))
	}
	if _, err := readNow(t, s); err != io.EOF {
		t.Errorf("after stop: %v", err)
	}
	stats := s.Stats()
	if stats.Gaps != 1 || stats.GapTime != (2088-175)*time.Millisecond || stats.FramesReceived != 2 || stats.Malformed != 0 || stats.Ignored != 0 {
		t.Errorf("stats %+v", stats)
	}
	if stop := s.StopInfo(); stop == nil || stop.CallSID != "CA4539…" {
		t.Errorf("stop %+v", stop)
	}
}

func TestLenientParsing(t *testing.T) {
	pl := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 160))
	plNoPad := strings.TrimRight(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 161)), "=")
	for _, tc := range []struct {
		name, msg string
		ts        time.Duration
		n         int
	}{
		{"strings", `{"event":"media","media":{"track":"inbound","chunk":"1","timestamp":"100","payload":"` + pl + `"}}`, 0, 160},
		{"numbers", `{"event":"media","sequenceNumber":3,"media":{"track":"inbound","chunk":1,"timestamp":100,"payload":"` + pl + `"}}`, 0, 160},
		{"order and unknown fields", `{"streamSid":"MZ1","media":{"payload":"` + pl + `","extra":{"a":[1,2,{"b":null}]},"timestamp":"100","track":"inbound"},"x":true,"event":"media"}`, 0, 160},
		{"whitespace", " {\n \"event\" : \"media\" ,\t\"media\" : { \"timestamp\" : 100.0 , \"payload\" : \"" + pl + "\" } }\n", 0, 160},
		{"escaped slash (slow path)", `{"event":"media","media":{"track":"inbound","timestamp":"100","payload":"` + strings.ReplaceAll(pl, "/", `\/`) + `"}}`, 0, 160},
		{"unpadded base64", `{"event":"media","media":{"track":"inbound","timestamp":"100","payload":"` + plNoPad + `"}}`, 0, 161},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testStream(nil)
			s.handle([]byte(tc.msg))
			f, err := readNow(t, s)
			if err != nil {
				t.Fatalf("%v (stats %+v)", err, s.Stats())
			}
			if f.Timestamp != tc.ts || len(f.Payload) != tc.n {
				t.Errorf("frame ts %v len %d", f.Timestamp, len(f.Payload))
			}
		})
	}
}

func mediaLine(track string, ts int64, payload []byte) []byte {
	return []byte(fmt.Sprintf(`{"event":"media","sequenceNumber":"%d","media":{"track":"%s","chunk":"%d","timestamp":"%d","payload":"%s"},"streamSid":"MZ0123456789abcdef0123456789abcdef"}`,
		ts/20+2, track, ts/20+1, ts, base64.StdEncoding.EncodeToString(payload)))
}

// Parsing and decoding a 160-byte media message, queueing it and reading
// it back allocate nothing.
func TestMediaZeroAlloc(t *testing.T) {
	s := testStream(nil)
	payload := bytes.Repeat([]byte{0x55}, 160)
	const n = 2000
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = mediaLine("inbound", 155+int64(i)*20, payload)
	}
	ctx := context.Background()
	i := 0
	allocs := testing.AllocsPerRun(n-10, func() {
		s.handle(msgs[i])
		i++
		f, err := s.ReadFrame(ctx)
		if err != nil || len(f.Payload) != 160 {
			panic("read failed")
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per media message, want 0", allocs)
	}
	if st := s.Stats(); st.FramesReceived != uint64(i) || st.Gaps != 0 {
		t.Errorf("stats %+v after %d", st, i)
	}
}

func FuzzParseMessage(f *testing.F) {
	p1, _ := realPayload1(f)
	for _, seed := range []string{
		`{"event":"connected","protocol":"Call","version":"1.0.0"}`,
		`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound","outbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"a":"b"}},"streamSid":"MZ1"}`,
		`{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"155","payload":"` + p1 + `"},"streamSid":"MZ1"}`,
		`{"event":"media","media":{"track":"outbound","chunk":1,"timestamp":5,"payload":"no+JhoaJjpz="}}`,
		`{"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"1"}}`,
		`{"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"my label"}}`,
		`{"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC1","callSid":"CA1"},"streamSid":"MZ1"}`,
		`{"event":"media","media":{"timestamp":"1e400","payload":"////"}}`,
		`[[[[[[[[[[`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newStream(nil, (&AcceptOptions{QueueFrames: 4, EventQueue: 2, FillGaps: true}).withDefaults())
		s.handle(data)
		s.handle(data)
		// Differential check of the fast media scanner against encoding/json
		// on valid JSON whose keys are unambiguous.
		if !json.Valid(data) {
			return
		}
		lower := bytes.ToLower(data)
		for _, k := range []string{`"event"`, `"media"`, `"track"`, `"timestamp"`, `"payload"`, `"chunk"`} {
			if bytes.Count(lower, []byte(k)) > 1 {
				return
			}
		}
		buf := make([]byte, len(data))
		var m mediaMsg
		_, err := scanMedia(data, buf, &m)
		if err != nil {
			return
		}
		var w wireMsg
		if err := decodeFull(data, &w); err != nil {
			t.Fatalf("fast path accepted, json rejected: %v", err)
		}
		if w.Media == nil || string(w.Event) != "media" {
			t.Fatalf("fast path media, json: %+v", w)
		}
		var m2 mediaMsg
		buf2 := make([]byte, len(data))
		if err := fillMedia(&m2, []byte(w.Media.Track), []byte(w.Media.Timestamp), []byte(w.Media.Chunk), []byte(w.Media.Payload), buf2); err != nil {
			t.Fatalf("slow path: %v", err)
		}
		if string(m.track) != string(m2.track) || m.timestamp != m2.timestamp || m.chunk != m2.chunk || !bytes.Equal(m.payload, m2.payload) {
			t.Fatalf("fast %+v != slow %+v", m, m2)
		}
	})
}

func TestParseInt(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "155": 155, "100.0": 100, "00012": 12} {
		if got, ok := parseInt([]byte(in)); !ok || got != want {
			t.Errorf("parseInt(%q) = %d %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "-1", "1.5", "1e3", "abc", "99999999999999999999", "1 "} {
		if _, ok := parseInt([]byte(in)); ok {
			t.Errorf("parseInt(%q) accepted", in)
		}
	}
}

// FuzzStreamSequence feeds a sequence of messages (one per line) through
// the stream state machine: start, tracks, gaps and fill, marks, stop.
func FuzzStreamSequence(f *testing.F) {
	p1, _ := realPayload1(f)
	f.Add([]byte(`{"event":"start","start":{"streamSid":"MZ1","tracks":["inbound","outbound"]}}
{"event":"media","media":{"track":"inbound","timestamp":"155","payload":"` + p1 + `"}}
{"event":"media","media":{"track":"outbound","timestamp":"155","payload":"` + p1 + `"}}
{"event":"media","media":{"track":"inbound","timestamp":"1155","payload":"` + p1 + `"}}
{"event":"media","media":{"track":"inbound","timestamp":"175","payload":"` + p1 + `"}}
{"event":"mark","mark":{"name":"a"}}
{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"5"}}
{"event":"stop"}
{"event":"media","media":{"track":"inbound","timestamp":"2000","payload":"` + p1 + `"}}`))
	f.Add([]byte("{\"event\":\"media\",\"media\":{\"timestamp\":1,\"payload\":\"AA==\"}}\n{\"event\":\"media\",\"media\":{\"timestamp\":99999,\"payload\":\"AA==\"}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := newStream(nil, (&AcceptOptions{QueueFrames: 8, EventQueue: 2, FillGaps: true}).withDefaults())
		for _, line := range bytes.Split(data, []byte("\n")) {
			s.handle(line)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var last voicegate.Frame
		for i := 0; i < 32; i++ {
			fr, err := s.ReadFrame(ctx)
			if err != nil {
				break
			}
			if fr.Parties[0] == last.Parties[0] && last.Seq != 0 && fr.Seq <= last.Seq {
				t.Fatalf("seq went from %d to %d", last.Seq, fr.Seq)
			}
			if fr.Timestamp < 0 || fr.Validate() != nil {
				t.Fatalf("bad frame %+v", fr)
			}
			last = fr
		}
	})
}

// FuzzValidate checks that no URL or signature makes the validator panic.
func FuzzValidate(f *testing.F) {
	f.Add("wss://example.com/media", "7PR3qMkpDyEJtMrVOY/LDyNq8J8=")
	f.Add("wss://[::1]:443/media?x=1&y", "zyyJQiPZXIGCLy3HYdHEfry0yDg=")
	f.Add("://@:", "")
	f.Add("HTTPS://u s@[::ffff:1.2.3.4]:0443/a/./../b\\c?x='y'&&10=z&a=%e9%zz#f g", "7PR3qMkpDyEJtMrVOY/LDyNq8J8=")
	f.Add("http://0x7f.1:080/?bodySHA256=%3"+"0a&a+b=[]|", "7PR3qMkpDyEJtMrVOY/LDyNq8J8=\n")
	f.Fuzz(func(t *testing.T, u, sig string) {
		v := NewValidator("12345")
		if v.Validate(u, nil, sig) && !slices.ContainsFunc(signedURLCandidates(u), func(c string) bool {
			return ComputeSignature("12345", c, nil) == sig
		}) {
			t.Fatalf("%q accepted %q, the signature of none of its candidate URLs", u, sig)
		}
		v.ValidateBody(u, []byte(sig), sig)
	})
}

// With both_tracks, lateness is judged per track: an outbound frame with
// timestamp 20 that arrives after the first inbound frame (timestamp 40)
// is not late; only a frame not after the previous one of its own track
// is.
func TestBothTracksLateCutoffPerTrack(t *testing.T) {
	payload := strings.Repeat("////", 53) + "/w=="
	lines := []string{
		`{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound","outbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":"MZ1"}`,
		`{"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"40","payload":"` + payload + `"},"streamSid":"MZ1"}`,
		`{"event":"media","sequenceNumber":"3","media":{"track":"outbound","chunk":"1","timestamp":"20","payload":"` + payload + `"},"streamSid":"MZ1"}`,
		`{"event":"media","sequenceNumber":"4","media":{"track":"outbound","chunk":"2","timestamp":"40","payload":"` + payload + `"},"streamSid":"MZ1"}`,
		`{"event":"media","sequenceNumber":"5","media":{"track":"outbound","chunk":"3","timestamp":"40","payload":"` + payload + `"},"streamSid":"MZ1"}`,
		`{"event":"stop","sequenceNumber":"6","streamSid":"MZ1","stop":{"accountSid":"AC1","callSid":"CA1"}}`,
	}
	s := testStream(nil)
	for _, l := range lines {
		s.handle([]byte(l))
	}
	want := []struct {
		party voicegate.Party
		seq   uint64
		ts    time.Duration
	}{
		{voicegate.Customer, 1, 0},
		{voicegate.Agent, 1, -20 * time.Millisecond},
		{voicegate.Agent, 2, 0},
	}
	for i, w := range want {
		f, err := readNow(t, s)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Parties[0] != w.party || f.Seq != w.seq || f.Timestamp != w.ts {
			t.Errorf("frame %d: %v seq %d ts %v; want %v seq %d ts %v", i, f.Parties[0], f.Seq, f.Timestamp, w.party, w.seq, w.ts)
		}
	}
	if _, err := readNow(t, s); err != io.EOF {
		t.Errorf("after stop: %v", err)
	}
	if st := s.Stats(); st.FramesLate != 1 || st.FramesReceived != 3 || st.Gaps != 0 {
		t.Errorf("stats %+v; want the duplicate outbound 40 late, nothing else", st)
	}
}

// TestSpecialMatchesByteLoop checks the eight-bytes-at-a-time search of
// the JSON scanner against a byte-at-a-time loop, on strings where the
// byte it must find sits at every offset of a word, after bytes that a
// borrow between lanes could confuse with it (0x00, 0x1F, 0x20, 0x21,
// 0x23, 0x5B, 0x5D, 0x7F, 0x80, 0xA2, 0xDC, 0xFF).
func TestSpecialMatchesByteLoop(t *testing.T) {
	ref := func(b []byte, i int) int {
		for ; i < len(b); i++ {
			if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
				return i
			}
		}
		return i
	}
	fillers := []byte{'A', 0x20, 0x21, 0x23, 0x5B, 0x5D, 0x7F, 0x80, 0xA2, 0xDC, 0xFF}
	targets := []byte{'"', '\\', 0x00, 0x01, 0x1F, '\n'}
	for _, fill := range fillers {
		for _, tgt := range targets {
			for n := 0; n <= 20; n++ {
				for pos := -1; pos < n; pos++ {
					b := bytes.Repeat([]byte{fill}, n)
					if pos >= 0 {
						b[pos] = tgt
						if pos+1 < n {
							b[pos+1] = '"' // a later hit must not win
						}
					}
					for start := 0; start <= n; start++ {
						if got, want := special(b, start), ref(b, start); got != want {
							t.Fatalf("special(%q, %d) = %d, want %d", b, start, got, want)
						}
					}
				}
			}
		}
	}
}
