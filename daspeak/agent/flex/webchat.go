package flex

import (
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/internal/ownorigin"

	"github.com/voicegate/voicegate/twilio"
)

// MaxWebChatField bounds the customer's name and the pre-engagement data
// of a web chat request, in bytes.
const MaxWebChatField = 4096

// WebChatOptions configures WebChatHandler.
type WebChatOptions struct {
	// Client calls the Flex API (POST /v2/WebChats); required.
	Client *twilio.Client
	// AddressSID is the Conversations address ("IG…") configured for web
	// chat; required.
	AddressSID string
	// ServiceSID is the Conversations service ("IS…") the chat grant of the
	// customer's token names; required.
	ServiceSID string
	// AccountSID, APIKeySID and APIKeySecret sign the access tokens;
	// required.
	AccountSID   string
	APIKeySID    string
	APIKeySecret string
	// ChatFriendlyName names new conversations; default "Web chat".
	ChatFriendlyName string
	// UIVersion is sent as the Ui-Version header; optional.
	UIVersion string
	// TTL is the tokens' lifetime; default twilio.DefaultTokenTTL.
	TTL time.Duration
	// Region is written as the token's twr header; optional.
	Region string
	// AllowedOrigins are the origins ("https://www.example.com"), besides
	// the server's own, whose pages may start a chat: the customer chat
	// page's. A browser request from any other origin is refused (see
	// WebChatHandler).
	AllowedOrigins []string
	// Logger receives failures; nil discards them.
	Logger *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// WebChatResponse is the answer of WebChatHandler.
type WebChatResponse struct {
	// ConversationSID ("CH…") is the conversation the customer joins.
	ConversationSID string `json:"conversation_sid"`
	// Identity is the customer's Conversations identity.
	Identity string `json:"identity"`
	// Token is a Conversations access token (chat grant) for Identity.
	Token string `json:"token"`
	// ExpiresAt is when Token expires (RFC 3339, UTC).
	ExpiresAt time.Time `json:"expires_at"`
}

// WebChatHandler returns the bootstrap endpoint of a customer chat page:
// POST with a JSON body (Content-Type application/json, at most 64 KiB;
// optional "FriendlyName" of the customer and "PreEngagementData", a JSON
// string of the pre-chat form) creates a conversation with POST
// /v2/WebChats and answers 201 with a WebChatResponse.
//
// The endpoint is anonymous, as the customer page is: put it behind your
// rate limiter. So that no other web site can make its visitors' browsers
// start chats (cross-site request forgery), a request whose Origin is
// neither the server's own (the request's Host) nor one of
// AllowedOrigins, or that the browser marks Sec-Fetch-Site cross-site or
// same-site without such an Origin, is refused; and the body must be
// declared JSON, which a page of another origin can send only after a
// CORS preflight (Fetch Metadata, https://www.w3.org/TR/fetch-metadata/;
// CORS, https://fetch.spec.whatwg.org/#http-cors-protocol). Programs that
// send neither header are answered.
//
// Failures answer {"error","code"}: 400 "bad_request", 403
// "origin_not_allowed", 405 "method_not_allowed" (with Allow: POST), 413
// "too_large", 415 "unsupported_media_type", 502 "twilio_unavailable"
// (the Flex API failed; logged).
func WebChatHandler(opts *WebChatOptions) (http.Handler, error) {
	if opts == nil || opts.Client == nil || opts.AddressSID == "" || opts.ServiceSID == "" {
		return nil, fmt.Errorf("%w: WebChatOptions needs Client, AddressSID and ServiceSID", twilio.ErrInvalidArgument)
	}
	o := *opts
	if o.AccountSID == "" || o.APIKeySID == "" || o.APIKeySecret == "" {
		return nil, fmt.Errorf("%w: web chat tokens need AccountSID, APIKeySID and APIKeySecret", twilio.ErrInvalidArgument)
	}
	if o.TTL == 0 {
		o.TTL = twilio.DefaultTokenTTL
	}
	if o.TTL < 0 || o.TTL > twilio.MaxTokenTTL {
		return nil, fmt.Errorf("%w: got %v", twilio.ErrTTL, o.TTL)
	}
	if o.ChatFriendlyName == "" {
		o.ChatFriendlyName = "Web chat"
	}
	o.Logger = logger(o.Logger)
	if o.Now == nil {
		o.Now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, agent.CodeMethodNotAllowed, "POST only")
			return
		}
		if !originAllowed(r, o.AllowedOrigins) {
			o.Logger.Warn("web chat: refused a cross-site request", "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
			writeError(w, http.StatusForbidden, agent.CodeOriginNotAllowed, "web chats are started by the customer chat page's origin only")
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, CodeUnsupportedMediaType, "send the body as Content-Type: application/json")
			return
		}
		p, err := params(w, r)
		if err != nil {
			bodyError(w, err)
			return
		}
		name, pre := p["FriendlyName"], p["PreEngagementData"]
		if len(name) > MaxWebChatField || len(pre) > MaxWebChatField || !utf8.ValidString(name) || !utf8.ValidString(pre) {
			writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("FriendlyName and PreEngagementData: UTF-8, at most %d bytes", MaxWebChatField))
			return
		}
		if name == "" {
			name = "Customer"
		}
		chat, err := o.Client.CreateWebChat(r.Context(), &twilio.WebChatParams{
			AddressSID: o.AddressSID, ChatFriendlyName: o.ChatFriendlyName,
			CustomerFriendlyName: name, PreEngagementData: pre, UIVersion: o.UIVersion,
		})
		if err != nil {
			o.Logger.Error("web chat: POST /v2/WebChats", "err", err)
			writeError(w, http.StatusBadGateway, "twilio_unavailable", "could not start the chat")
			return
		}
		now := o.Now()
		at := &twilio.AccessToken{
			AccountSID: o.AccountSID, APIKeySID: o.APIKeySID, APIKeySecret: o.APIKeySecret,
			Identity: chat.Identity, TTL: o.TTL, Region: o.Region,
			Chat: &twilio.ChatGrant{ServiceSID: o.ServiceSID},
		}
		jwt, err := at.Sign(now)
		if err != nil {
			o.Logger.Error("web chat: signing", "err", err)
			writeError(w, http.StatusInternalServerError, "internal", "could not sign an access token")
			return
		}
		writeJSON(w, http.StatusCreated, WebChatResponse{
			ConversationSID: chat.ConversationSID, Identity: chat.Identity,
			Token: jwt, ExpiresAt: now.Add(o.TTL).UTC().Truncate(time.Second),
		})
	}), nil
}

