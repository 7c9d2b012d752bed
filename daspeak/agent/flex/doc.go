// Package flex connects the agent desk (package agent) to Twilio Flex:
//
//   - Authenticator checks the agent's Flex token with Twilio IAM
//     (twilio.FlexValidator) and tells an invalid token (the agent's
//     problem) from Twilio refusing the server's own credentials or being
//     unreachable (the operator's problem).
//     Its server-side failures wrap agent.ErrAuthUnavailable, so the
//     agent API answers them 503 "auth_unavailable" instead of 401.
//   - Assignment (an agent.CallAuthorizer; Assigned joins it to an
//     Authenticator) keeps each agent to their own calls: it asks
//     TaskRouter for the worker's accepted reservations and their tasks'
//     call_sid attribute. TaskRouter failing, or a workspace it does not
//     know, is the server's fault (503 "auth_unavailable"), never a 403.
//   - Source gets a call's customer audio for one operation: it starts a
//     Media Stream on the call over the Streams REST API with a signed
//     binding parameter, accepts the WebSocket Twilio opens (Source is the
//     http.Handler of the stream URL), hands it to the operation that
//     asked for it and to no other, and stops the stream over REST when the
//     operation ends.
//     Source also implements agent.CallInfo (Call): the call's customer
//     number and status from Twilio's Calls API, which the agent server
//     uses to tie every request's caller_id to the call it names.
//   - VoiceTokenHandler issues Voice SDK access tokens to a browser
//     extension softphone in exchange for a Flex token, under an identity
//     prefix that keeps the extension apart from the Flex tab.
//   - WebChatHandler bootstraps a Flex web chat for a customer page:
//     POST /v2/WebChats and a Conversations access token.
//
// # What the agent API checks, and what it does not
//
// Checked: the Flex token (Authenticator: it is a valid token of a user of
// this account's Flex); with Assigned, that the agent is on the call
// (Assignment: the worker SID of their token holds an accepted
// reservation of an assigned task whose call_sid is the request's call,
// on every call-scoped request, stop included); the call (Source.Call:
// the CallSid exists on this account and is in progress); the caller (the
// request's caller_id is the call's customer number, so one call's voice
// is never recorded under another number, and delete and status only
// concern the call's own customer); the audio (the stream binding below).
//
// Not checked: that the agent is on the call, when the server uses
// Authenticator alone. A Flex token proves a Flex user, not a reservation
// on the task of this call, so any agent of the account can then act on
// any live call of the account whose CallSid they know (CallSids are not
// secret to agents: Flex shows them); the starter server
// (examples/twilio-flex) refuses to start that way unless told
// -any-agent-any-call. With Assignment: an agent keeps access to a call
// for up to AssignmentOptions.CacheTTL (5 s) after their reservation
// ends; a task without call_sid (an outbound call from the Flex dialpad,
// whose task names the customer as outbound_to) authorizes no call; a
// supervisor monitoring a call holds no reservation and is refused.
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
