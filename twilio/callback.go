package twilio

import (
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Stream status callback events (StreamEvent).
const (
	StreamStarted = "stream-started"
	StreamStopped = "stream-stopped"
	StreamError   = "stream-error"
)

// StreamStatus is a stream status callback, sent on start, stop and error
// to the statusCallback of a <Stream> or REST stream.
type StreamStatus struct {
	AccountSID string
	CallSID    string
	StreamSID  string
	// StreamName defaults to StreamSID when the stream has no name.
	StreamName string
	// Event is StreamStarted, StreamStopped or StreamError.
	Event string
	// Error describes a stream-error.
	Error string
	// Timestamp is when the event happened (zero if absent or unparsable).
	Timestamp time.Time
}

// ParseStreamStatus validates the X-Twilio-Signature of a stream status
// callback received at publicURL (the statusCallback URL as configured,
// https:// and with its query, if any) and parses it. POST callbacks carry
// form parameters, GET callbacks query parameters. A nil validator skips
// the signature check (tests only). A bad signature returns an error
// wrapping ErrSignature; answer it with HTTP 403.
func ParseStreamStatus(r *http.Request, v *Validator, publicURL string) (*StreamStatus, error) {
	if v != nil {
		if err := v.ValidateRequest(r, publicURL); err != nil {
			return nil, err
		}
	}
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("%w: form: %v", ErrInvalidArgument, err)
	}
	var f url.Values
	if r.Method == http.MethodPost {
		f = r.PostForm
	} else {
		f = r.URL.Query()
	}
	st := &StreamStatus{
		AccountSID: f.Get("AccountSid"),
		CallSID:    f.Get("CallSid"),
		StreamSID:  f.Get("StreamSid"),
		StreamName: f.Get("StreamName"),
		Event:      f.Get("StreamEvent"),
		Error:      f.Get("StreamError"),
	}
	if st.StreamName == "" {
		st.StreamName = st.StreamSID
	}
	if ts := f.Get("Timestamp"); ts != "" {
		for _, layout := range []string{time.RFC3339Nano, time.RFC1123Z} {
			if t, err := time.Parse(layout, ts); err == nil {
				st.Timestamp = t
				break
			}
		}
	}
	if st.StreamSID == "" || st.Event == "" {
		return nil, fmt.Errorf("%w: callback without StreamSid or StreamEvent", ErrInvalidArgument)
	}
	return st, nil
}
