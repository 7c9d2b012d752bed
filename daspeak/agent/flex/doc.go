// Package flex connects the agent desk (package agent) to Twilio Flex:
//
//   - Authenticator checks the agent's Flex token with Twilio IAM
//     (twilio.FlexValidator) and tells an invalid token (the agent's
//     problem) from Twilio refusing the server's own credentials or being
//     unreachable (the operator's problem).
//   - Guard, in front of the agent API, answers 503 "auth_unavailable"
//     instead of 401 when the server's own Twilio credentials fail a
//     token check.
//   - Source gets a call's customer audio for one operation: it starts a
//     Media Stream on the call over the Streams REST API with a signed
//     binding parameter, accepts the WebSocket Twilio opens (Source is the
//     http.Handler of the stream URL), hands it to the operation that
//     asked for it and to no other, and stops the stream over REST when the
//     operation ends.
//   - VoiceTokenHandler issues Voice SDK access tokens to a browser
//     extension softphone in exchange for a Flex token, under an identity
//     prefix that keeps the extension apart from the Flex tab.
//   - WebChatHandler bootstraps a Flex web chat for a customer page:
//     POST /v2/WebChats and a Conversations access token.
//
// # Stream binding
//
// Twilio's upgrade signature proves only that Twilio opened the
// WebSocket, not which operation it belongs to, and custom parameters can
// be set by anyone able to write TwiML on the account. Source therefore
// signs (operation id, call SID, caller id, stream name) into a
// short-lived token sent as the stream's "binding" parameter and checks it
// against the start message: a stream can only feed the operation that
// requested it.
package flex
