package twilio

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxParameterLength bounds a <Parameter>: its name and value together must
// be shorter than this many characters.
const MaxParameterLength = 500

// Track values of <Stream track> and the REST Track parameter.
const (
	TrackInbound  = "inbound_track"
	TrackOutbound = "outbound_track"
	TrackBoth     = "both_tracks"
)

// Parameter is a <Parameter> of a <Stream>, or a ParameterN pair of the REST
// API; it arrives in Start.CustomParameters.
type Parameter struct {
	Name  string
	Value string
}

// StreamNoun is a <Stream>. Empty fields are omitted.
type StreamNoun struct {
	// Name identifies the stream within the call, to stop it later.
	Name string
	// URL is the wss:// URL Twilio connects to. It must not have a query
	// string; pass data in Parameters.
	URL string
	// Track is TrackInbound (Twilio's default), TrackOutbound or TrackBoth.
	// <Connect><Stream> only streams the inbound track.
	Track string
	// StatusCallback is an absolute URL for stream-started, stream-stopped
	// and stream-error callbacks; StatusCallbackMethod is GET or POST.
	StatusCallback       string
	StatusCallbackMethod string
	// Parameters become <Parameter> children, in order.
	Parameters []Parameter
}

// TwiML builds a TwiML <Response> document. Verbs are written in the order
// they are added, attributes in a fixed order, and text and attribute values
// are escaped. The first error (for example a parameter that is too long) is
// kept and returned by String; later calls are ignored.
type TwiML struct {
	b   strings.Builder
	err error
}

