package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// ProtocolVersion is the AudioHook protocol version of these messages.
const ProtocolVersion = "2"

// MaxTextMessage is the largest text message either side accepts, in bytes.
// Larger messages are answered with disconnect "error" (server) or error 413
// (client).
const MaxTextMessage = 65535

// Message types.
const (
	TypeOpen              = "open"
	TypeOpened            = "opened"
	TypePing              = "ping"
	TypePong              = "pong"
	TypeClose             = "close"
	TypeClosed            = "closed"
	TypePause             = "pause"
	TypePaused            = "paused"
	TypeResume            = "resume"
	TypeResumed           = "resumed"
	TypeDiscarded         = "discarded"
	TypeUpdate            = "update"
	TypeUpdated           = "updated"
	TypeEvent             = "event"
	TypeError             = "error"
	TypeDisconnect        = "disconnect"
	TypeReconnect         = "reconnect"
	TypeDTMF              = "dtmf"
	TypePlaybackStarted   = "playback_started"
	TypePlaybackCompleted = "playback_completed"
)

// Disconnect reasons.
const (
	ReasonCompleted    = "completed"
	ReasonUnauthorized = "unauthorized"
	ReasonError        = "error"
)

// Close reasons.
const (
	CloseEnd        = "end"
	CloseError      = "error"
	CloseDisconnect = "disconnect"
	CloseReconnect  = "reconnect"
)

// Channel names of MediaParameter.Channels.
const (
	ChannelExternal = "external"
	ChannelInternal = "internal"
)

// Media formats.
const (
	FormatPCMU = "PCMU"
	FormatL16  = "L16"
)

// Header names of the upgrade request.
const (
	HeaderOrganizationID = "Audiohook-Organization-Id"
	HeaderSessionID      = "Audiohook-Session-Id"
	HeaderCorrelationID  = "Audiohook-Correlation-Id"
	HeaderAPIKey         = "X-API-KEY"
	HeaderSignature      = "Signature"
	HeaderSignatureInput = "Signature-Input"
)

// Message is one AudioHook text message. Fields that one direction does not
// carry are zero: ServerSeq and Position belong to client messages,
// ClientSeq to server messages.
type Message struct {
	Version    string
	Type       string
	ID         string
	Seq        int64
	ServerSeq  int64
	ClientSeq  int64
	Position   time.Duration
	Parameters json.RawMessage
}

type wireMessage struct {
	Version    *string         `json:"version"`
	Type       *string         `json:"type"`
	ID         *string         `json:"id"`
	Seq        *json.Number    `json:"seq"`
	ServerSeq  *json.Number    `json:"serverseq"`
	ClientSeq  *json.Number    `json:"clientseq"`
	Position   *string         `json:"position"`
	Parameters json.RawMessage `json:"parameters"`
}

func badMessage(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadMessage}, args...)...)
}

func parseSeq(name string, n *json.Number) (int64, error) {
	if n == nil {
		return 0, badMessage("missing %s", name)
	}
	v, err := strconv.ParseInt(string(*n), 10, 64)
	if err != nil || v < 0 {
		return 0, badMessage("%s %.20q is not an integer >= 0", name, string(*n))
	}
	return v, nil
}

// ParseClientMessage parses a message sent by a client (Genesys) and checks
// its envelope: version "2", a type, a UUID id, seq and serverseq integers,
// a valid position and a parameters object.
func ParseClientMessage(b []byte) (*Message, error) { return parseMessage(b, true) }

// ParseServerMessage parses a message sent by a server and checks its
// envelope: version "2", a type, a UUID id, seq and clientseq integers and a
// parameters object.
func ParseServerMessage(b []byte) (*Message, error) { return parseMessage(b, false) }

