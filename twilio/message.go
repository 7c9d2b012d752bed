package twilio

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
)

// Event names of the Media Streams protocol.
const (
	eventConnected = "connected"
	eventStart     = "start"
	eventMedia     = "media"
	eventDTMF      = "dtmf"
	eventMark      = "mark"
	eventStop      = "stop"
)

// maxTimestampMS bounds media.timestamp (about 34 years) so that converting
// it to a time.Duration cannot overflow.
const maxTimestampMS = 1 << 40

var (
	errMalformed = errors.New("malformed message")
	errSlowPath  = errors.New("needs full decode")
	errNotJSON   = errors.New("not valid JSON")
	errNotBase64 = errors.New("media.payload is not base64")
)

// mediaMsg is the decoded form of a media event. Its byte slices alias the
// message buffer or the caller's payload buffer.
type mediaMsg struct {
	track     []byte
	timestamp int64
	chunk     int64
	payload   []byte // decoded μ-law
}

// wireMsg is the full decode of any event, used for rare events and as the
// fallback for media messages the fast scanner declines.
type wireMsg struct {
	Event          lenientString `json:"event"`
	SequenceNumber lenientString `json:"sequenceNumber"`
	StreamSid      lenientString `json:"streamSid"`
	Protocol       lenientString `json:"protocol"`
	Version        lenientString `json:"version"`
	Start          *wireStart    `json:"start"`
	Media          *wireMedia    `json:"media"`
	DTMF           *wireDTMF     `json:"dtmf"`
	Mark           *wireMark     `json:"mark"`
	Stop           *wireStop     `json:"stop"`
}

type wireStart struct {
	StreamSid        lenientString            `json:"streamSid"`
	AccountSid       lenientString            `json:"accountSid"`
	CallSid          lenientString            `json:"callSid"`
	Tracks           []lenientString          `json:"tracks"`
	CustomParameters map[string]lenientString `json:"customParameters"`
	MediaFormat      struct {
		Encoding   lenientString `json:"encoding"`
		SampleRate lenientString `json:"sampleRate"`
		Channels   lenientString `json:"channels"`
	} `json:"mediaFormat"`
}

type wireMedia struct {
	Track     lenientString `json:"track"`
	Chunk     lenientString `json:"chunk"`
	Timestamp lenientString `json:"timestamp"`
	Payload   lenientString `json:"payload"`
}

type wireDTMF struct {
	Track lenientString `json:"track"`
	Digit lenientString `json:"digit"`
}

type wireMark struct {
	Name lenientString `json:"name"`
}

type wireStop struct {
	AccountSid lenientString `json:"accountSid"`
	CallSid    lenientString `json:"callSid"`
}

// lenientString accepts a JSON string, number, boolean or null and keeps its
// text, so that "8000" and 8000 read the same.
type lenientString string

func (s *lenientString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return errMalformed
	}
	switch b[0] {
	case '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = lenientString(v)
	case '{', '[':
		return fmt.Errorf("%w: object where a string was expected", errMalformed)
	case 'n':
		*s = ""
	default:
		*s = lenientString(b)
	}
	return nil
}

// parseInt parses a non-negative decimal integer written as a string or as
// a JSON number (a fraction part of zeros is accepted).
func parseInt(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > 20 {
		return 0, false
	}
	var n int64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if n > (1<<62)/10 {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	if i == 0 {
		return 0, false
	}
	if i < len(s) {
		if s[i] != '.' {
			return 0, false
		}
		for i++; i < len(s); i++ {
			if s[i] != '0' {
				return 0, false
			}
		}
	}
	return n, true
}

// scanMedia decodes a media event from msg into m without allocating; the
// payload is base64-decoded into buf (which must hold len(payload)*3/4
// bytes; the caller sizes it). It returns errSlowPath when msg is not a
// plain media event the scanner handles (another event, escapes in the
// strings it needs, or anything unusual), in which case the caller decodes
// msg with decodeFull.
func scanMedia(msg []byte, buf []byte, m *mediaMsg) (event []byte, err error) {
	sc := scanner{b: msg}
	sc.ws()
	if !sc.consume('{') {
		return nil, errSlowPath
	}
	var track, ts, chunk, payload []byte
	haveMedia := false
	first := true
	for {
		sc.ws()
		if sc.consume('}') {
			break
		}
		if !first && !sc.consume(',') {
			return nil, errSlowPath
		}
		first = false
		sc.ws()
		key, ok := sc.str()
		if !ok {
			return nil, errSlowPath
		}
		sc.ws()
		if !sc.consume(':') {
			return nil, errSlowPath
		}
		sc.ws()
		switch string(key) {
		case "event":
			v, ok := sc.str()
			if !ok {
				return nil, errSlowPath
			}
			event = v
		case "media":
			if !sc.consume('{') {
				return nil, errSlowPath
			}
			haveMedia = true
			inFirst := true
			for {
				sc.ws()
				if sc.consume('}') {
					break
				}
				if !inFirst && !sc.consume(',') {
					return nil, errSlowPath
				}
				inFirst = false
				sc.ws()
				k, ok := sc.str()
				if !ok {
					return nil, errSlowPath
				}
				sc.ws()
				if !sc.consume(':') {
					return nil, errSlowPath
				}
				sc.ws()
				switch string(k) {
				case "track":
					if track, ok = sc.str(); !ok {
						return nil, errSlowPath
					}
				case "payload":
					if payload, ok = sc.str(); !ok {
						return nil, errSlowPath
					}
				case "timestamp":
					if ts, _, ok = sc.scalar(); !ok {
						return nil, errSlowPath
					}
				case "chunk":
					if chunk, _, ok = sc.scalar(); !ok {
						return nil, errSlowPath
					}
				default:
					if !sc.skip() {
						return nil, errSlowPath
					}
				}
			}
		default:
			if !sc.skip() {
				return nil, errSlowPath
			}
		}
	}
	sc.ws()
	if sc.i != len(sc.b) {
		return nil, errSlowPath
	}
	if string(event) != eventMedia {
		return event, errSlowPath
	}
	if !haveMedia {
		return event, errMalformed
	}
	return event, fillMedia(m, track, ts, chunk, payload, buf)
}

func fillMedia(m *mediaMsg, track, ts, chunk, payload, buf []byte) error {
	m.track = track
	t, ok := parseInt(ts)
	if !ok || t >= maxTimestampMS {
		return fmt.Errorf("%w: media.timestamp %q", errMalformed, truncate(ts))
	}
	m.timestamp = t
	m.chunk, _ = parseInt(chunk)
	n, err := decodeBase64(buf, payload)
	if err != nil {
		return fmt.Errorf("%w: %w: %v", errMalformed, errNotBase64, err)
	}
	m.payload = buf[:n]
	return nil
}

// decodeBase64 decodes standard base64 with or without padding.
func decodeBase64(dst, src []byte) (int, error) {
	for len(src) > 0 && src[len(src)-1] == '=' {
		src = src[:len(src)-1]
	}
	if base64.RawStdEncoding.DecodedLen(len(src)) > len(dst) {
		return 0, fmt.Errorf("payload of %d base64 bytes exceeds buffer of %d", len(src), len(dst))
	}
	return base64.RawStdEncoding.Decode(dst, src)
}

// malformedReason is the close reason sent for a malformed message: short,
// fixed text that echoes none of the peer's data.
func malformedReason(err error) string {
	switch {
	case errors.Is(err, errNotJSON):
		return "message is not valid JSON"
	case errors.Is(err, errNotBase64):
		return "media payload is not base64"
	}
	return "malformed message"
}

func truncate(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "…"
	}
	return string(b)
}