// NewTwiML starts a <Response>.
func NewTwiML() *TwiML {
	t := &TwiML{}
	t.b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><Response>`)
	return t
}

// StartStream adds <Start><Stream …/></Start>: a unidirectional stream that
// runs while the call goes on with the next verb.
func (t *TwiML) StartStream(s StreamNoun) *TwiML {
	return t.wrapStream("Start", s)
}

// ConnectStream adds <Connect><Stream …/></Connect>: a bidirectional stream
// that blocks the call until the server closes the WebSocket; the verbs
// after it then run. End with Hangup (or an explicit continuation) so the
// caller is not left on a silent line, or use ConnectStreamWith and an
// action URL.
func (t *TwiML) ConnectStream(s StreamNoun) *TwiML {
	return t.ConnectStreamWith(s, ConnectOptions{})
}

// ConnectOptions are the attributes of <Connect>
// (https://www.twilio.com/docs/voice/twiml/connect). Empty fields are
// omitted.
type ConnectOptions struct {
	// Action is the absolute or relative URL Twilio requests when
	// <Connect> ends (for <Stream>: when the server closes the WebSocket),
	// with Twilio's standard request parameters; the TwiML it answers
	// continues the call and the verbs after <Connect> never run. Without
	// Action, Twilio goes on with the next verb and ends the call if there
	// is none.
	Action string
	// Method is how Twilio requests Action: "GET" or "POST" (Twilio's
	// default). Any other value is an ErrInvalidArgument.
	Method string
}

// ConnectStreamWith adds <Connect action="…" method="…"><Stream …/></Connect>,
// a ConnectStream whose end makes Twilio request o.Action.
func (t *TwiML) ConnectStreamWith(s StreamNoun, o ConnectOptions) *TwiML {
	if t.err != nil {
		return t
	}
	if err := checkMethod("<Connect>", o.Method); err != nil {
		t.err = err
		return t
	}
	return t.wrapStream("Connect", s, "action", o.Action, "method", o.Method)
}

// Redirect adds <Redirect method="…">url</Redirect>
// (https://www.twilio.com/docs/voice/twiml/redirect): Twilio requests url
// and runs the TwiML it answers; verbs after it never run. method is "GET",
// "POST" or "" (Twilio's default, POST). An empty url or another method is
// an ErrInvalidArgument.
func (t *TwiML) Redirect(url, method string) *TwiML {
	if t.err != nil {
		return t
	}
	if url == "" {
		t.err = fmt.Errorf("%w: <Redirect> needs a url", ErrInvalidArgument)
		return t
	}
	if err := checkMethod("<Redirect>", method); err != nil {
		t.err = err
		return t
	}
	t.b.WriteString("<Redirect")
	attr(&t.b, "method", method)
	t.b.WriteString(">")
	escape(&t.b, url, false)
	t.b.WriteString("</Redirect>")
	return t
}

func checkMethod(verb, m string) error {
	switch m {
	case "", "GET", "POST":
		return nil
	}
	return fmt.Errorf("%w: %s method %q (want GET or POST)", ErrInvalidArgument, verb, m)
}

// StopStream adds <Stop><Stream name="…"/></Stop>.
func (t *TwiML) StopStream(name string) *TwiML {
	if t.err != nil {
		return t
	}
	if name == "" {
		t.err = fmt.Errorf("%w: <Stop><Stream> needs a name", ErrInvalidArgument)
		return t
	}
	t.b.WriteString("<Stop><Stream")
	attr(&t.b, "name", name)
	t.b.WriteString("/></Stop>")
	return t
}

// Say adds <Say>text</Say>.
func (t *TwiML) Say(text string) *TwiML {
	if t.err == nil {
		t.b.WriteString("<Say>")
		escape(&t.b, text, false)
		t.b.WriteString("</Say>")
	}
	return t
}

// Pause adds <Pause length="seconds"/>.
func (t *TwiML) Pause(seconds int) *TwiML {
	if t.err == nil {
		t.b.WriteString("<Pause")
		attr(&t.b, "length", strconv.Itoa(seconds))
		t.b.WriteString("/>")
	}
	return t
}

// Hangup adds <Hangup/>.
func (t *TwiML) Hangup() *TwiML {
	if t.err == nil {
		t.b.WriteString("<Hangup/>")
	}
	return t
}

// String closes the document and returns it, or the first error.
func (t *TwiML) String() (string, error) {
	if t.err != nil {
		return "", t.err
	}
	return t.b.String() + "</Response>", nil
}

// wrapStream writes <verb attrs…><Stream …/></verb>; verbAttrs are name,
// value pairs.
func (t *TwiML) wrapStream(verb string, s StreamNoun, verbAttrs ...string) *TwiML {
	if t.err != nil {
		return t
	}
	if err := checkStream(s.URL, s.Parameters); err != nil {
		t.err = err
		return t
	}
	t.b.WriteString("<" + verb)
	for i := 0; i+1 < len(verbAttrs); i += 2 {
		attr(&t.b, verbAttrs[i], verbAttrs[i+1])
	}
	t.b.WriteString("><Stream")
	attr(&t.b, "name", s.Name)
	attr(&t.b, "url", s.URL)
	attr(&t.b, "track", s.Track)
	attr(&t.b, "statusCallback", s.StatusCallback)
	attr(&t.b, "statusCallbackMethod", s.StatusCallbackMethod)
	if len(s.Parameters) == 0 {
		t.b.WriteString("/>")
	} else {
		t.b.WriteString(">")
		for _, p := range s.Parameters {
			t.b.WriteString("<Parameter")
			attr(&t.b, "name", p.Name)
			attr(&t.b, "value", p.Value)
			t.b.WriteString("/>")
		}
		t.b.WriteString("</Stream>")
	}
	t.b.WriteString("</" + verb + ">")
	return t
}

func checkStream(u string, params []Parameter) error {
	if u == "" {
		return fmt.Errorf("%w: stream url is empty", ErrInvalidArgument)
	}
	if strings.ContainsRune(u, '?') {
		return fmt.Errorf("%w: %q", ErrQueryInStreamURL, u)
	}
	for _, p := range params {
		if p.Name == "" {
			return fmt.Errorf("%w: parameter without a name", ErrInvalidArgument)
		}
		if n := len([]rune(p.Name)) + len([]rune(p.Value)); n >= MaxParameterLength {
			return fmt.Errorf("%w: %q has %d", ErrParameterTooLong, p.Name, n)
		}
	}
	return nil
}

func attr(b *strings.Builder, name, value string) {
	if value == "" {
		return
	}
	b.WriteByte(' ')
	b.WriteString(name)
	b.WriteString(`="`)
	escape(b, value, true)
	b.WriteByte('"')
}

func escape(b *strings.Builder, s string, inAttr bool) {
	for _, r := range s {
		switch r {
		case '&':
			b.WriteString("&amp;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&apos;")
		case '\n', '\r', '\t':
			if inAttr {
				fmt.Fprintf(b, "&#x%X;", r)
			} else {
				b.WriteRune(r)
			}
		default:
			if r < 0x20 {
				// Not allowed in XML 1.0.
				b.WriteRune(0xFFFD)
				continue
			}
			b.WriteRune(r)
		}
	}
}
