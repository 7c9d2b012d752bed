package flex_test

import (
	"log/slog"
	"net/http"
	"os"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/agent/flex"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/twilio"
)

// A Flex agent desk: the agent API authenticated with Flex tokens, each
// agent kept to the calls of their own accepted TaskRouter tasks, the
// Media Streams endpoint, and the voice-client token service.
func Example() {
	acct, authToken := os.Getenv("TWILIO_ACCOUNT_SID"), os.Getenv("TWILIO_AUTH_TOKEN")
	log := slog.Default()
	tc, err := twilio.NewClient(&twilio.ClientOptions{AccountSID: acct, AuthToken: authToken})
	if err != nil {
		log.Error("twilio", "err", err)
		return
	}
	fv, err := twilio.NewFlexValidator(&twilio.FlexValidatorOptions{AccountSID: acct, AuthToken: authToken})
	if err != nil {
		log.Error("flex", "err", err)
		return
	}
	auth := flex.NewAuthenticator(fv, log)
	assignment, err := flex.NewAssignment(&flex.AssignmentOptions{Client: tc, WorkspaceSID: os.Getenv("TWILIO_WORKSPACE_SID"), Logger: log})
	if err != nil {
		log.Error("taskrouter", "err", err)
		return
	}
	src, err := flex.NewSource(&flex.SourceOptions{
		Client: tc, StreamURL: "wss://vb.example.com/twilio/media", AuthTokens: []string{authToken}, Logger: log,
	})
	if err != nil {
		log.Error("source", "err", err)
		return
	}
	defer src.Close()
	api, err := agent.NewServer(&agent.Options{
		Engine: offline.New(nil), Store: &agent.CredentialStore{Store: credstore.NewMemory()},
		Source: src, Authenticator: flex.Assigned(auth, assignment), AllowedOrigins: []string{"https://flex.twilio.com"},
	})
	if err != nil {
		log.Error("agent", "err", err)
		return
	}
	voice, err := flex.VoiceTokenHandler(&flex.VoiceTokenOptions{
		Auth: auth, AccountSID: acct, APIKeySID: os.Getenv("TWILIO_API_KEY"), APIKeySecret: os.Getenv("TWILIO_API_SECRET"),
		IdentityPrefix: "ext_",
	})
	if err != nil {
		log.Error("voice tokens", "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/agent/", api)
	mux.Handle("GET /twilio/media", src)
	mux.Handle("POST /flex/voice-token", voice)
	_ = http.ListenAndServe("127.0.0.1:8080", mux)
}