func parseMessage(b []byte, fromClient bool) (*Message, error) {
	if len(b) > MaxTextMessage {
		return nil, badMessage("message of %d bytes > %d", len(b), MaxTextMessage)
	}
	var w wireMessage
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&w); err != nil {
		return nil, badMessage("invalid JSON: %v", err)
	}
	if d.More() {
		return nil, badMessage("trailing data after JSON object")
	}
	m := &Message{}
	switch {
	case w.Version == nil:
		return nil, badMessage("missing version")
	case *w.Version != ProtocolVersion:
		return nil, badMessage("unsupported version %.20q", *w.Version)
	case w.Type == nil || *w.Type == "":
		return nil, badMessage("missing type")
	case w.ID == nil:
		return nil, badMessage("missing id")
	case !IsUUID(*w.ID):
		return nil, badMessage("id %.40q is not a UUID", *w.ID)
	}
	m.Version, m.Type, m.ID = *w.Version, *w.Type, *w.ID
	var err error
	if m.Seq, err = parseSeq("seq", w.Seq); err != nil {
		return nil, err
	}
	if fromClient {
		if m.ServerSeq, err = parseSeq("serverseq", w.ServerSeq); err != nil {
			return nil, err
		}
		if w.Position == nil {
			return nil, badMessage("missing position")
		}
		if m.Position, err = parseDuration(*w.Position); err != nil {
			return nil, badMessage("position: %v", err)
		}
	} else if m.ClientSeq, err = parseSeq("clientseq", w.ClientSeq); err != nil {
		return nil, err
	}
	p := bytes.TrimSpace(w.Parameters)
	if len(p) == 0 || p[0] != '{' {
		return nil, badMessage("missing parameters object")
	}
	m.Parameters = p
	return m, nil
}

// MediaParameter describes one audio format: offered by the client in open,
// selected by the server in opened.
type MediaParameter struct {
	Type     string   `json:"type"`
	Format   string   `json:"format"`
	Channels []string `json:"channels"`
	Rate     int      `json:"rate"`
}

// Equal reports whether m and o are the same entry, channel order included.
func (m MediaParameter) Equal(o MediaParameter) bool {
	if m.Type != o.Type || m.Format != o.Format || m.Rate != o.Rate || len(m.Channels) != len(o.Channels) {
		return false
	}
	for i := range m.Channels {
		if m.Channels[i] != o.Channels[i] {
			return false
		}
	}
	return true
}

func (m MediaParameter) validate() error {
	if m.Type != "audio" {
		return badMessage("media type %.20q is not audio", m.Type)
	}
	if m.Format != FormatPCMU && m.Format != FormatL16 {
		return badMessage("media format %.20q is not PCMU or L16", m.Format)
	}
	if m.Rate != 8000 {
		return badMessage("media rate %d is not 8000", m.Rate)
	}
	if len(m.Channels) < 1 || len(m.Channels) > 2 {
		return badMessage("media has %d channels, want 1 or 2", len(m.Channels))
	}
	for i, c := range m.Channels {
		if c != ChannelExternal && c != ChannelInternal {
			return badMessage("media channel %.20q", c)
		}
		if i == 1 && c == m.Channels[0] {
			return badMessage("media channel %q twice", c)
		}
	}
	return nil
}

// Media parameters of the formats the parsers accept (PCMU or L16 at 8000 Hz,
// one or two channels).
var (
	MediaPCMUStereo   = MediaParameter{Type: "audio", Format: FormatPCMU, Channels: []string{ChannelExternal, ChannelInternal}, Rate: 8000}
	MediaPCMUExternal = MediaParameter{Type: "audio", Format: FormatPCMU, Channels: []string{ChannelExternal}, Rate: 8000}
	MediaPCMUInternal = MediaParameter{Type: "audio", Format: FormatPCMU, Channels: []string{ChannelInternal}, Rate: 8000}
	MediaL16Stereo    = MediaParameter{Type: "audio", Format: FormatL16, Channels: []string{ChannelExternal, ChannelInternal}, Rate: 8000}
	MediaL16External  = MediaParameter{Type: "audio", Format: FormatL16, Channels: []string{ChannelExternal}, Rate: 8000}
	MediaL16Internal  = MediaParameter{Type: "audio", Format: FormatL16, Channels: []string{ChannelInternal}, Rate: 8000}
)

// Participant is the open parameter naming the call's participant.
type Participant struct {
	ID      string `json:"id"`
	ANI     string `json:"ani"`
	ANIName string `json:"aniName"`
	DNIS    string `json:"dnis"`
}

// ContinuedSession names a session continued on a new connection.
type ContinuedSession struct {
	ID        string `json:"id"`
	ServerSeq int64  `json:"serverseq"`
	ClientSeq int64  `json:"clientseq"`
}

