package agent

import (
	"errors"
	"testing"
)

func TestNormalizeCallerID(t *testing.T) {
	ok := []struct{ in, want string }{
		{"+34911234567", "+34911234567"},
		{" 34911234567", "+34911234567"}, // "?caller=+349…" unencoded
		{"  34911234567", "+34911234567"},
		{"tel:+34911234567", "+34911234567"},
		{"TEL:+34 91 123 45 67", "+34911234567"},
		{"sip:+14155550100@pbx.example.com;user=phone", "+14155550100"},
		{"+1 (415) 555-0100", "+14155550100"},
		{"+1.415.555.0100", "+14155550100"},
		{"0034911234567", "+34911234567"},
	}
	for _, c := range ok {
		got, err := NormalizeCallerID(c.in)
		if err != nil || got != c.want {
			t.Errorf("NormalizeCallerID(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	bad := []string{"", "+", "anonymous", "client:alice", "911234567", "+0911234567",
		"+1234567890123456", "+34 91x", "sip:alice@example.com", "+34911234567+1", "\x00"}
	for _, in := range bad {
		if got, err := NormalizeCallerID(in); !errors.Is(err, ErrCallerID) {
			t.Errorf("NormalizeCallerID(%q) = %q, %v; want ErrCallerID", in, got, err)
		}
	}
}
