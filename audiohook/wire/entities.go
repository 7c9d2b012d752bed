package wire

import (
	"encoding/json"
	"fmt"
)

// Entity types of event messages.
const (
	EntityTranscript  = "transcript"
	EntityAgentAssist = "agentassist"
)

// Transcript is the data of a transcript entity.
type Transcript struct {
	ID           string                  `json:"id"`
	ChannelID    int                     `json:"channelId"` // index into the selected channels
	IsFinal      bool                    `json:"isFinal"`
	Offset       Duration                `json:"offset"`
	Duration     Duration                `json:"duration"`
	Alternatives []TranscriptAlternative `json:"alternatives"`
}

// TranscriptAlternative is one alternative of a transcript.
type TranscriptAlternative struct {
	Confidence      float64                    `json:"confidence"`
	Languages       []string                   `json:"languages,omitempty"`
	Interpretations []TranscriptInterpretation `json:"interpretations"`
}

// TranscriptInterpretation is one interpretation (type "display").
type TranscriptInterpretation struct {
	Type       string            `json:"type"`
	Transcript string            `json:"transcript"`
	Tokens     []TranscriptToken `json:"tokens,omitempty"`
}

// TranscriptToken is one word of an interpretation.
type TranscriptToken struct {
	Type       string   `json:"type"` // "word"
	Value      string   `json:"value"`
	Confidence float64  `json:"confidence"`
	Offset     Duration `json:"offset"`
	Duration   Duration `json:"duration"`
	Language   string   `json:"language,omitempty"`
}

// AgentAssist is the data of an agentassist entity (experimental in the
// protocol).
type AgentAssist struct {
	ID          string           `json:"id"`
	Utterances  []Utterance      `json:"utterances,omitempty"`
	Suggestions []map[string]any `json:"suggestions,omitempty"`
}

// Utterance is one utterance of an agentassist entity.
type Utterance struct {
	ID         string    `json:"id"`
	Position   Duration  `json:"position"`
	Duration   *Duration `json:"duration,omitempty"`
	Text       string    `json:"text"`
	Language   string    `json:"language"`
	Confidence float64   `json:"confidence"`
	Channel    string    `json:"channel"` // "external" or "internal"
	IsFinal    bool      `json:"isFinal"`
}

// NewEntity returns an entity of any type whose data is v as JSON.
func NewEntity(typ string, v any) (Entity, error) {
	if typ == "" {
		return Entity{}, fmt.Errorf("audiohook: entity without type")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return Entity{}, fmt.Errorf("audiohook: entity %s: %w", typ, err)
	}
	return Entity{Type: typ, Data: b}, nil
}

// TranscriptEntity checks the required fields of t and returns it as an
// entity.
func TranscriptEntity(t Transcript) (Entity, error) {
	if !IsUUID(t.ID) || t.ChannelID < 0 || t.ChannelID > 1 || len(t.Alternatives) == 0 {
		return Entity{}, fmt.Errorf("audiohook: transcript needs a UUID id, channelId 0 or 1 and alternatives")
	}
	for _, a := range t.Alternatives {
		if a.Confidence < 0 || a.Confidence > 1 || len(a.Interpretations) == 0 {
			return Entity{}, fmt.Errorf("audiohook: transcript alternative needs confidence in [0,1] and interpretations")
		}
	}
	return NewEntity(EntityTranscript, t)
}

// AgentAssistEntity returns a as an entity.
func AgentAssistEntity(a AgentAssist) (Entity, error) {
	if a.ID == "" {
		return Entity{}, fmt.Errorf("audiohook: agentassist needs an id")
	}
	return NewEntity(EntityAgentAssist, a)
}
