package audiohook

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
)

func TestDuration(t *testing.T) {
	ok := []struct {
		in   string
		want time.Duration
		out  string
	}{
		{"PT0S", 0, "PT0S"},
		{"PT1.2S", 1200 * time.Millisecond, "PT1.2S"},
		{"PT0.002072374S", 2072374 * time.Nanosecond, "PT0.002072374S"},
		{"PT.5S", 500 * time.Millisecond, "PT0.5S"},
		{"PT5.S", 5 * time.Second, "PT5S"},
		{"PT3600S", time.Hour, "PT3600S"},
		{"PT0.0000000019S", 1, "PT0.000000001S"},
		{"PT9223372036.854775807S", time.Duration(1<<63 - 1), "PT9223372036.854775807S"},
	}
	for _, tt := range ok {
		got, err := parseDuration(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
		if s := formatDuration(got); s != tt.out {
			t.Errorf("formatDuration(%v) = %q, want %q", got, s, tt.out)
		}
	}
	for _, bad := range []string{"", "PT", "PTS", "PT.S", "P1S", "PT1", "PT-1S", "PT1e3S", "PT1.2.3S", "pt1s", "PT1M", "PT99999999999999999999S", "PT9223372036.9S", "PT9223372036.854775808S"} {
		if _, err := parseDuration(bad); !errors.Is(err, ErrBadDuration) {
			t.Errorf("parseDuration(%q) err %v", bad, err)
		}
	}
	if s := formatDuration(1e9 * time.Second); strings.ContainsAny(s, "eE") {
		t.Errorf("exponent in %q", s)
	}
	if formatDuration(-time.Second) != "PT0S" {
		t.Error("negative duration")
	}
}

func TestUUID(t *testing.T) {
	for i := 0; i < 100; i++ {
		if u := newUUID(); !IsUUID(u) || u[14] != '4' {
			t.Fatalf("newUUID %q", u)
		}
	}
	for _, bad := range []string{"", "not-a-uuid", "994dba0a-0000-7000-8000-000000000000", "994dba0a-0000-4000-c000-000000000000", "994dba0a00004000800000000000000000000"} {
		if IsUUID(bad) {
			t.Errorf("IsUUID(%q)", bad)
		}
	}
	if !IsUUID(NullUUID) || !IsUUID("994DBA0A-0000-4000-8000-00000000000A") {
		t.Error("valid UUIDs rejected")
	}
}

func TestKeysFromJSON(t *testing.T) {
	k, err := KeysFromJSON([]byte(`{"R2VuZXN5c2Nsb3Vk":"YTEyMzQ1Njc4OQ==","open":"","nul":null}`))
	if err != nil {
		t.Fatal(err)
	}
	s, ok, _ := k.Secret(context.Background(), "R2VuZXN5c2Nsb3Vk")
	if !ok || string(s) != "a123456789" {
		t.Fatalf("secret %q %v", s, ok)
	}
	for _, key := range []string{"open", "nul"} {
		if s, ok, _ := k.Secret(context.Background(), key); !ok || len(s) != 0 {
			t.Fatalf("%s: %q %v", key, s, ok)
		}
	}
	if _, ok, _ := k.Secret(context.Background(), "x"); ok {
		t.Fatal("unknown key found")
	}
	for _, bad := range []string{`[]`, `{"a":1}`, `{"a":"***"}`} {
		if _, err := KeysFromJSON([]byte(bad)); err == nil {
			t.Errorf("KeysFromJSON(%s) accepted", bad)
		}
	}
	t.Setenv("AH_TEST_KEYS", `{"k":"YQ=="}`)
	if k, err := KeysFromEnv("AH_TEST_KEYS"); err != nil || string(k["k"]) != "a" {
		t.Fatalf("KeysFromEnv: %v %v", k, err)
	}
}

func TestHandleAudioZeroAlloc(t *testing.T) {
	s := newSession(nil, (&ServerOptions{}).withDefaults(), newUUID(), tOrg, newUUID(), "")
	s.setState(stateActive)
	s.m.frameB = 2
	s.m.tmpl = voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 2}
	s.m.track.StartAt(0)
	frame := make([]byte, 320)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		s.handleAudio(frame)
		if _, err := s.ReadFrame(ctx); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per binary frame", allocs)
	}
}

func FuzzParseClientMessage(f *testing.F) {
	id := "994dba0a-7d1b-4b8e-9c62-2b6f7e1f9a01"
	f.Add([]byte(tmsg(id, "open", 1, 0, "PT0S", openParams(stereoPCMU, nil))))
	f.Add([]byte(tmsg(id, "ping", 2, 1, "PT1.2S", `{"rtt":"PT0.002072374S"}`)))
	f.Add([]byte(tmsg(id, "resumed", 3, 2, "PT2S", `{"start":"PT1S","discarded":"PT1S"}`)))
	f.Add([]byte(`{"version":"2","type":"close","seq":1e2,"serverseq":-1,"position":"PT","id":"x","parameters":[]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseClientMessage(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		// Re-encoding a parsed message gives the same envelope.
		out := appendClientMessage(nil, m.Type, m.ID, m.Seq, m.ServerSeq, m.Position, m.Parameters)
		if m.Type != "" && !strings.ContainsAny(m.Type, "\"\\") && len(out) < MaxTextMessage {
			m2, err := ParseClientMessage(out)
			if err == nil && (m2.Seq != m.Seq || m2.Position != m.Position || m2.ID != m.ID) {
				t.Fatalf("round trip %+v != %+v", m2, m)
			}
		}
		switch m.Type {
		case TypeOpen:
			_, _ = ParseOpenParameters(m.Parameters)
		case TypeResumed, TypeDiscarded:
			_, _ = parseResumed(m.Parameters)
		}
	})
}

func FuzzParseServerMessage(f *testing.F) {
	id := "994dba0a-7d1b-4b8e-9c62-2b6f7e1f9a01"
	f.Add([]byte(appendServerMessage(nil, "opened", id, 1, 1, []byte(`{"media":[{"type":"audio","format":"PCMU","channels":["external"],"rate":8000}],"startPaused":true,"discardTo":"PT2S"}`))))
	f.Add([]byte(appendServerMessage(nil, "event", id, 2, 1, []byte(`{"entities":[{"type":"transcript","data":{}}]}`))))
	f.Add([]byte(`{"version":"2","type":"pong","seq":1,"clientseq":"1","id":"x","parameters":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseServerMessage(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		if m.Type == TypeOpened {
			_, _ = ParseOpenedParameters(m.Parameters)
		}
	})
}

func FuzzDuration(f *testing.F) {
	for _, s := range []string{"PT0S", "PT1.25S", "PT5.S", "PT.5S", "PT-1S", "PT1e3S", "PT9223372036.9S"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			return
		}
		if d < 0 {
			t.Fatalf("%q parsed as negative %v", s, d)
		}
		d2, err := parseDuration(formatDuration(d))
		if err != nil || d2 != d {
			t.Fatalf("%q -> %v -> %q -> %v %v", s, d, formatDuration(d), d2, err)
		}
	})
}
