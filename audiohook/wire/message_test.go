package wire

import (
	"errors"
	"strings"
	"testing"
	"time"
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
	for _, bad := range []string{"", "not-a-uuid", "994dba0a-0000-7000-8000-000000000000", "994dba0a-0000-4000-c000-000000000000", "994dba0a00004000800000000000000000000"} {
		if IsUUID(bad) {
			t.Errorf("IsUUID(%q)", bad)
		}
	}
	if !IsUUID(NullUUID) || !IsUUID("994DBA0A-0000-4000-8000-00000000000A") {
		t.Error("valid UUIDs rejected")
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
			_, _ = ParseResumedParameters(m.Parameters)
		case TypeUpdate:
			_, _ = ParseUpdateParameters(m.Parameters)
		}
	})
}

func FuzzParseServerMessage(f *testing.F) {
	id := "994dba0a-7d1b-4b8e-9c62-2b6f7e1f9a01"
	f.Add([]byte(`{"version":"2","type":"opened","seq":1,"clientseq":1,"id":"` + id + `","parameters":{"media":[{"type":"audio","format":"PCMU","channels":["external"],"rate":8000}],"startPaused":true,"discardTo":"PT2S"}}`))
	f.Add([]byte(`{"version":"2","type":"event","seq":2,"clientseq":1,"id":"` + id + `","parameters":{"entities":[{"type":"transcript","data":{}}]}}`))
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
