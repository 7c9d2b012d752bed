package flex

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"
	"unicode/utf8"

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
// POST (JSON or form; optional "FriendlyName" of the customer and
// "PreEngagementData", a JSON string of the pre-chat form) creates a
// conversation with POST /v2/WebChats and answers 201 with a
// WebChatResponse. The endpoint is anonymous, as the customer page is: put
// it behind your rate limiter. Failures answer {"error","code"}: 400
// "bad_request", 502 "twilio_unavailable" (the Flex API failed; logged).
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
			writeError(w, http.StatusMethodNotAllowed, "bad_request", "POST only")
			return
		}
		p, err := params(w, r)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "unreadable request body")
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