// CodeUnsupportedMediaType is the error code of a 415 answer: a body not
// declared as the JSON the endpoint reads.
const CodeUnsupportedMediaType = "unsupported_media_type"

// originAllowed reports whether r may come from a browser page: its Origin,
// when sent, is the server's own (the request's Host, over https when this
// server terminates TLS: see ownorigin.Is) or one of allowed; without
// Origin, the browser did not mark it cross-site or same-site.
func originAllowed(r *http.Request, allowed []string) bool {
	if o := r.Header.Get("Origin"); o != "" {
		if slices.Contains(allowed, o) {
			return true
		}
		return ownorigin.Is(r, o)
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return false
	}
	return true
}

// extensionOrigin reports whether r comes from a browser extension: its
// Origin is an extension's, which no web page has.
func extensionOrigin(r *http.Request) bool {
	u, err := url.Parse(r.Header.Get("Origin"))
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "chrome-extension", "moz-extension", "safari-web-extension":
		return u.Host != ""
	}
	return false
}

// bodyError answers a body params could not read: 413 too_large over its
// limit, else 400 bad_request.
func bodyError(w http.ResponseWriter, err error) {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		writeError(w, http.StatusRequestEntityTooLarge, agent.CodeTooLarge, "request body larger than 64 KiB")
		return
	}
	writeError(w, http.StatusBadRequest, agent.CodeBadRequest, "unreadable request body")
}
