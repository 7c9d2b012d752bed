package twilio

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const (
	vecSK = "SKxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	vecAC = "ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	vecAP = "APxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	vecIS = "ISxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

	// Spec §6, produced by twilio-node 5.13.1 at 1700000000 with secret "secret".
	vecVoiceToken = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImN0eSI6InR3aWxpby1mcGE7dj0xIn0.eyJqdGkiOiJTS3h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4LTE3MDAwMDAwMDAiLCJncmFudHMiOnsiaWRlbnRpdHkiOiJhbGljZSIsInZvaWNlIjp7ImluY29taW5nIjp7ImFsbG93Ijp0cnVlfSwib3V0Z29pbmciOnsiYXBwbGljYXRpb25fc2lkIjoiQVB4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eCJ9fX0sImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoxNzAwMDAzNjAwLCJpc3MiOiJTS3h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4Iiwic3ViIjoiQUN4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eCJ9.5cbTQLci-KoewYEJxVZdKXhHajGs5B-UZRrhECb1gHs"
	vecChatSig    = "pZ6JGAW8_zO_--yE8jwogTvtHWZsftxf7pxucKfhCSs"
)

func decodeJWT(t *testing.T, tok, secret string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if got := base64.RawURLEncoding.EncodeToString(mac.Sum(nil)); got != parts[2] {
		t.Fatalf("signature %s does not verify (want %s)", parts[2], got)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	return header, claims
}

func TestAccessTokenVectors(t *testing.T) {
	now := time.Unix(1700000000, 0)
	voice := &AccessToken{AccountSID: vecAC, APIKeySID: vecSK, APIKeySecret: "secret", Identity: "alice",
		Voice: &VoiceGrant{IncomingAllow: true, OutgoingApplicationSID: vecAP}}
	got, err := voice.Sign(now)
	if err != nil {
		t.Fatal(err)
	}
	wh, wc := decodeJWT(t, vecVoiceToken, "secret")
	gh, gc := decodeJWT(t, got, "secret")
	if !reflect.DeepEqual(wh, gh) || !reflect.DeepEqual(wc, gc) {
		t.Fatalf("voice token differs:\n got %v %v\nwant %v %v", gh, gc, wh, wc)
	}
	if got != vecVoiceToken {
		t.Errorf("voice token not byte-identical:\n got %s\nwant %s", got, vecVoiceToken)
	}

	chat := &AccessToken{AccountSID: vecAC, APIKeySID: vecSK, APIKeySecret: "secret", Identity: "alice",
		Chat: &ChatGrant{ServiceSID: vecIS}}
	got, err = chat.Sign(now)
	if err != nil {
		t.Fatal(err)
	}
	_, cc := decodeJWT(t, got, "secret")
	wantGrants := map[string]any{"identity": "alice", "chat": map[string]any{"service_sid": vecIS}}
	if !reflect.DeepEqual(cc["grants"], wantGrants) {
		t.Errorf("chat grants = %v", cc["grants"])
	}
	if sig := got[strings.LastIndexByte(got, '.')+1:]; sig != vecChatSig {
		t.Errorf("chat signature %s, want %s", sig, vecChatSig)
	}
}

func TestAccessTokenTTL(t *testing.T) {
	now := time.Unix(1700000000, 0)
	base := AccessToken{AccountSID: vecAC, APIKeySID: vecSK, APIKeySecret: "s", Identity: "a"}
	for _, tc := range []struct {
		ttl     time.Duration
		wantExp int64
		wantErr error
	}{
		{0, 1700003600, nil},
		{5 * time.Minute, 1700000300, nil}, // never raised to 1 h
		{24 * time.Hour, 1700086400, nil},
		{24*time.Hour + time.Second, 0, ErrTTL},
		{-time.Second, 0, ErrTTL},
	} {
		tok := base
		tok.TTL = tc.ttl
		s, err := tok.Sign(now)
		if !errors.Is(err, tc.wantErr) {
			t.Fatalf("ttl %v: err %v, want %v", tc.ttl, err, tc.wantErr)
		}
		if err != nil {
			continue
		}
		_, c := decodeJWT(t, s, "s")
		if exp := int64(c["exp"].(float64)); exp != tc.wantExp {
			t.Errorf("ttl %v: exp %d, want %d", tc.ttl, exp, tc.wantExp)
		}
	}
	tok := base
	tok.Region = "ie1"
	tok.NotBefore = now
	tok.Voice = &VoiceGrant{OutgoingApplicationSID: vecAP, OutgoingParams: map[string]string{"k": "v"}}
	s, err := tok.Sign(now)
	if err != nil {
		t.Fatal(err)
	}
	h, c := decodeJWT(t, s, "s")
	if h["twr"] != "ie1" || h["cty"] != "twilio-fpa;v=1" || int64(c["nbf"].(float64)) != 1700000000 {
		t.Errorf("header %v claims %v", h, c)
	}
	v := c["grants"].(map[string]any)["voice"].(map[string]any)
	if _, ok := v["incoming"]; ok {
		t.Errorf("incoming present although not allowed: %v", v)
	}
	if !reflect.DeepEqual(v["outgoing"], map[string]any{"application_sid": vecAP, "params": map[string]any{"k": "v"}}) {
		t.Errorf("outgoing = %v", v["outgoing"])
	}
	if _, err := (&AccessToken{APIKeySID: vecSK}).Sign(now); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("missing fields: %v", err)
	}
}

func TestClientIdentity(t *testing.T) {
	id, err := ClientIdentity("ext_", "alice@example.com")
	if err != nil || id != "ext_alice@example.com" {
		t.Fatalf("%q %v", id, err)
	}
	if u, ok := ParseClientIdentity("ext_", "client:"+id); !ok || u != "alice@example.com" {
		t.Errorf("parse: %q %v", u, ok)
	}
	if _, ok := ParseClientIdentity("ext_", "client:web_alice"); ok {
		t.Error("foreign prefix accepted")
	}
	if _, ok := ParseClientIdentity("ext_", "ext_"); ok {
		t.Error("empty user accepted")
	}
	for _, bad := range []string{"", "a b", "a<b", strings.Repeat("x", 200)} {
		if _, err := ClientIdentity("ext_", bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%q: err %v", bad, err)
		}
	}
}