// OpenParameters are the parameters of an open message.
type OpenParameters struct {
	OrganizationID     string             `json:"organizationId"`
	ConversationID     string             `json:"conversationId"`
	Participant        Participant        `json:"participant"`
	Media              []MediaParameter   `json:"media"`
	Language           string             `json:"language,omitempty"`
	SupportedLanguages bool               `json:"supportedLanguages,omitempty"`
	CustomConfig       json.RawMessage    `json:"customConfig,omitempty"`
	ContinuedSessions  []ContinuedSession `json:"continuedSessions,omitempty"`
	// InputVariables are the Architect input variables. Genesys sends
	// strings, but a value may be any JSON value: a string is kept as
	// is, any other value as its JSON text (1 → "1", {"k":true} →
	// `{"k":true}`). RawInputVariables holds every value exactly as sent.
	InputVariables    map[string]string          `json:"inputVariables,omitempty"`
	RawInputVariables map[string]json.RawMessage `json:"-"`
}

type wireOpen struct {
	OrganizationID *string `json:"organizationId"`
	ConversationID *string `json:"conversationId"`
	Participant    *struct {
		ID      *string `json:"id"`
		ANI     *string `json:"ani"`
		ANIName *string `json:"aniName"`
		DNIS    *string `json:"dnis"`
	} `json:"participant"`
	Media              *[]MediaParameter  `json:"media"`
	Language           *string            `json:"language"`
	SupportedLanguages *bool              `json:"supportedLanguages"`
	CustomConfig       json.RawMessage    `json:"customConfig"`
	ContinuedSessions  []ContinuedSession `json:"continuedSessions"`
	InputVariables     json.RawMessage    `json:"inputVariables"`
}

// ParseOpenParameters parses and validates the parameters of open.
func ParseOpenParameters(b []byte) (*OpenParameters, error) {
	var w wireOpen
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, badMessage("open parameters: %v", err)
	}
	p := &OpenParameters{}
	switch {
	case w.OrganizationID == nil:
		return nil, badMessage("open: missing organizationId")
	case !IsUUID(*w.OrganizationID):
		return nil, badMessage("open: organizationId %.40q is not a UUID", *w.OrganizationID)
	case w.ConversationID == nil:
		return nil, badMessage("open: missing conversationId")
	case !IsUUID(*w.ConversationID):
		return nil, badMessage("open: conversationId %.40q is not a UUID", *w.ConversationID)
	case w.Participant == nil:
		return nil, badMessage("open: missing participant")
	case w.Participant.ID == nil || w.Participant.ANI == nil || w.Participant.ANIName == nil || w.Participant.DNIS == nil:
		return nil, badMessage("open: participant needs id, ani, aniName and dnis")
	case !IsUUID(*w.Participant.ID):
		return nil, badMessage("open: participant id %.40q is not a UUID", *w.Participant.ID)
	case w.Media == nil:
		return nil, badMessage("open: missing media")
	}
	p.OrganizationID, p.ConversationID = *w.OrganizationID, *w.ConversationID
	p.Participant = Participant{ID: *w.Participant.ID, ANI: *w.Participant.ANI, ANIName: *w.Participant.ANIName, DNIS: *w.Participant.DNIS}
	p.Media = *w.Media
	for i, m := range p.Media {
		if err := m.validate(); err != nil {
			return nil, fmt.Errorf("open: media[%d]: %w", i, err)
		}
	}
	if w.Language != nil {
		if !validLanguage(*w.Language) {
			return nil, badMessage("open: language %.20q", *w.Language)
		}
		p.Language = *w.Language
	}
	if w.SupportedLanguages != nil {
		p.SupportedLanguages = *w.SupportedLanguages
	}
	if c := bytes.TrimSpace(w.CustomConfig); len(c) > 0 && !bytes.Equal(c, []byte("null")) {
		if c[0] != '{' {
			return nil, badMessage("open: customConfig is not an object")
		}
		p.CustomConfig = c
	}
	for i, cs := range w.ContinuedSessions {
		if !IsUUID(cs.ID) || cs.ServerSeq < 0 || cs.ClientSeq < 0 {
			return nil, badMessage("open: continuedSessions[%d] invalid", i)
		}
	}
	p.ContinuedSessions = w.ContinuedSessions
	if v := bytes.TrimSpace(w.InputVariables); len(v) > 0 && !bytes.Equal(v, []byte("null")) {
		if err := json.Unmarshal(v, &p.RawInputVariables); err != nil {
			return nil, badMessage("open: inputVariables is not an object")
		}
		p.InputVariables = make(map[string]string, len(p.RawInputVariables))
		for k, raw := range p.RawInputVariables {
			var str string
			if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &str) == nil {
				p.InputVariables[k] = str
			} else {
				p.InputVariables[k] = string(raw)
			}
		}
	}
	return p, nil
}

