package twilio

import (
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"7", 7 * time.Second},
		{" 12 ", 12 * time.Second},
		{"999999999", 24 * time.Hour},
		{"Sun, 29 Nov 2026 10:00:30 GMT", 30 * time.Second},
		{"Sunday, 29-Nov-26 10:01:00 GMT", time.Minute},
		{"Sun, 29 Nov 2026 09:00:00 GMT", 0},
		{"soon", 0},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestRetryBackoffBounds(t *testing.T) {
	p := newRetryPolicy(0, 100*time.Millisecond, time.Second, 0, time.Second)
	if p.maxRetries != DefaultMaxRetries || p.maxRetryAfter != DefaultMaxRetryAfter {
		t.Fatalf("defaults %+v", p)
	}
	for attempt, hi := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		hi *= time.Millisecond
		if hi > time.Second {
			hi = time.Second
		}
		for range 50 {
			if d := p.wait(attempt); d < hi/2 || d > hi {
				t.Fatalf("attempt %d: wait %v outside [%v, %v]", attempt, d, hi/2, hi)
			}
		}
	}
	if d := p.wait(200); d < 500*time.Millisecond || d > time.Second {
		t.Errorf("attempt 200: wait %v", d)
	}
	if newRetryPolicy(-1, 0, 0, 0, time.Second).maxRetries != 0 {
		t.Error("negative MaxRetries does not disable retries")
	}
}