// decodeFull decodes any event with encoding/json.
func decodeFull(msg []byte, w *wireMsg) error {
	*w = wireMsg{}
	if err := json.Unmarshal(msg, w); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fmt.Errorf("%w: %w: %v", errMalformed, errNotJSON, err)
		}
		return fmt.Errorf("%w: %v", errMalformed, err)
	}
	return nil
}

// scanner is a minimal, allocation-free JSON tokenizer for the fast path.
// It declines (returns false) anything it does not handle; the caller then
// falls back to encoding/json, which also rejects invalid JSON.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) consume(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes and returns its contents.
func (s *scanner) str() ([]byte, bool) {
	if !s.consume('"') {
		return nil, false
	}
	start := s.i
	s.i = special(s.b, s.i)
	if s.i < len(s.b) && s.b[s.i] == '"' {
		v := s.b[start:s.i]
		s.i++
		return v, true
	}
	return nil, false // an escape, a control character or no end
}

// special returns the index of the first byte at or after i in b that is
// '"', '\\' or a control character (below 0x20), or len(b). It tests eight
// bytes at a time (a media payload is about 216 bytes of base64): with the
// byte-at-a-time loop it replaced, scanner.str took 12.3% of the server's
// CPU at 1,000 streams, 3.6% with it, and scanMedia as a whole 25.5% and
// 12.2% (perf record -g -p PID on the server of go run
// ./internal/loadtest/cmd/vgload -kind twilio -n 1000 -duration 10s, the
// two builds in one session).
func special(b []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(b); i += 8 {
		w := binary.LittleEndian.Uint64(b[i:])
		q := w ^ (ones * '"')
		e := w ^ (ones * '\\')
		// A byte's high bit is set in m where it is zero in q or e or
		// below 0x20 in w; a borrow can only set bits above the first
		// such byte, so the lowest bit set marks it exactly.
		m := ((q - ones) &^ q) | ((e - ones) &^ e) | ((w - ones*0x20) &^ w)
		if m &= highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return i
}

// scalar reads a string or a number.
func (s *scanner) scalar() (v []byte, isNum bool, ok bool) {
	if s.i < len(s.b) && s.b[s.i] == '"' {
		v, ok = s.str()
		return v, false, ok
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	if s.i == start {
		return nil, true, false
	}
	return s.b[start:s.i], true, true
}

// skip skips one value of any kind, iteratively (no recursion, so deep
// nesting cannot exhaust the stack).
func (s *scanner) skip() bool {
	depth := 0
	for {
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch c := s.b[s.i]; c {
		case '{', '[':
			depth++
			s.i++
			continue
		case '}', ']':
			if depth == 0 {
				return false
			}
			depth--
			s.i++
		case '"':
			if !s.skipString() {
				return false
			}
		case ',', ':':
			if depth == 0 {
				return false
			}
			s.i++
			continue
		default:
			start := s.i
			for s.i < len(s.b) {
				c := s.b[s.i]
				if c == ',' || c == '}' || c == ']' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '{' || c == '[' {
					break
				}
				s.i++
			}
			if s.i == start {
				return false
			}
		}
		if depth == 0 {
			return true
		}
	}
}

func (s *scanner) skipString() bool {
	s.i++ // opening quote
	for {
		s.i = special(s.b, s.i)
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case '"':
			s.i++
			return true
		case '\\':
			s.i += 2
		default:
			s.i++ // a control character: encoding/json rejects it later
		}
	}
}

// parseIntString parses a lenientString as an int.
func parseIntString(s lenientString) (int64, bool) {
	return parseInt([]byte(s))
}
