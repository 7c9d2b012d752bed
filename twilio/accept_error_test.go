package twilio_test

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/voicegate/voicegate/twilio"
)

// TestAcceptRefusalIsJSON: a refused Media Streams upgrade answers the
// SDK's JSON error, as every other endpoint of a server does.
func TestAcceptRefusalIsJSON(t *testing.T) {
	r := httptest.NewRequest("GET", "https://voice.example.com/twilio/media", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	r.Header.Set(twilio.SignatureHeader, "forged")
	w := httptest.NewRecorder()
	_, err := twilio.Accept(w, r, &twilio.AcceptOptions{PublicURL: "wss://voice.example.com/twilio/media", AuthTokens: []string{"token"}})
	if !errors.Is(err, twilio.ErrSignature) {
		t.Fatalf("err %v", err)
	}
	if w.Code != 403 || w.Header().Get("Content-Type") != "application/json" || w.Body.String() != `{"code":"forbidden","error":"invalid signature"}`+"\n" {
		t.Fatalf("%d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
}
