package twilio

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseStreamStatus(t *testing.T) {
	const pub = "https://vb.example.com/twilio/stream-status"
	form := url.Values{"AccountSid": {"AC1"}, "CallSid": {"CA1"}, "StreamSid": {"MZ1"}, "StreamEvent": {"stream-error"},
		"StreamError": {"Stream - Protocol - Invalid Message"}, "Timestamp": {"2026-06-01T12:00:00.123Z"}}
	req := func(f url.Values, sig string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/twilio/stream-status", strings.NewReader(f.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set(SignatureHeader, sig)
		return r
	}
	v := NewValidator("tok")
	st, err := ParseStreamStatus(req(form, ComputeSignature("tok", pub, form)), v, pub)
	if err != nil {
		t.Fatal(err)
	}
	want := StreamStatus{AccountSID: "AC1", CallSID: "CA1", StreamSID: "MZ1", StreamName: "MZ1", Event: StreamError,
		Error: "Stream - Protocol - Invalid Message", Timestamp: time.Date(2026, 6, 1, 12, 0, 0, 123e6, time.UTC)}
	if *st != want {
		t.Errorf("got %+v", st)
	}
	if _, err := ParseStreamStatus(req(form, ComputeSignature("other", pub, form)), v, pub); !errors.Is(err, ErrSignature) {
		t.Errorf("bad signature: %v", err)
	}
	if _, err := ParseStreamStatus(req(form, ""), v, pub); !errors.Is(err, ErrSignature) {
		t.Errorf("missing signature: %v", err)
	}
	empty := url.Values{"CallSid": {"CA1"}}
	if _, err := ParseStreamStatus(req(empty, ComputeSignature("tok", pub, empty)), v, pub); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("empty callback: %v", err)
	}
	// GET callbacks sign the full URL.
	getURL := pub + "?StreamSid=MZ2&StreamEvent=stream-started&StreamName=vb"
	r := httptest.NewRequest(http.MethodGet, "/twilio/stream-status?StreamSid=MZ2&StreamEvent=stream-started&StreamName=vb", nil)
	r.Header.Set(SignatureHeader, ComputeSignature("tok", getURL, nil))
	st, err = ParseStreamStatus(r, v, getURL)
	if err != nil || st.StreamName != "vb" || st.Event != StreamStarted {
		t.Errorf("GET: %+v %v", st, err)
	}
}
