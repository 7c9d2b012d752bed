// Package agent is the agent desk of voicegate as a library: an HTTP API
// that a contact-center agent's widget calls to register, verify,
// re-verify and delete a caller's voice during a live call, with one event
// stream per operation; the credential-store adapter; and the plumbing the
// starter servers share (engine selection, flags, graceful shutdown).
//
// It is platform-neutral: a [Source] gets a call's audio and an
// [Authenticator] checks the agent's token. The Twilio Flex adapters live
// in daspeak/agent/flex, the Genesys Cloud ones in daspeak/agent/genesys;
// this package imports neither, and the protocol packages (twilio,
// audiohook) know nothing of biometrics.
//
// # Operations
//
// An operation is one register or verify of one caller on one call. It
// has an unguessable id ("op_" and 32 hex digits), runs a daspeak session
// over the call's audio and ends with exactly one terminal event. A call
// runs one operation at a time: register and verify on a busy call answer
// 409 "busy"; a re-verify first ends the running operation with
// error-cancelled, then starts a fresh one. A register succeeds only after
// its credential reached the store; otherwise it ends with error-store. (A
// register cancelled while its credential was being written may have
// stored it: status tells.) Delete ends the operations of the call and of
// the caller first, then removes the credential and every stored copy of
// the enrolment audio.
//
// # HTTP API
//
// Every path is under the base path (default "/agent"); bodies are JSON;
// every POST carries "Authorization: Bearer <token>", checked by the
// server's Authenticator (401 after the same minimum delay whatever
// failed; 503 auth_unavailable, after the same delay, when the failure was
// the server's own: [ErrAuthUnavailable]).
//
//	method, path                          body                                          answer
//	GET  {base}/voicegate-agent.js        –                                             the widget (no auth)
//	POST {base}/status                    {"call_id","caller_id"}                       200 {"call_id","caller_id","registered","registered_at",
//	                                                                                        "call_in_progress","operation_running"?,
//	                                                                                        "last_operation"?}
//	POST {base}/register                  {"call_id","caller_id","request_id"?,"audio_total_duration"?,
//	                                       "authenticity_threshold"?,"model_hash"?}     202 {"operation_id","kind":"register","call_id","caller_id","events_url"}
//	POST {base}/verify                    {"call_id","caller_id","request_id"?,"audio_total_duration"?,
//	                                       "authenticity_threshold"?,"score_threshold"?} 202 as register, "kind":"verify"
//	POST {base}/reverify                  as verify                                     202: always a fresh operation
//	POST {base}/delete                    {"call_id","caller_id"}                       200 {"deleted":true,"audio_deleted","caller_id"}
//	POST {base}/stop                      {"operation_id"}                              200 {"operation_id","stopped"}
//	POST {base}/stop                      {"call_id","request_id"}                      200 {"call_id","request_id","fenced",
//	                                                                                        "operation_id"?,"stopped","result"?}
//	POST {base}/stop                      {"call_id"} (best effort)                     200 {"call_id","stopped"}
//	GET  {base}/operations/{id}/events?token=…  –                                       text/event-stream
//
// Status's registered_at is when the caller's credential record was
// created (RFC 3339, UTC; null when not registered): a delete and a
// register between two reads change it, so a page that showed a result
// can tell the registration it was checked against from a new one. An
// overwrite of the record keeps it. Where the operation log keeps a
// summary per call ([oplog.CallSummarizer]: [oplog.Memory] does; a
// cluster's log that does not answers neither field), status also says
// whether an operation runs on the call (operation_running) and which
// of the caller's operations on it ended last: last_operation
// {"operation_id","operation","result","time"} (result is its terminal
// event, time RFC 3339 UTC) or null, so that a page showing an earlier
// result learns that another check ran on the call.
//
// Delete's deleted is true when the delete removed a credential record;
// with a Store that implements credstore.Remover (the built-in ones) it
// is the store's own word, so a record another node stored meanwhile is
// counted. audio_deleted is true when a file of the caller's enrolment
// audio was removed: false when the server keeps no enrolment audio
// ([CredentialStore].AudioDir empty) or none was kept for the caller.
// A delete reaches only the audio in its own AudioDir: servers sharing a
// Store must share AudioDir for a delete to remove every copy.
//
// caller_id is normalised to E.164 ([NormalizeCallerID]). A Source that
// implements [CallInfo] binds it to the call: register, verify, reverify
// and delete need a live call whose caller is the caller_id (an empty one
// takes the call's), else 409 no_call or 400 bad_caller_id and nothing
// happens; status says registered only for the call's own caller, and
// answers a call that ended (or is unknown) asked without a caller_id
// with call_in_progress false and caller_id "", not 400. A
// Source without CallInfo takes caller_id on trust: see [Source] for what
// that lets an agent do. An Authenticator that implements
// [CallAuthorizer] is also asked whether the agent may act on the call
// (403 forbidden otherwise; a call_id that is not in the platform's form,
// [ErrBadCallID], is 400 bad_request whoever asks); without it any
// authenticated agent may act on any call. Every check happens before
// anything changes: a refused re-verify leaves the running operation
// alone. A start is checked in this order: the request's form (400),
// the agent's right to the call (401, 403, 503), with a request_id and a
// CallInfo Source that the call exists (409 no_call: a call the Source
// does not know claims nothing), its request_id's claim
// (409 fenced, 409 request_id_used, 429 too_many_requests), then the call
// and the caller (409 no_call, 400 bad_caller_id, 409 already_registered,
// 404 not_registered, 409 busy): a start a stop fenced out is answered
// fenced whatever else would refuse it.
// request_id is the client's id of a start: 8 to 64 letters, digits and
// "-" (the widget sends a crypto.randomUUID()), else 400 bad_request; one
// id serves one start on a call (another start naming it on that call is
// refused 409 request_id_used). Ids are per call: a stop, authorized for
// its own call only, never fences a start on another. A stop by call_id and request_id is for a client
// that never got the operation id (the answer of its start was lost: a
// proxy's 5xx, no answer, a 2xx whose body was cut) and is a fence: the
// start claims its request id once the agent is authorized on the call,
// before anything about the call is read and before it reserves its call
// (so before a re-verify ends the call's running operation) and before
// anything runs, the stop claims the same id, and the first wins, on any
// node ([oplog.Log.ClaimRequest]). A claim is never evicted by other
// traffic: it is kept max(Retain, [oplog.MinRequestRetain]) (10 minutes
// at least), and an agent (Principal.Subject) holds at most
// [oplog.MaxSubjectRequests] (64) request ids at once on a call, a call
// at most [oplog.MaxCallRequests] (256) in all: a start or stop naming a
// new one beyond either is refused 429 too_many_requests with
// Retry-After (nothing starts, nothing is fenced) until the oldest of
// those expires, while other agents' and calls' claims are untouched, so
// an agent who floods a call with stops cannot lock the others on the
// call out of it. With a Source that implements [CallInfo], a start or
// stop with a request_id naming a call the Source does not know is
// refused 409 no_call before any claim (a lookup that fails is 503), so
// made-up call ids never fill the log: a fence is only needed for a
// start that could run, and a start runs only on a call the Source
// knows. A stop whose request_id was claimed on the call before the
// Source forgot it (a Genesys call once its AudioHook session closed) is
// answered from that claim, as on a known call ([oplog.Log.HeldRequest]:
// the claim is read, none is made). Without CallInfo the server cannot tell, and these budgets (and
// Memory's limit on all claims, [oplog.NewMemory]) are the only bound. A start that has not claimed its id within [MaxClaimDelay]
// (1 minute) of reaching the server is refused 503 and never runs, so a
// fence holds against any start of its id that reaches a server within 9
// minutes of the stop: proxies in front must not hold a request longer.
// When the stop wins, the answer is fenced true: that start never
// runs nor touches the call, and when it arrives (later, on any node) it
// is refused 409 fenced. A start that won but has not reserved its call
// yet when the stop comes is refused 409 fenced too, and the stop answers
// fenced true (stopped true). When the start
// won, its operation is stopped on the node that runs it and the answer
// (fenced false) names it: stopped says whether it was running, result
// is the terminal event type it ended with (a register that ended
// otherwise than result-success may still have written its credential
// if it was stopped while writing: read status). A start that ended
// before it created its operation answers fenced true. Until that is
// settled (the operation has not ended yet, or the node that runs it did
// not answer) the answer is 503: ask again. The stop is idempotent, and
// is authorized as a start is (the CallAuthorizer must allow the agent
// on the call; the call need not be live, but a CallInfo Source must
// know it or hold a claim of the request_id on it: else 409 no_call and
// nothing is claimed; no start of it can run while the Source does not
// know the call, but one can if the call becomes known again).
// A stop by call_id alone (no request_id, no operation_id) is best
// effort: it stops whatever runs or is starting on the call at that
// moment (a start still opening its audio is then answered 409 busy), on
// this node and on the nodes its log lists as running the call's
// operations; stopped says whether something was stopped. A start that
// has not reserved its call yet (still being authorized or checked), or
// an operation this node does not know of yet, is missed and may run
// after a stopped false. It answers 503 when a node running one of the
// call's operations did not answer (try again: a dead node's operations
// are ended by the others).
// Thresholds from the browser only make the check stricter: the server's
// Options.Register and Options.Verify values are floors, and a lower value
// is raised to them; a value outside 0–1 (thresholds) or 0–30 s
// (audio_total_duration) is refused. Numbers may be sent as numeric
// strings, as the vendor's config.js spells them.
//
// Errors are {"error":"human text","code":"machine_code"} with code
// unauthenticated (401), auth_unavailable (503: the token could not be
// checked because of the server, see [ErrAuthUnavailable]), forbidden
// (403: the agent may not act on the call, [CallAuthorizer]), bad_request
// (400, also a call_id the CallAuthorizer finds malformed), bad_caller_id (400), not_registered (404), already_registered
// (409: delete first), no_call (409: no such call, call not in progress,
// no audio source for the call, or the agent's call has ended, see
// [CallAuthorizer]), busy
// (409), fenced (409: a stop named the start's request_id first; it never
// runs), request_id_used (409), too_many_requests (429, with Retry-After:
// the agent holds [oplog.MaxSubjectRequests] request ids on the call, or
// the call [oplog.MaxCallRequests]; nothing was started or fenced), not_found (404: an unknown operation or
// endpoint), method_not_allowed (405, with Allow), too_large (413: a body
// over 64 KiB), origin_not_allowed (403: a CORS preflight from an origin
// not in Options.AllowedOrigins), unavailable (503: the server is
// shutting down and started nothing) or internal (500, 503 while a stop
// is not settled, or a start was not checked within [MaxClaimDelay]); a
// 503 carries Retry-After.
//
// # Event streams
//
// The events_url of a start answer carries a short-lived token bound to
// the operation and its call (EventSource cannot send headers): it opens
// that operation's events and nothing else, never another operation of
// the same call nor another call's. Each message is
//
//	id: 3
//	event: progress
//	data: {"call_id":"CA…","caller_id":"+34…","kind":"verify","net_speech":1.2,"net_speech_needed":3.5,"operation_id":"op_…","seq":3,"type":"progress",…}
//
// id is the event's seq: 1-based, per operation, gap-free; Last-Event-ID
// resumes after it, and a finished operation read to its end answers 204.
// The first event is started; then progress; then exactly one terminal
// event, after which the server closes the stream. Terminal types are the
// seven das-Peak names (result-success, result-fail-score,
// result-fail-spoof, error-consumer-not-ready, error-parameters,
// error-audio, error-das-Peak) and voicegate's error-store and
// error-cancelled; each carries a reason ([Reason]) and a time (when the
// operation ended, RFC 3339 in UTC, by the server's clock), and
// error-cancelled a cause ([CancelCause]: stopped, replaced, deleted,
// shutdown, node_stopped, no_audio or store_error) for clients to branch
// on, as its error says it in English. An error-store with reason
// already_registered (not store) is a register that another
// operation of the caller (on another call) beat to the store: this
// call's voice was not stored, and the voice stored for the caller is the
// other call's, so the caller must not be taken as registered by it. The
// store's refusal is permanent ([daspeak.ErrAlreadyStored]): it is not
// retried. Events never hold a
// credential or audio; see [Event.MarshalJSON] for the fields.
//
// # Many nodes
//
// Options.Log is where operations and events live: in memory by default
// (one node), or an operation log shared by nodes (daspeak/agent/natsbus,
// NATS JetStream). With a shared log every node serves every operation's
// event stream (a client that reconnects to another node with
// Last-Event-ID misses nothing and sees nothing twice); a request about a
// call this node has no audio for is forwarded to the node that holds it
// (Sources implementing [CallInfo]: the Genesys AudioHook session); audio
// that reaches another node than the one that started the operation (a
// Twilio Media Stream through a load balancer) is taken over there
// ([Server.Adopt], [ErrOpenedElsewhere]); stop reaches the operation's
// node, a stop by call_id and request_id the node whose start claimed the
// request id (or the node that took its operation over), and a stop by
// call_id alone the nodes owning the call's running operations
// ([oplog.Log.Running]; a node learns of another's operation a moment
// after it is created). A forwarded request keeps every check: the node the agent's
// request reached authenticates it and asks the [CallAuthorizer] (with
// the agent's token, which is not forwarded) before forwarding; the node
// holding the call binds the caller to the call ([CallInfo]) and checks
// the rest there. Each node holds a lease; when one dies, the others end each of its
// unfinished operations with error-cancelled (reason cancelled, error
// "cancelled: the node running the operation stopped", cause
// node_stopped). Nodes must share
// EventKey, the credential store and the session configuration. A call's
// busy check and a delete's cancellation of running operations are per
// node.
//
// # Operating
//
// [Server.HealthHandler] and [Server.ReadyHandler] answer /healthz and
// /readyz (503 while draining or while the operation log is unreachable);
// [Server.Drain] is the SIGTERM path: no new operations, running ones
// finish until a deadline, the rest end with error-cancelled, so no
// operation is cut without its terminal event. Once it returned (the
// listener serves [ResultGrace] more), an event stream opened for an
// operation that has ended still gets its events, from the log; only a
// stream that would wait for new events is refused 503 unavailable. Options.Observer receives
// measurements (daspeak/agent/metrics exposes them to Prometheus).
//
// # Starter servers
//
// [EngineConfig], [SessionFlags], [Env] and [EnvBool] read configuration
// from flags and environment; [StoreConfig] and [OpenStore] open a
// credential store and its enrolment-audio directory; [Serve] and [Tracker] run a server with a graceful shutdown;
// [WriteJSON] and [WriteError] answer in the API's style; [Binder] signs
// short-lived tokens bound to values. Secure defaults: [DevAuthenticator]
// (a fixed token for development) only serves loopback peers, and a main
// that uses it must call [RequireLoopback] on its listen address.
package agent