// validLanguage matches ^[a-z]{2,3}-[A-Za-z]{2,3}$.
func validLanguage(s string) bool {
	i := 0
	for i < len(s) && s[i] >= 'a' && s[i] <= 'z' {
		i++
	}
	if i < 2 || i > 3 || i >= len(s) || s[i] != '-' {
		return false
	}
	r := s[i+1:]
	if len(r) < 2 || len(r) > 3 {
		return false
	}
	for j := 0; j < len(r); j++ {
		c := r[j] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

// OpenedParameters are the parameters of an opened message.
type OpenedParameters struct {
	Media              []MediaParameter `json:"media"`
	StartPaused        bool             `json:"startPaused,omitempty"`
	DiscardTo          *Duration        `json:"discardTo,omitempty"`
	SupportedLanguages []string         `json:"supportedLanguages,omitempty"`
}

// ParseOpenedParameters parses and validates the parameters of opened.
func ParseOpenedParameters(b []byte) (*OpenedParameters, error) {
	var w struct {
		Media              *[]MediaParameter `json:"media"`
		StartPaused        *bool             `json:"startPaused"`
		DiscardTo          *Duration         `json:"discardTo"`
		SupportedLanguages []string          `json:"supportedLanguages"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, badMessage("opened parameters: %v", err)
	}
	if w.Media == nil {
		return nil, badMessage("opened: missing media")
	}
	p := &OpenedParameters{Media: *w.Media, DiscardTo: w.DiscardTo, SupportedLanguages: w.SupportedLanguages}
	if w.StartPaused != nil {
		p.StartPaused = *w.StartPaused
	}
	return p, nil
}

// Entity is one entity of an event message.
type Entity struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// EventParameters are the parameters of an event message.
type EventParameters struct {
	Entities []Entity `json:"entities"`
}

// ErrorParameters are the parameters of an error message (client to server).
type ErrorParameters struct {
	Code       int       `json:"code"`
	Message    string    `json:"message"`
	RetryAfter *Duration `json:"retryAfter,omitempty"`
}

// DisconnectParameters are the parameters of a disconnect message.
type DisconnectParameters struct {
	Reason          string            `json:"reason"`
	Info            string            `json:"info,omitempty"`
	OutputVariables map[string]string `json:"outputVariables,omitempty"`
}

// ResumedParameters are the parameters of resumed and discarded messages:
// the position where the gap began and its length.
type ResumedParameters struct {
	Start     Duration `json:"start"`
	Discarded Duration `json:"discarded"`
}

// ParseResumedParameters parses the parameters of resumed or discarded;
// both fields are required.
func ParseResumedParameters(b []byte) (*ResumedParameters, error) {
	var w struct {
		Start     *Duration `json:"start"`
		Discarded *Duration `json:"discarded"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, badMessage("%v", err)
	}
	if w.Start == nil || w.Discarded == nil {
		return nil, badMessage("missing start or discarded")
	}
	return &ResumedParameters{Start: *w.Start, Discarded: *w.Discarded}, nil
}

// UpdateParameters are the parameters of an update message. Language is ""
// when the update does not change it.
type UpdateParameters struct {
	Language string `json:"language,omitempty"`
}

// ParseUpdateParameters parses the parameters of update; a language, when
// present, has the form of open's (ll-CC, as "en-US").
func ParseUpdateParameters(b []byte) (*UpdateParameters, error) {
	var w struct {
		Language *string `json:"language"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, badMessage("update parameters: %v", err)
	}
	if w.Language == nil {
		return &UpdateParameters{}, nil
	}
	if !validLanguage(*w.Language) {
		return nil, badMessage("update: language %.20q", *w.Language)
	}
	return &UpdateParameters{Language: *w.Language}, nil
}

// CloseParameters are the parameters of a close message.
type CloseParameters struct {
	Reason string `json:"reason"`
}
