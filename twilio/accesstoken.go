package twilio

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Access token lifetimes.
const (
	DefaultTokenTTL = time.Hour
	MaxTokenTTL     = 24 * time.Hour
)

// VoiceGrant lets a Voice SDK client receive and place calls.
type VoiceGrant struct {
	// IncomingAllow lets the client receive calls to its identity.
	IncomingAllow bool
	// OutgoingApplicationSID is the TwiML App ("AP…") that handles calls
	// the client places; OutgoingParams are passed to it.
	OutgoingApplicationSID string
	OutgoingParams         map[string]string
	// PushCredentialSID ("CR…") enables mobile push notifications.
	PushCredentialSID string
	// EndpointID identifies the device.
	EndpointID string
}

// ChatGrant gives access to a Conversations (or Programmable Chat) service.
type ChatGrant struct {
	ServiceSID        string
	EndpointID        string
	DeploymentRoleSID string
	PushCredentialSID string
}

// AccessToken is a Twilio access token for a client SDK: an HS256 JWT
// signed with an API key secret (not the auth token).
type AccessToken struct {
	// AccountSID ("AC…"), APIKeySID ("SK…") and APIKeySecret are required.
	AccountSID   string
	APIKeySID    string
	APIKeySecret string
	// Identity is the client's identity, required by the Voice and
	// Conversations SDKs.
	Identity string
	// TTL is the lifetime, DefaultTokenTTL when zero. It must not exceed
	// MaxTokenTTL; short lifetimes are kept as given, never raised.
	TTL time.Duration
	// NotBefore, when set, is written as the nbf claim.
	NotBefore time.Time
	// Region, when set, is written as the twr header.
	Region string
	// Voice and Chat are the grants; nil ones are omitted.
	Voice *VoiceGrant
	Chat  *ChatGrant
}

type jwtHeader struct {
	Alg string `json:"alg"`
	Typ string `json:"typ"`
	Cty string `json:"cty"`
	Twr string `json:"twr,omitempty"`
}

type jwtClaims struct {
	Jti    string    `json:"jti"`
	Grants jwtGrants `json:"grants"`
	Iat    int64     `json:"iat"`
	Nbf    int64     `json:"nbf,omitempty"`
	Exp    int64     `json:"exp"`
	Iss    string    `json:"iss"`
	Sub    string    `json:"sub"`
}

type jwtGrants struct {
	Identity string        `json:"identity,omitempty"`
	Voice    *jwtVoice     `json:"voice,omitempty"`
	Chat     *jwtChatGrant `json:"chat,omitempty"`
}

type jwtVoice struct {
	Incoming          *jwtIncoming `json:"incoming,omitempty"`
	Outgoing          *jwtOutgoing `json:"outgoing,omitempty"`
	PushCredentialSID string       `json:"push_credential_sid,omitempty"`
	EndpointID        string       `json:"endpoint_id,omitempty"`
}

type jwtIncoming struct {
	Allow bool `json:"allow"`
}

type jwtOutgoing struct {
	ApplicationSID string            `json:"application_sid"`
	Params         map[string]string `json:"params,omitempty"`
}

type jwtChatGrant struct {
	ServiceSID        string `json:"service_sid,omitempty"`
	EndpointID        string `json:"endpoint_id,omitempty"`
	DeploymentRoleSID string `json:"deployment_role_sid,omitempty"`
	PushCredentialSID string `json:"push_credential_sid,omitempty"`
}

// Sign returns the token as a JWT issued at now. Claims are written in the
// order Twilio's Node helper writes them (jti, grants, iat, nbf, exp, iss,
// sub), so a token is byte for byte reproducible.
func (t *AccessToken) Sign(now time.Time) (string, error) {
	if t.AccountSID == "" || t.APIKeySID == "" || t.APIKeySecret == "" {
		return "", fmt.Errorf("%w: access token needs AccountSID, APIKeySID and APIKeySecret", ErrInvalidArgument)
	}
	ttl := t.TTL
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < 0 || ttl > MaxTokenTTL {
		return "", fmt.Errorf("%w: got %v", ErrTTL, ttl)
	}
	h := jwtHeader{Alg: "HS256", Typ: "JWT", Cty: "twilio-fpa;v=1", Twr: t.Region}
	c := jwtClaims{
		Jti: fmt.Sprintf("%s-%d", t.APIKeySID, now.Unix()),
		Iat: now.Unix(),
		Exp: now.Add(ttl).Unix(),
		Iss: t.APIKeySID,
		Sub: t.AccountSID,
	}
	if !t.NotBefore.IsZero() {
		c.Nbf = t.NotBefore.Unix()
	}
	c.Grants.Identity = t.Identity
	if v := t.Voice; v != nil {
		jv := &jwtVoice{PushCredentialSID: v.PushCredentialSID, EndpointID: v.EndpointID}
		if v.IncomingAllow {
			jv.Incoming = &jwtIncoming{Allow: true}
		}
		if v.OutgoingApplicationSID != "" {
			jv.Outgoing = &jwtOutgoing{ApplicationSID: v.OutgoingApplicationSID, Params: v.OutgoingParams}
		}
		c.Grants.Voice = jv
	}
	if g := t.Chat; g != nil {
		c.Grants.Chat = &jwtChatGrant{ServiceSID: g.ServiceSID, EndpointID: g.EndpointID,
			DeploymentRoleSID: g.DeploymentRoleSID, PushCredentialSID: g.PushCredentialSID}
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString(hb) + "." + enc.EncodeToString(cb)
	mac := hmac.New(sha256.New, []byte(t.APIKeySecret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil)), nil
}

// MaxIdentityLength is the longest client identity the Voice SDK accepts.
const MaxIdentityLength = 121

// ClientIdentity joins prefix and user into a Voice SDK client identity, for
// a token service that issues tokens to, say, a browser-extension softphone
// and must keep its identities apart from other clients' ("ext_" + "alice").
// Both parts may use letters, digits and "_-.@"; the result must fit
// MaxIdentityLength.
func ClientIdentity(prefix, user string) (string, error) {
	if user == "" {
		return "", fmt.Errorf("%w: empty user", ErrInvalidArgument)
	}
	id := prefix + user
	if len(id) > MaxIdentityLength {
		return "", fmt.Errorf("%w: identity of %d characters exceeds %d", ErrInvalidArgument, len(id), MaxIdentityLength)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.@", r)) {
			return "", fmt.Errorf("%w: character %q not allowed in identity %q", ErrInvalidArgument, r, id)
		}
	}
	return id, nil
}

// ParseClientIdentity is the inverse of ClientIdentity for the From or To
// value of a call placed by or to a client ("client:ext_alice"): it returns
// the user part when the identity carries prefix.
func ParseClientIdentity(prefix, from string) (user string, ok bool) {
	id := strings.TrimPrefix(from, "client:")
	if !strings.HasPrefix(id, prefix) || len(id) == len(prefix) {
		return "", false
	}
	return id[len(prefix):], true
}
