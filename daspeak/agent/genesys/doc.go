// Package genesys connects the agent desk (package agent) to Genesys
// Cloud:
//
//   - Source keeps every monitored conversation's AudioHook session open
//     and drained, and attaches an operation to the customer's channel
//     from the moment of the agent's click (agent.Source); it knows the
//     caller from the session's participant ani (agent.CallInfo) and sends
//     each operation's result to Genesys as an AudioHook event message
//     (agent.ResultNotifier).
//   - Authenticator checks the agent's Genesys Cloud OAuth token with
//     GET /api/v2/users/me on the region's API host, and binds the agent
//     to the conversation (agent.CallAuthorizer): every call-scoped
//     request needs GET /api/v2/conversations/{conversationId} to answer
//     200 to the agent's own token (403 "forbidden" otherwise; an id
//     that is not a conversation UUID is 400 "bad_request", Genesys not
//     asked), so a valid Genesys user cannot act on a conversation they
//     cannot see.
//     The caller is the AudioHook session's ANI: a conversation whose ANI
//     is not a telephone number (withheld) cannot be registered, verified
//     or deleted on.
//   - WidgetPage is the page a Genesys Cloud Interaction Widget loads
//     (conversationId, gcHostOrigin, gcTargetEnv, langTag in its URL): it
//     logs the agent in (Authorization Code grant with PKCE at
//     login.<region>) and embeds the <voicegate-agent> widget.
//   - Region and APIBaseURL map gcHostOrigin / gcTargetEnv to a region's
//     hosts, accepting known Genesys Cloud domains only.
//
// # Wiring
//
//	src := genesys.NewSource(nil)
//	// AudioHook endpoint: accept, open, then hand the session over.
//	mux.HandleFunc("GET /api/v1/audiohook/ws", func(w http.ResponseWriter, r *http.Request) {
//		sess, err := audiohook.Accept(w, r, &hookOpts)
//		if err != nil {
//			return
//		}
//		defer sess.Close()
//		if _, err := sess.Open(ctx); err == nil {
//			src.Run(ctx, sess) // until the conversation ends
//		}
//	})
//	auth, _ := genesys.NewAuthenticator(&genesys.AuthenticatorOptions{APIBaseURL: "https://api.mypurecloud.ie"})
//	api, _ := agent.NewServer(&agent.Options{Source: src, Authenticator: auth, …})
//	page, _ := genesys.WidgetPage(&genesys.WidgetPageOptions{ClientID: "…", Region: "mypurecloud.ie"})
//	mux.Handle("/agent/", api)
//	mux.Handle("GET "+genesys.DefaultWidgetPath, page)
//
// The examples/audiohook-server command does this with -agent.
package genesys
