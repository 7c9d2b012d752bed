package genesys_test

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/voicegate/voicegate/audiohook"
	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/agent/genesys"
	"github.com/voicegate/voicegate/daspeak/offline"
)

// A Genesys Cloud agent desk: every AudioHook Monitor session stays open
// in the Source; agents log in through the interaction widget page and
// start operations on their conversation.
func Example() {
	ctx := context.Background() // a server's lifetime context
	log := slog.Default()
	keys, err := audiohook.KeysFromEnv("STATIC_API_KEY_MAP")
	if err != nil {
		log.Error("keys", "err", err)
		return
	}
	src := genesys.NewSource(&genesys.SourceOptions{Logger: log})
	region, err := genesys.Region("https://apps.mypurecloud.ie", "")
	if err != nil {
		log.Error("region", "err", err)
		return
	}
	apiURL, _ := genesys.APIBaseURL(region)
	auth, err := genesys.NewAuthenticator(&genesys.AuthenticatorOptions{APIBaseURL: apiURL, Logger: log})
	if err != nil {
		log.Error("auth", "err", err)
		return
	}
	api, err := agent.NewServer(&agent.Options{
		Engine: offline.New(nil), Store: &agent.CredentialStore{Store: credstore.NewMemory()},
		Source: src, Authenticator: auth,
	})
	if err != nil {
		log.Error("agent", "err", err)
		return
	}
	page, err := genesys.WidgetPage(&genesys.WidgetPageOptions{ClientID: "<oauth client id>", Region: region})
	if err != nil {
		log.Error("page", "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/audiohook/ws", func(w http.ResponseWriter, r *http.Request) {
		sess, err := audiohook.Accept(w, r, &audiohook.ServerOptions{Keys: keys})
		if err != nil {
			return
		}
		defer sess.Close()
		if _, err := sess.Open(ctx); err == nil {
			src.Run(ctx, sess) // until Genesys closes the conversation's session
		}
	})
	mux.Handle("/agent/", api)
	mux.Handle("GET "+genesys.DefaultWidgetPath, page)
	_ = http.ListenAndServe("127.0.0.1:8080", mux)
}
