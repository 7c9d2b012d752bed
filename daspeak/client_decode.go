package daspeak

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"
)

// maxErrorBody bounds APIError.Body and the text taken from a non-JSON
// error body into APIError.Message.
const (
	maxErrorBody    = 64 << 10
	maxErrorMessage = 200
)

// parseAPIError turns an error response into an *APIError. It accepts the
// das-Peak body {"exception": …, "error": …}, the gateway's {"message": …}
// and anything else (an HTML page from a proxy), from which a short text is
// kept as the message.
func parseAPIError(status int, body []byte) *APIError {
	e := &APIError{Status: status}
	if len(body) > maxErrorBody {
		e.Body = bytes.Clone(body[:maxErrorBody])
	} else {
		e.Body = bytes.Clone(body)
	}
	var env struct {
		Exception json.RawMessage `json:"exception"`
		Error     json.RawMessage `json:"error"`
		Message   json.RawMessage `json:"message"`
	}
	if json.Unmarshal(body, &env) == nil {
		e.Exception = jsonText(env.Exception)
		e.Message = jsonText(env.Error)
		if e.Message == "" {
			e.Message = jsonText(env.Message)
		}
		if e.Exception == ExceptionVoiceDurationIsNotEnough {
			e.Detected, e.Required = parseVoiceDuration(e.Message)
		}
		if e.Exception != "" || e.Message != "" {
			return e
		}
	}
	e.Message = summarize(status, body)
	return e
}

// jsonText returns a JSON string's value, or the compact JSON text of any
// other value ("" for absent or null).
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	t := strings.TrimSpace(string(raw))
	if t == "null" {
		return ""
	}
	return clipText(t, maxErrorMessage)
}

// summarize makes a one-line message from a non-JSON error body: the status
// text, then the body's text with markup and runs of space removed.
func summarize(status int, body []byte) string {
	msg := http.StatusText(status)
	if msg == "" {
		msg = fmt.Sprintf("status %d", status)
	}
	var b strings.Builder
	inTag := false
	space := false
	for _, r := range strings.ToValidUTF8(string(body[:min(len(body), 4*maxErrorMessage)]), "") {
		switch {
		case r == '<':
			inTag = true
		case r == '>':
			inTag = false
			space = true
		case inTag:
		case r < ' ' || r == ' ' || r == utf8.RuneError:
			space = true
		default:
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(r)
		}
	}
	if t := b.String(); t != "" && t != msg {
		msg += ": " + clipText(t, maxErrorMessage)
	}
	return msg
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// decodeResponse decodes a das-Peak success body into out. das-Peak sends
// flat objects ({"version": "1", "score": …}); a body whose only keys are
// "data" (an object) and optionally "version" is unwrapped first, as the
// generic envelope of the Veridas documentation shows. A 2xx body carrying
// an "exception" is returned as an *APIError.
func decodeResponse(status int, body []byte, out any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return fmt.Errorf("%w: HTTP %d body is not a JSON object: %q", ErrMalformedResponse, status, clipText(string(trimmed), 64))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &top); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedResponse, err)
	}
	if exc := jsonText(top["exception"]); exc != "" {
		return parseAPIError(status, body)
	}
	if data, ok := top["data"]; ok {
		_, hasVersion := top["version"]
		d := bytes.TrimSpace(data)
		isObject := len(d) > 0 && d[0] == '{'
		if isObject && (len(top) == 1 || (len(top) == 2 && hasVersion)) {
			trimmed = d
		}
	}
	if err := json.Unmarshal(trimmed, out); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedResponse, err)
	}
	return nil
}
