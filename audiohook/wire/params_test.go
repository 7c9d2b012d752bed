package wire

import (
	"errors"
	"testing"
	"time"
)

func TestParseResumedParameters(t *testing.T) {
	p, err := ParseResumedParameters([]byte(`{"start":"PT1.5S","discarded":"PT2S"}`))
	if err != nil || time.Duration(p.Start) != 1500*time.Millisecond || time.Duration(p.Discarded) != 2*time.Second {
		t.Fatalf("got %+v, %v", p, err)
	}
	for _, bad := range []string{`{"start":"PT1S"}`, `{"discarded":"PT1S"}`, `{"start":"PT1S","discarded":"1s"}`, `[]`, `{"start":1,"discarded":"PT1S"}`} {
		if _, err := ParseResumedParameters([]byte(bad)); !errors.Is(err, ErrBadMessage) && !errors.Is(err, ErrBadDuration) {
			t.Errorf("ParseResumedParameters(%s) = %v, want ErrBadMessage or ErrBadDuration", bad, err)
		}
	}
}

func TestParseUpdateParameters(t *testing.T) {
	for in, want := range map[string]string{`{}`: "", `{"language":"en-US"}`: "en-US", `{"language":"fil-ph"}`: "fil-ph", `{"language":null}`: ""} {
		p, err := ParseUpdateParameters([]byte(in))
		if err != nil || p.Language != want {
			t.Errorf("ParseUpdateParameters(%s) = %+v, %v; want language %q", in, p, err, want)
		}
	}
	for _, bad := range []string{`{"language":""}`, `{"language":"english"}`, `{"language":"en_US"}`, `{"language":1}`, `[]`} {
		if _, err := ParseUpdateParameters([]byte(bad)); !errors.Is(err, ErrBadMessage) {
			t.Errorf("ParseUpdateParameters(%s) = %v, want ErrBadMessage", bad, err)
		}
	}
}
