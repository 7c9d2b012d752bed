// <voicegate-agent>: the agent desk widget of voicegate.
//
// Plain JavaScript, no build step, no external resources. Served by the Go
// server at {base}/voicegate-agent.js (package daspeak/agent) and loaded
// with a classic <script src=…>. It talks to the agent API of the same
// server (POST {base}/status, /register, /verify, /reverify, /delete,
// /stop) with a bearer token and follows one operation at a time over
// Server-Sent Events ({base}/operations/{id}/events?token=…).
//
// Attributes: security-token, call-sid, caller-id, task-sid,
// conference-sid, call-in-progress ("true"/"false"); Genesys:
// conversation-id, participant-id; backend-url (optional). The call id is
// call-sid or conversation-id; task-sid, conference-sid and participant-id
// are accepted as the vendor's component takes them, and not sent. Every
// attribute is also read without its hyphens (callsid, securitytoken, …),
// as the vendor's camelCase names reach HTML. The API
// base is backend-url, else config.backendUrl, else the directory this
// script was loaded from, else /agent on the page's origin. No request
// goes out before a token source exists (security-token or
// utils.getTemporaryToken). call-in-progress="false" disables the buttons;
// without the attribute the server's call_in_progress decides. An
// operation running when the call ends is followed to its result (the
// call's audio ends with it), and the widget says the call ended.
// An operation whose event stream fails is followed again (with
// Last-Event-ID) while the service cannot be reached ("Retrying…"); when
// the service answers the events URL with 401, 403, 404 or 410 (it
// restarted and no longer knows the operation, which it answers as a bad
// token, or the link expired), or has not been reached for 60 s, the
// widget stops showing the operation as running and says, in amber, that
// its result is unknown ("Check result unknown", "Registration not
// confirmed"; never a success), sends a stop in case it still runs (again
// with the next status read that gets through, if the service could not
// be reached or refused the sign-in) and reads the status again, which
// brings the buttons back; a status read refused 401 says the sign-in is
// no longer accepted. Stop pressed while the service cannot be reached
// says that the stop did not get through, and is sent again when the
// stream is back.
// An operation running (or starting) when call-sid, conversation-id,
// caller-id or backend-url changes is stopped (POST /stop: it ends with
// error-cancelled, reason cancelled), never followed on the new call: the
// agent can no longer see it, and a registration nobody saw must not be
// stored. A stop that fails for want of the network or of the service is
// retried for up to 20 s. Every start carries a request_id of its own
// (crypto.randomUUID()). A start whose answer was lost (no answer, a
// proxy's 504, a 5xx, a 2xx whose body is cut or not the expected JSON),
// on the call shown or on one left, is stopped by its call and request id
// (POST /stop with call_id and request_id), as the widget has no
// operation id: the server fences that start out if it has not claimed
// its request id yet (fenced: it never runs), or stops it and says how it
// ended (result), also on a call the service no longer knows (a Genesys
// call once its AudioHook session closed) when the start had claimed its
// request id there. A register that ran to its success is said registered
// ("Voice registered: the voice service's answer was lost"); one stopped
// or ended otherwise is then looked up (/status), and the call's status
// is read before the outcome is shown. The widget says it stored or
// checked nothing only when the answer confirms it ("Registration
// stopped: you switched calls … Nothing
// was registered.", or that it was stored as it could not be stopped in
// time, or that this could not be confirmed, and why), naming the call left
// (its caller, the end of its id and when it was left, so that notices
// about several calls tell them apart), in a
// notice of its own above the new call's rows: nothing about the new call
// replaces it, and it stays until the agent dismisses it (once it says
// what became of the operation); none of its
// events is shown as
// the new call's, and onResponse and voicegate-result are not called for
// it. An element removed from the page (not merely moved) stops its
// operation the same way. The new call's status is read once the stop is
// answered.
// A success ("Voice registered", "Caller verified") says when it happened
// beside its title ("Caller verified · 14:02", local time, in a <time>
// whose datetime is the ISO instant), so that minutes later, or after the
// call ended, it reads as an earlier result, not a live one. The time is
// the server's, from the result event's "time" (the widget's clock only
// when an event has none), so that a result read again after the event
// stream reconnected keeps the time it happened.
// Screen readers hear every result: successes and notes in a polite live
// region, failures and errors in an assertive one; each message empties
// the other region, and a change of call or caller empties both. Notices
// about a call left are said in two regions of their own (#nlive, #nalert).
// 403 forbidden (the agent is not assigned the call) disables the buttons
// until the call or its task changes, or another token (security-token,
// or a new getTemporaryToken result, looked at every 3 s) is accepted by
// a status read, which the service authorizes as it does a start;
// 400 bad_caller_id (a
// caller number that is not usable, or not the call's) until the call or
// the caller changes: trying again cannot help. The status read after a
// register's result (did anything get stored?) never replaces that
// result; when the server, having said the call was in progress, says it
// is not (a Genesys call is forgotten when its AudioHook session ends,
// while call-in-progress stays "true"), "not enough speech" is said as
// the call's end, and the main button says "Call ended" and is off; an
// outcome shown then (or before) no longer asks for a button: "Press Try
// again" and the like give way to what the agent can still do. The
// status is read after every result and after a start refused with
// no_call, which is then also said as the call's end when the call
// ended. A register that ended in error-store may have stored (a write
// whose answer was lost): the caller is looked up and said not
// registered (only when the call's caller was looked up) or not
// confirmed, never registered: a voice found registered after an error
// may be another call's. Only a result-success of the operation is
// shown as a green success. An error-store with reason
// already_registered (another call registered the caller meanwhile) is a
// failure: this voice was not stored.
// The call's status is kept fresh: it is read again when the page
// becomes visible or gets the focus (if the last read is over 2 s old),
// and every 15 to 25 s while the widget is idle and the page visible;
// never while the page is hidden, an operation runs or the call has
// ended, never two reads at once, and after a failed read the wait
// doubles (up to 2 min). A status older than 45 s is read again, with the
// buttons off, before the main button or the trash acts on it. A register
// that lost the race to another call's register of the same caller
// (error-store, already_registered), and a register refused because
// another call registered the caller first, say in the status line that
// the caller is registered by another call (and, for the first, that this
// call's voice was not stored), never "Voice registered", until the
// status says the caller is no longer registered or another operation
// starts. A status read, a start or a delete answered 409 no_call says
// the call ended (Flex answers it once the agent's reservation of the
// call's task is wrapping or completed), and the buttons stay off.
// An error-cancelled whose cause (its "cause" code) is other than a stop
// (a delete from another call, a new check on the call, a restart of the
// service) says it ("The check ended: the caller's voice registration was
// deleted."), not "Stopped"; after a delete the caller is not registered.
// Properties: config = {backendUrl, register: {audioTotalDuration,
// authenticityThreshold, modelHash}, verify: {audioTotalDuration,
// authenticityThreshold, scoreThreshold}} (numbers or numeric strings);
// utils = {onResponse(result, audio), getTemporaryToken()}.
// onResponse is called once for every terminal event (audio is undefined:
// audio stays on the server). getTemporaryToken (may be async), when
// present, supplies the bearer token instead of security-token; one that
// does not answer within 8 s fails the request it was for ("No sign-in
// token from the desk"; nothing is sent).
// The element also dispatches a composed "voicegate-result" CustomEvent
// whose detail is the terminal event.
(() => {
  'use strict';
  if (typeof customElements === 'undefined' || customElements.get('voicegate-agent')) return;

  // The directory the script was loaded from is the API base when neither
  // the backend-url attribute nor config.backendUrl says otherwise.
  const scriptBase = (() => {
    const s = document.currentScript;
    if (!s || !s.src) return '';
    try {
      const u = new URL(s.src, document.baseURI);
      return u.origin + u.pathname.replace(/\/[^/]*$/, '');
    } catch (_) {
      return '';
    }
  })();

  const ATTRIBUTES = ['security-token', 'call-sid', 'caller-id', 'task-sid', 'conference-sid',
    'call-in-progress', 'conversation-id', 'participant-id', 'backend-url'];

  const TERMINAL = [
    'result-success', 'result-fail-score', 'result-fail-spoof',
    'error-consumer-not-ready', 'error-parameters', 'error-audio', 'error-das-Peak',
    'error-store', 'error-cancelled',
  ];
  const EVENT_NAMES = ['started', 'progress', ...TERMINAL];

  // reason of a terminal event when the server did not name one.
  const REASON_OF_TYPE = {
    'result-success': 'success',
    'result-fail-score': 'authentication',
    'result-fail-spoof': 'spoof',
    'error-consumer-not-ready': 'speech',
    'error-audio': 'speech',
    'error-parameters': 'configuration',
    'error-das-Peak': 'connection',
    'error-store': 'store',
    'error-cancelled': 'cancelled',
  };

  // CANCEL_CAUSES: why an operation was cancelled, by the cause of its
  // error-cancelled event (agent.CancelCause in package daspeak/agent),
  // when it was not a stop.
  const CANCEL_CAUSES = {
    deleted: 'the caller\u2019s voice registration was deleted.',
    replaced: 'a new check was started on this call.',
    shutdown: 'the voice service restarted.',
    node_stopped: 'the voice service restarted.',
    no_audio: 'no audio came from the call.',
    store_error: 'the caller\u2019s voice registration could not be read.',
  };

  // eventTime is the time of a terminal event (its "time", RFC 3339, the
  // server's clock), or null without a valid one.
  function eventTime(ev) {
    const d = typeof ev.time === 'string' ? new Date(ev.time) : null;
    return d && !isNaN(d) ? d : null;
  }

  // lastResultWords says what a status's last_operation found.
  function lastResultWords(lo) {
    switch (lo.result) {
      case 'result-success': return lo.operation === 'register' ? 'Voice registered' : 'Caller verified';
      case 'result-fail-score': return 'Not verified';
      case 'result-fail-spoof': return 'Pre-recorded voice';
      case 'error-cancelled': return 'stopped';
      default: return 'ended without a result';
    }
  }

  // cancelledRow is the row of an error-cancelled whose cause is one of
  // CANCEL_CAUSES, or null.
  function cancelledRow(cause, kind) {
    const why = Object.prototype.hasOwnProperty.call(CANCEL_CAUSES, cause) ? CANCEL_CAUSES[cause] : '';
    if (!why) return null;
    const reg = kind === 'register';
    return {
      kind: 'error', title: reg ? 'Registration ended' : 'Check ended',
      cause: (reg ? 'The registration ended: ' : 'The check ended: ') + why, todo: '',
    };
  }

  // Rows shown for failures and errors: what happened, why, what to do.
  // kind: "fail" (the voice did not pass), "error" (the check could not be
  // done), "info" (nothing went wrong).
  const ROWS = {
    spoof: {
      kind: 'fail', title: 'Pre-recorded voice',
      cause: 'The audio is tagged as pre-recorded voice (a replay or a synthetic voice).',
      todo: 'Try again with a different voice: ask the caller to speak live, close to the phone.',
    },
    authentication: {
      kind: 'fail', title: 'Not verified',
      cause: 'The audio can\u2019t be verified: it does not match the registered voice.',
      todo: 'Re-authenticate with the caller speaking naturally, or identify the caller another way.',
    },
    configuration: {
      kind: 'error', title: 'Wrong configuration',
      cause: 'The voice service refused the settings of this widget.',
      todo: 'Details are in the browser console. Ask your administrator to check the widget\u2019s configuration.',
    },
    spoof_not_performed: {
      kind: 'error', title: 'Anti-spoofing not performed',
      cause: 'The voice service did not check this audio for pre-recorded voice, so it gave no result.',
      todo: 'Contact your administrator: the voice service needs its anti-spoofing check.',
    },
    connection: {
      kind: 'error', title: 'Cannot reach the voice service',
      cause: 'The voice service did not answer.',
      todo: 'Try again in a moment. If it keeps failing, contact your administrator.',
    },
    retrying: {
      kind: 'error', title: 'Cannot reach the voice service',
      cause: 'The voice service does not answer right now.',
      todo: 'Retrying\u2026',
    },
    // Stop pressed while the operation's event stream is down: the stop
    // did not reach the service; it is sent again once the stream is back.
    stop_unreachable: {
      kind: 'error', title: 'Cannot reach the voice service',
      cause: 'Stop did not reach the voice service: it does not answer right now.',
      todo: 'Retrying\u2026',
    },
    // Stop refused while the operation may still run: the sign-in is no
    // longer accepted (401, asked while the event stream was down) or the
    // service did not find the operation (404), and its events URL says
    // it goes on. Shown until its result, which is then shown as it is.
    stop_refused_signin: {
      kind: 'error', title: 'Stop did not go through',
      cause: 'The voice service no longer accepts your sign-in, so it refused Stop.',
      todo: 'It still runs: its result is shown when it ends. Reload the page or sign in again to stop it.',
    },
    stop_refused_unknown: {
      kind: 'error', title: 'Stop did not go through',
      cause: 'The voice service did not find this operation to stop it.',
      todo: 'It still runs: its result is shown when it ends.',
    },
    // Stop failed with the operation's stream up: not reached (network),
    // the service unavailable (503) or failing (other 5xx).
    stop_refused_unreachable: {
      kind: 'error', title: 'Stop did not go through',
      cause: 'The voice service could not be reached to stop it.',
      todo: 'It still runs: its result is shown when it ends.',
    },
    stop_refused_unavailable: {
      kind: 'error', title: 'Stop did not go through',
      cause: 'The voice service is unavailable, so Stop did not reach it.',
      todo: 'It still runs: its result is shown when it ends.',
    },
    stop_refused_internal: {
      kind: 'error', title: 'Stop did not go through',
      cause: 'The voice service failed to handle Stop (internal error).',
      todo: 'It still runs: its result is shown when it ends.',
    },
    // The event stream of the operation shown ended without its result
    // (_streamLost): the service answers but no longer knows the
    // operation (it restarted, or the stream's link expired), or the
    // agent's sign-in is no longer accepted, or the service has not
    // answered for LOST_CONTACT_MS. Nothing is shown as passed.
    gone_verify: {
      kind: 'error', title: 'Check result unknown',
      cause: 'The voice service restarted or lost this check, so its result is unknown.',
      todo: 'The caller was not verified. Check again.',
    },
    gone_register: {
      kind: 'error', title: 'Registration not confirmed',
      cause: 'The voice service restarted or lost this registration, so its result is unknown.',
      todo: 'Look at the caller\u2019s status before registering again.',
    },
    gone_register_saved: {
      kind: 'error', title: 'Registration not confirmed',
      cause: 'The voice service restarted or lost this registration. A voice is registered for this caller, but the service could not confirm it is this call\u2019s.',
      todo: 'Press Authenticate User to check that the registered voice is this caller\u2019s. If it does not match, delete the registration and register again.',
    },
    gone_register_none: {
      kind: 'error', title: 'Registration not confirmed',
      cause: 'The voice service restarted or lost this registration. The caller is not registered now.',
      todo: 'Register again.',
    },
    signin_verify: {
      kind: 'error', title: 'Check result unknown',
      cause: 'The voice service no longer accepts your sign-in, so this check\u2019s result cannot be read.',
      todo: 'The caller was not verified. Reload the page or sign in again, then check again.',
    },
    signin_register: {
      kind: 'error', title: 'Registration not confirmed',
      cause: 'The voice service no longer accepts your sign-in, so this registration\u2019s result cannot be read.',
      todo: 'Reload the page or sign in again, then look at the caller\u2019s status before registering again.',
    },
    silent_verify: {
      kind: 'error', title: 'Check result unknown',
      cause: 'The voice service has not answered for {s}\u00a0s, so this check\u2019s result is unknown.',
      todo: 'The caller was not verified. Check again once the service answers.',
    },
    silent_register: {
      kind: 'error', title: 'Registration not confirmed',
      cause: 'The voice service has not answered for {s}\u00a0s, so this registration\u2019s result is unknown.',
      todo: 'Once the service answers, look at the caller\u2019s status before registering again.',
    },
    speech: {
      kind: 'error', title: 'Not enough speech',
      cause: 'Too little of the caller\u2019s voice reached the service.',
      todo: 'Keep the caller talking and try again.',
    },
    // A register that ended in error-store may still have stored (a
    // write whose answer was lost): the caller is looked up (_load) and
    // store_checking becomes store, store_saved or store_unknown. Only a
    // result-success of this call's register is a green "Voice
    // registered": a caller found registered after an error may hold
    // another call's voice (store_saved is amber, not confirmed).
    store_checking: {
      kind: 'error', title: 'Registration not confirmed',
      cause: 'The voice was processed, but the service reported an error while saving it.',
      todo: 'Checking whether the registration was saved\u2026',
    },
    store: {
      kind: 'error', title: 'Registration not saved',
      cause: 'The voice was processed but the registration could not be saved.',
      todo: 'Nothing was registered. Register again. If it keeps failing, contact your administrator.',
      ended: 'Nothing was registered.',
    },
    store_saved: {
      kind: 'error', title: 'Registration not confirmed',
      cause: 'The service reported an error while saving. A voice is registered for this caller, but the service could not confirm it is this call\u2019s.',
      todo: 'Press Authenticate User to check that the registered voice is this caller\u2019s. If it does not match, delete the registration and register again.',
      ended: 'The call has ended: on the caller\u2019s next call, press Authenticate User to check that the registered voice is theirs. If it does not match, delete the registration and register again.',
    },
    // error-store, reason already_registered: a register of the same
    // caller on another call stored first.
    store_conflict: {
      kind: 'fail', title: 'Voice not registered',
      cause: 'Another call registered this caller meanwhile; this voice was not stored.',
      todo: 'The registered voice is the other call\u2019s, which may not be this caller. Press Authenticate User to check it; if it does not match, delete the registration and register again.',
      ended: 'The registered voice is the other call\u2019s, which may not be this caller. The call has ended: on the caller\u2019s next call, press Authenticate User to check it; if it does not match, delete the registration and register again.',
    },
    store_unknown: {
      kind: 'error', title: 'Registration not confirmed',
      cause: 'The service reported an error while saving, and the widget could not check whether the registration was saved.',
      todo: 'Press Try again to check before registering again.',
      ended: 'The call has ended, so the widget cannot check it now. Before registering this caller again on a later call, check whether they are registered.',
    },
    // A start whose answer was lost (a proxy's 5xx, no answer): the
    // widget stops what runs on the call (POST /stop with call_id) and
    // says what became of it (_lost).
    lost_stopping: {
      kind: 'info', title: 'Stopping: the voice service\u2019s answer was lost',
      cause: 'The widget did not get the answer to its request, so it is stopping it.',
      todo: '',
    },
    lost_register_stopped: {
      kind: 'error', title: 'Registration stopped: the voice service\u2019s answer was lost',
      cause: 'The widget did not get the answer to Register, so it stopped the registration.',
      todo: 'Nothing was registered. Try again.',
      ended: 'Nothing was registered.',
    },
    // The stop's answer says the register ran to result-success: this
    // call's voice was stored.
    lost_register_saved: {
      kind: 'info', title: 'Voice registered: the voice service\u2019s answer was lost',
      cause: 'The widget did not get the answer to Register; the service says the registration finished and stored the caller\u2019s voice.',
      todo: '',
    },
    lost_register_done: {
      kind: 'error', title: 'Registration not confirmed',
      cause: 'The answer to Register was lost. A voice is registered for this caller, but the service could not confirm it is this call\u2019s.',
      todo: 'Press Authenticate User to check that the registered voice is this caller\u2019s. If it does not match, delete the registration and register again.',
      ended: 'The call has ended: on the caller\u2019s next call, press Authenticate User to check that the registered voice is theirs. If it does not match, delete the registration and register again.',
    },
    lost_register_unknown: {
      kind: 'error', title: 'Registration not confirmed',
      cause: 'The widget did not get the answer to Register and could not confirm that the registration was stopped.',
      todo: 'Press Try again to check whether the caller is registered.',
      ended: 'The call has ended, so the widget cannot check it now. Before registering this caller again on a later call, check whether they are registered.',
    },
    // The stop's answer says the register ended without success, which
    // may still have stored (cancelled while writing), and the caller's
    // status could not tell (a call the service no longer knows).
    lost_register_ended: {
      kind: 'error', title: 'Registration not confirmed',
      cause: 'The answer to Register was lost. The registration ended without success, but it may have saved the voice before it ended, and the widget could not check.',
      todo: 'Press Try again to check whether the caller is registered.',
      ended: 'The call has ended, so the widget cannot check it now. Before registering this caller again on a later call, check whether they are registered.',
    },
    lost_verify_stopped: {
      kind: 'error', title: 'Voice check stopped: the voice service\u2019s answer was lost',
      cause: 'The widget did not get the answer to its request, so it made sure no check runs on this call.',
      todo: 'The caller was not verified. Try again.',
      ended: 'The caller was not verified.',
    },
    lost_verify_done: {
      kind: 'error', title: 'Voice check ended: the voice service\u2019s answer was lost',
      cause: 'The widget did not get the answer to its request; the check ended before it could be stopped, and its result is not shown.',
      todo: 'The caller was not verified here. Try again.',
      ended: 'The caller was not verified here.',
    },
    lost_verify_unknown: {
      kind: 'error', title: 'Voice check not confirmed stopped',
      cause: 'The widget did not get the answer to its request and could not confirm that the check was stopped.',
      todo: 'The caller was not verified. Try again in a moment.',
      ended: 'The caller was not verified.',
    },
    token_timeout: {
      kind: 'error', title: 'No sign-in token from the desk',
      cause: 'The agent desk did not give the widget a sign-in token in time, so nothing was sent.',
      todo: 'Try again. If it keeps happening, reload the page or contact your administrator.',
    },
    call_ended: {
      kind: 'error', title: 'Call ended',
      cause: 'The call ended before enough of the caller\u2019s voice was collected.',
      todo: '',
    },
    // The service says the call has ended (409 no_call on a status read,
    // a start or a delete: Flex answers it once the agent's reservation of
    // the call's task is wrapping or completed). Nothing can start on it.
    // A delete refused with 409 no_call: the call ended before it.
    delete_ended: {
      kind: 'error', title: 'Registration not deleted',
      cause: 'The call has ended, so the voice service refused the delete. Nothing was deleted: the caller\u2019s voice registration is still stored.',
      todo: 'Delete it during a later call of this caller.',
    },
    ended: {
      kind: 'info', title: 'Call ended',
      cause: 'The call has ended, so no voice check can run on it.',
      todo: '',
    },
    // A start refused with 409 already_registered: another call
    // registered the caller since this widget read the status.
    already_registered: {
      kind: 'info', title: 'Caller already registered on another call',
      cause: 'Another call registered this caller\u2019s voice meanwhile; nothing was started here.',
      todo: 'The registered voice is the other call\u2019s. Press Authenticate User to check it is this caller\u2019s.',
      ended: 'The registered voice is the other call\u2019s. The call has ended: on the caller\u2019s next call, press Authenticate User to check it is theirs.',
    },
    cancelled: {
      kind: 'info', title: 'Stopped',
      cause: 'The check was stopped before it finished.',
      todo: '',
    },
    no_call: {
      kind: 'error', title: 'No audio from this call',
      cause: 'The voice service cannot get this call\u2019s audio.',
      todo: 'Check that the call is still connected, then try again.',
    },
    busy: {
      kind: 'error', title: 'Another check is running',
      cause: 'A check is already running on this call.',
      todo: 'Wait for it to finish, then try again.',
    },
    not_registered: {
      kind: 'info', title: 'Caller not registered',
      cause: 'This caller has no voice registration.',
      todo: 'Register the caller first.',
    },
    unauthenticated: {
      kind: 'error', title: 'Not signed in to the voice service',
      cause: 'The voice service refused your session.',
      todo: 'Reload the page or sign in again. If it keeps failing, contact your administrator.',
    },
    // 400 bad_caller_id with CALLER_MISMATCH: a valid number, but not
    // the one the call comes from.
    caller_mismatch: {
      kind: 'error', title: 'Not this call\u2019s caller',
      cause: 'This number is not the caller of this call.',
      todo: 'The widget was given another number than the call\u2019s. Reload the page; if it keeps happening, contact your administrator.',
    },
    forbidden: {
      kind: 'error', title: 'You are not assigned to this call',
      cause: 'The voice service only lets the agent handling a call check its caller.',
      todo: 'Accept the call\u2019s task, or ask a supervisor to assign the call to you.',
    },
    bad_caller_id: {
      kind: 'error', title: 'Caller number not usable',
      cause: 'The caller\u2019s number is missing or not a valid phone number.',
      todo: 'Voice checks need the caller\u2019s number. Details are in the browser console.',
    },
    // An operation left running when the agent switched calls (see
    // _abandon); {who} is the previous caller.
    left_stopping: {
      kind: 'info', title: 'Stopping the previous call\u2019s check',
      cause: 'You switched calls while a check of {who} was running.',
      todo: '',
    },
    left_register_stopped: {
      kind: 'info', title: 'Registration stopped: you switched calls',
      cause: 'The registration of {who} was stopped.',
      todo: 'Nothing was registered.',
    },
    left_verify_stopped: {
      kind: 'info', title: 'Voice check stopped: you switched calls',
      cause: 'The voice check of {who} was stopped.',
      todo: 'That caller was not verified.',
    },
    left_register_done: {
      kind: 'error', title: 'Previous call\u2019s registration was stored: it could not be stopped in time',
      cause: 'The voice of {who} was registered before the registration could be stopped.',
      todo: 'If that was not intended, go back to that call and delete the registration.',
    },
    left_verify_done: {
      kind: 'info', title: 'Voice check ended after you switched calls',
      cause: 'The voice check of {who} ended; its result is not shown for this call.',
      todo: 'Go back to that call to check the caller again if needed.',
    },
    left_verify_unknown: {
      kind: 'info', title: 'Previous call\u2019s voice check not confirmed stopped',
      cause: 'You switched calls while {who} was being checked; its result is not shown for this call.',
      todo: 'Go back to that call to check the caller again if needed.',
    },
    left_unknown: {
      kind: 'error', title: 'Previous call\u2019s registration not confirmed',
      cause: 'You switched calls while {who} was being registered, and the widget could not confirm that it was stopped.',
      todo: 'Go back to that call and check whether the caller is registered.',
    },
    // 429: the agent (or the call) holds as many request ids as the
    // service keeps; {n} is the Retry-After in seconds.
    too_many_requests: {
      kind: 'error', title: 'Too many requests on this call',
      cause: 'The voice service refused the request: too many were made on this call recently; nothing was started.',
      todo: 'Try again in {n}\u00a0s.',
    },
    unavailable: {
      kind: 'error', title: 'The voice service is restarting',
      cause: 'The voice service is shutting down and did not start this request; nothing was done.',
      todo: 'Try again in a moment.',
    },
    internal: {
      kind: 'error', title: 'The voice service failed',
      cause: 'The voice service had an internal error.',
      todo: 'Try again. If it keeps failing, contact your administrator.',
    },
  };

  // Rows whose todo asks to try again on the call: once it has ended,
  // they say nothing to do (see _words).
  const ENDED_QUIET = [ROWS.connection, ROWS.busy, ROWS.unavailable, ROWS.internal, ROWS.token_timeout, ROWS.not_registered];

  // The message of a 400 bad_caller_id whose number is valid but is not
  // the call's (package daspeak/agent, server.go).
  const CALLER_MISMATCH = 'caller_id is not the caller of this call';

  // How long stopping an operation of a call the widget left may take
  // before the widget says it could not confirm it (ms).
  const LEAVE_TIMEOUT_MS = 20000;
  // How long the event stream of the operation shown may stay without
  // contact with the service (no connection accepted, no event) before
  // the widget says its result is unknown (ms).
  const LOST_CONTACT_MS = 60000;
  // How long a look at why the event stream failed (_probe) may take (ms).
  const PROBE_TIMEOUT_MS = 10000;
  // RETRY_AFTER_MAX_MS bounds the wait a Retry-After asks for (_retry).
  const RETRY_AFTER_MAX_MS = 10000;

  // How long getTemporaryToken may take before the request it is for is
  // given up (ms): a token source that never answers must not hold a
  // stop (LEAVE_TIMEOUT_MS) or a start open.
  const TOKEN_TIMEOUT_MS = 8000;

  // While the agent is refused on the call (403), how often the token is
  // read again: a new one is tried with a status read, and the buttons
  // come back only when the service accepts it (ms).
  const FORBIDDEN_RECHECK_MS = 3000;

  // While the widget is idle and its page visible, the call's status is
  // read again every REFRESH_MS ± REFRESH_JITTER_MS (another call of the
  // same caller may register or delete it), and at once when the page
  // becomes visible or gets the focus, if the last read is older than
  // REFRESH_MIN_AGE_MS. A failed read doubles the wait, up to
  // REFRESH_MAX_MS. A status older than STALE_MS (the page was hidden, or
  // the reads failed) is read again, with the buttons off, before an
  // action that depends on it. One read at a time; none while the page is
  // hidden, an operation runs or the call has ended (ms).
  const REFRESH_MS = 20000;
  const REFRESH_JITTER_MS = 5000;
  const REFRESH_MIN_AGE_MS = 2000;
  const REFRESH_MAX_MS = 120000;
  const STALE_MS = 45000;

  const ICONS = {
    success: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M9 16.2 4.8 12l-1.4 1.4L9 19 21 7l-1.4-1.4z"/></svg>',
    fail: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M19 6.4 17.6 5 12 10.6 6.4 5 5 6.4 10.6 12 5 17.6 6.4 19 12 13.4 17.6 19 19 17.6 13.4 12z"/></svg>',
    error: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M1 21h22L12 2zm12-3h-2v-2h2zm0-4h-2v-4h2z"/></svg>',
    info: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M11 7h2v2h-2zm0 4h2v6h-2zm1-9a10 10 0 1 0 0 20 10 10 0 0 0 0-20zm0 18a8 8 0 1 1 0-16 8 8 0 0 1 0 16z"/></svg>',
    trash: '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M6 19a2 2 0 0 0 2 2h8a2 2 0 0 0 2-2V7H6zM19 4h-3.5l-1-1h-5l-1 1H5v2h14z"/></svg>',
  };

  const STYLE = `
:host{display:block;box-sizing:border-box;max-width:100%;min-width:0;color:#111;
  font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
:host([hidden]){display:none}
*,*::before,*::after{box-sizing:border-box}
.card{background:#fff;border:1px solid #5f6368;border-radius:8px;padding:12px;min-width:0;overflow-wrap:anywhere;container-type:inline-size}
header{display:flex;align-items:flex-start;gap:8px}
.who{flex:1 1 auto;min-width:0}
.label{display:block;font-size:13px;color:#3c4043;font-weight:600;text-transform:uppercase;letter-spacing:.04em}
.number{display:block;font-size:24px;font-size:clamp(17px,10cqi,26px);white-space:nowrap;overflow-wrap:normal;font-weight:700;line-height:1.2;font-variant-numeric:tabular-nums;color:#000}
.state{margin:6px 0 0;font-size:14px;color:#202124}
.state.off{color:#3c4043;font-style:italic}
button{font:inherit;font-weight:600;min-height:44px;border-radius:6px;cursor:pointer;padding:8px 14px;
  border:2px solid #0b57d0;background:#fff;color:#0b57d0}
button.primary{background:#0b57d0;color:#fff}
button.danger{background:#b3261e;border-color:#b3261e;color:#fff}
button:disabled{cursor:not-allowed;background:#e8eaed;border-color:#80868b;color:#3c4043}
button:focus-visible{outline:3px solid #000;outline-offset:2px;box-shadow:0 0 0 5px #ffd60a}
button.icon{flex:0 0 auto;width:44px;height:44px;padding:8px;border-color:#5f6368;color:#b3261e;background:#fff}
button.icon:disabled{color:#80868b;background:#f1f3f4}
svg{width:24px;height:24px;fill:currentColor;display:block}
.actions{margin-top:12px;display:flex;gap:8px}
.actions>button{flex:1 1 auto;min-width:0}
.actions>button.icon{flex:0 0 44px}
.progress{margin-top:12px}
.bar{height:14px;border:1px solid #0b57d0;border-radius:7px;background:#fff;overflow:hidden}
.fill{height:100%;width:0;background:#0b57d0;transition:width .2s linear}
.ptext{margin:6px 0 0;font-size:14px;font-variant-numeric:tabular-nums}
.outcome{margin-top:12px;display:flex;gap:10px;align-items:flex-start;border:2px solid;border-radius:8px;padding:10px}
.outcome .badge{flex:0 0 auto;width:36px;height:36px;border-radius:50%;display:flex;align-items:center;justify-content:center;color:#fff}
.outcome .badge svg{width:26px;height:26px}
.outcome .text{min-width:0}
.outcome p{margin:0}
.outcome .title{font-weight:700;font-size:16px}
.outcome .cause,.outcome .todo,.outcome .detail,.outcome .why{font-size:14px;margin-top:2px}
.outcome .todo{font-weight:600}
.outcome .when{font-weight:400;font-variant-numeric:tabular-nums;white-space:nowrap}
.outcome .detail{color:#3c4043;font-variant-numeric:tabular-nums}
.outcome.success{border-color:#146c2e;background:#e6f4ea;color:#0d3b1e}
.outcome.success .badge{background:#146c2e}
.outcome.fail{border-color:#b3261e;background:#fce8e6;color:#5c0f0a}
.outcome.fail .badge{background:#b3261e}
.outcome.error{border-color:#8a5000;background:#fff4e0;color:#3d2400;border-style:dashed}
.outcome.error .badge{background:#8a5000;border-radius:4px}
.outcome.info{border-color:#5f6368;background:#f1f3f4;color:#202124}
.outcome.info .badge{background:#5f6368}
.notice{flex-wrap:wrap}
.notice .text{flex:1 1 160px}
.notice .dismiss{flex:0 0 auto;margin-left:auto}
.note{margin:8px 0 0;padding:6px 8px;border-left:4px solid #8a5000;background:#fff4e0;color:#3d2400;font-size:14px;font-weight:600}
.confirm{margin-top:12px;border:2px solid #b3261e;border-radius:8px;padding:10px}
.confirm p{margin:0 0 8px;font-weight:600}
.confirm .row{display:flex;flex-wrap:wrap;gap:8px}
.confirm .row>button{flex:1 1 110px}
.sr{position:absolute;width:1px;height:1px;margin:-1px;padding:0;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;border:0}
[hidden]{display:none!important}
@media (forced-colors:active){
  .outcome,.bar,.confirm,.card{border-color:CanvasText}
  .fill{forced-color-adjust:none;background:Highlight}
  .outcome.success .badge,.outcome.fail .badge,.outcome.error .badge,.outcome.info .badge{forced-color-adjust:none;background:CanvasText;color:Canvas}
  button:focus-visible{outline-color:Highlight}
}
@media (prefers-reduced-motion:reduce){.fill{transition:none}}
`;

  const TEMPLATE = `
<section class="card" part="card" aria-label="Voice biometrics">
  <header>
    <div class="who">
      <span class="label" id="caller-label">Caller</span>
      <span class="number" id="caller" aria-describedby="caller-label">\u2014</span>
      <p class="state" id="state">Loading\u2026</p>
    </div>
  </header>
  <div id="notices"></div>
  <div class="progress" id="progress" hidden>
    <div class="bar" id="bar" role="progressbar" aria-label="Voice collected" aria-valuemin="0" aria-valuemax="0" aria-valuenow="0"><div class="fill" id="fill"></div></div>
    <p class="ptext" id="ptext"></p>
  </div>
  <div class="outcome" id="outcome" hidden>
    <span class="badge" id="badge"></span>
    <div class="text">
      <p class="title"><span id="otitle"></span><span class="when" id="owhen" hidden> \u00b7 <time id="otime"></time></span></p>
      <p class="cause" id="ocause"></p>
      <p class="todo" id="otodo"></p>
      <p class="detail" id="odetail"></p>
    </div>
  </div>
  <p class="note" id="nospoof" hidden>Anti-spoofing not performed: the voice was not checked for replay or synthesis.</p>
  <div class="confirm" id="confirm" role="group" aria-labelledby="confirm-q" hidden>
    <p id="confirm-q"></p>
    <div class="row">
      <button type="button" class="danger" id="confirm-yes">Delete</button>
      <button type="button" id="confirm-no">Cancel</button>
    </div>
  </div>
  <div class="actions" id="actions">
    <button type="button" class="primary" id="main" aria-describedby="state" disabled>Loading\u2026</button>
    <button type="button" id="stop" hidden>Stop</button>
    <button type="button" class="icon" id="trash" hidden aria-label="Delete voice registration" aria-describedby="state" title="Delete voice registration">${ICONS.trash}</button>
  </div>
  <div class="sr" role="status" aria-live="polite" aria-atomic="true" id="live"></div>
  <div class="sr" role="alert" aria-live="assertive" aria-atomic="true" id="alert"></div>
  <div class="sr" role="status" aria-live="polite" aria-atomic="true" id="nlive"></div>
  <div class="sr" role="alert" aria-live="assertive" aria-atomic="true" id="nalert"></div>
</section>`;

  // Number parses a config value given as a number or a numeric string.
  // Empty means "not set" (undefined); anything else outside [lo, hi] throws.
  function configNumber(v, name, lo, hi) {
    if (v === undefined || v === null || v === '') return undefined;
    const n = typeof v === 'number' ? v : Number(String(v).trim());
    if (!Number.isFinite(n) || n < lo || n > hi) {
      throw new Error(`config.${name} = ${JSON.stringify(v)}: want a number from ${lo} to ${hi}`);
    }
    return n;
  }

  function seconds(x) {
    return (Math.round((Number(x) || 0) * 10) / 10).toFixed(1);
  }

  // APIError is a failed request. served is true when the answer is the
  // voice service's own JSON error (not a proxy's page or no answer).
  // unsent is true when the request never went out (no token).
  class APIError extends Error {
    constructor(code, status, message, served, unsent) {
      super(message || code);
      this.code = code;
      this.status = status;
      this.served = !!served;
      this.unsent = !!unsent;
    }
  }

  // requestId returns a new request id for a start (a version 4 UUID):
  // crypto.randomUUID() where the page is a secure context, else the same
  // form from crypto.getRandomValues.
  function requestId() {
    if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  // refused reports whether e is the service's own refusal of a request,
  // or a request that never went out: then the request did nothing.
  // A served 503 "unavailable" is a refusal too: the server is shutting
  // down and started nothing.
  function refused(e) {
    return !!(e && (e.unsent || (e.served && (e.status >= 400 && e.status < 500 || e.status === 503 && e.code === 'unavailable'))));
  }

  // shortId is the end of a call id, enough to tell calls apart.
  function shortId(id) {
    return id.length > 6 ? '\u2026\u2060' + id.slice(-6) : id;
  }

  function clock(d) {
    return d.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
  }

  function codeOfStatus(status) {
    if (status === 401) return 'unauthenticated';
    if (status === 403) return 'forbidden';
    if (status === 404) return 'not_found';
    if (status === 409) return 'busy';
    if (status >= 500) return 'internal';
    return 'bad_request';
  }

  class VoicegateAgent extends HTMLElement {
    static get observedAttributes() {
      // Each also without hyphens: the vendor's component takes
      // securityToken, callSid, … which HTML reads as securitytoken, callsid.
      return ATTRIBUTES.concat(ATTRIBUTES.map((a) => a.replace(/-/g, '')));
    }

    // _attr reads an attribute by its name here or its vendor alias.
    _attr(name) {
      const v = this.getAttribute(name);
      return v !== null ? v : this.getAttribute(name.replace(/-/g, ''));
    }

    constructor() {
      super();
      this._config = {};
      this._utils = {};
      const root = this.attachShadow({ mode: 'open' });
      root.innerHTML = `<style>${STYLE}</style>${TEMPLATE}`;
      this.$ = (id) => root.getElementById(id);
      this.$('main').addEventListener('click', () => this._onMain());
      this.$('stop').addEventListener('click', () => this._stop());
      this.$('trash').addEventListener('click', () => this._askDelete());
      this.$('confirm-no').addEventListener('click', () => this._cancelDelete());
      this.$('confirm-yes').addEventListener('click', () => this._delete());
      this.$('confirm').addEventListener('keydown', (e) => {
        if (e.key === 'Escape') { e.preventDefault(); this._cancelDelete(); }
      });
      // m is the view model; _render draws it.
      this.m = {
        phase: 'loading', // loading | idle | starting | running | confirm | deleting
        registered: null, // true, false, or null when unknown
        registeredAt: null, // the status's registered_at while registered
        next: 'register', // register | verify | reverify
        outcome: null, // {kind, title, cause, todo, detail}
        progress: null, // {have, need}
        notPerformed: false,
        callerId: '',
        serverInProgress: null,
        serverEnded: false, // the server said in progress, then not: the call ended
        sawLive: false, // this call was seen in progress: "false" then means it ended
        forbidden: false, // the server refused this agent on this call (403)
        unusable: '', // the caller number was refused (bad_caller_id): 'mismatch' or 'number'
        // The caller is registered with another call's voice, as this
        // call learnt it: 'conflict' (this call's register lost the race:
        // its voice was not stored) or 'start' (a register refused:
        // another call registered the caller first); '' otherwise.
        byOther: '',
      };
      // Notices about calls left (see _abandon), newest first: each stays,
      // whatever the call shown now says, until the agent dismisses it.
      this._notices = []; // {id, row, who}
      this._noticeSeq = 0;
      this._gen = 0; // bumps when the call changes: stale answers are dropped
      this._op = null; // {id, kind, callId, callerId, base, url, es, lastSeq, retries, timer, done, lostAt, lostTimer, stopWanted, stopRefused}
      this._pendingStop = null; // an operation whose stream was lost, whose stop did not get through (_streamLost)
      this._starting = null; // {kind, callerId, settle} while a start request is out
      this._recovering = null; // {kind, callId, callerId, base} while _lost stops a start whose answer was lost
      this._tokenTimer = 0; // while refused on the call (403): the next look at the token
      this._leaving = new Set(); // promises of operations being stopped (see _abandon)
      this._loadQueued = false;
      this._loadTimer = 0;
      this._loadSeq = 0;
      this._speakTimers = {}; // pending writes of the hidden live regions, by id
      this._statusAt = 0; // when the call's status was last read (performance.now())
      this._status = null; // that status answer (null: none, or the call ended)
      this._refreshTimer = 0; // the next periodic status read
      this._refreshing = false; // a periodic status read is out
      this._refreshFailures = 0; // periodic reads failed in a row (back-off)
      this._onVisible = () => this._pageShown();
    }

    // ---- properties ----

    get config() { return this._config; }
    set config(v) {
      this._config = v && typeof v === 'object' ? v : {};
      if (this.isConnected) this._queueLoad();
    }

    get utils() { return this._utils; }
    set utils(v) {
      this._utils = v && typeof v === 'object' ? v : {};
      if (this.isConnected && this.m.registered === null) this._queueLoad();
    }

    // ---- lifecycle ----

    connectedCallback() {
      document.addEventListener('visibilitychange', this._onVisible);
      window.addEventListener('focus', this._onVisible);
      // Properties set before the element was defined shadow the accessors.
      for (const p of ['config', 'utils']) {
        if (Object.prototype.hasOwnProperty.call(this, p)) {
          const v = this[p];
          delete this[p];
          this[p] = v;
        }
      }
      if (this._op && !this._op.done) {
        // Moved in the page while an operation runs: follow it again
        // (events already shown are skipped by seq).
        this._listen();
        this._render();
        return;
      }
      this._queueLoad();
    }

    disconnectedCallback() {
      clearTimeout(this._loadTimer);
      clearTimeout(this._tokenTimer);
      clearTimeout(this._refreshTimer);
      document.removeEventListener('visibilitychange', this._onVisible);
      window.removeEventListener('focus', this._onVisible);
      const op = this._op;
      if (op) {
        clearTimeout(op.timer);
        clearTimeout(op.lostTimer);
        op.lostAt = 0;
        if (op.es) op.es.close();
        op.es = null;
      }
      // Moved in the page, the element is connected again in the same
      // task; removed, nobody can see its operation any more: stop it.
      setTimeout(() => {
        if (!this.isConnected && (this._starting || this._recovering || (this._op && !this._op.done))) this._startOver();
      }, 0);
    }

    attributeChangedCallback(name, oldValue, newValue) {
      if (oldValue === newValue || !this.isConnected) return;
      switch (ATTRIBUTES.find((a) => a === name || a.replace(/-/g, '') === name)) {
        case 'call-in-progress':
          this._render();
          this._noteCallEnded();
          return;
        case 'task-sid':
        case 'conference-sid':
        case 'participant-id':
          // A refused agent may have been given the call since.
          if (this.m.forbidden && !this._op && !this._starting) this._queueLoad();
          this._render();
          return;
        case 'security-token':
          // A new token may be allowed on a call the old one was refused.
          if (this.m.registered === null || (this.m.forbidden && this.m.phase === 'idle' && !this._op)) this._queueLoad();
          return;
      }
      // Another call, caller or back end: start over.
      this._startOver();
      this._queueLoad();
    }

    // _startOver forgets the call: what runs for it is stopped and never
    // followed here (_abandon), and answers about it are dropped (_gen).
    // Notices about calls left stay (see _notice).
    _startOver() {
      const left = this._leave();
      this._gen++;
      this._closeStream();
      this.m.outcome = null;
      this.m.progress = null;
      this.m.notPerformed = false;
      this.m.registered = null;
      this.m.callerId = '';
      this.m.serverInProgress = null;
      this.m.serverEnded = false;
      this.m.sawLive = false;
      this.m.forbidden = false;
      this.m.forbiddenAuth = undefined;
      clearTimeout(this._tokenTimer);
      this.m.unusable = '';
      this.m.byOther = '';
      this.m.next = 'register';
      this.m.phase = 'loading';
      this._statusAt = 0;
      this._status = null;
      clearTimeout(this._refreshTimer);
      // Nothing said about the previous call stays for screen readers.
      this._quiet();
      if (left) this._abandon(left);
    }

    // _leave returns the operation running or starting for the call being
    // left ({kind, callId, callerId, base, op}, op a promise of the
    // operation, of null when none started or of undefined when that is
    // not known), or null.
    _leave() {
      // A start whose answer was lost, being stopped (_lost): the notice
      // stops it again by its call and says what became of it.
      const rc = this._recovering;
      this._recovering = null;
      if (rc) return { kind: rc.kind, callId: rc.callId, callerId: rc.callerId, requestId: rc.requestId, base: rc.base, op: Promise.resolve(undefined) };
      const st = this._starting;
      this._starting = null;
      if (st) {
        return { kind: st.kind, callId: st.callId, callerId: st.callerId, requestId: st.requestId, base: st.base, op: new Promise((resolve) => { st.settle = resolve; }) };
      }
      const op = this._op;
      if (op && !op.done) return { kind: op.kind, callId: op.callId, callerId: op.callerId, base: op.base, op: Promise.resolve(op) };
      return null;
    }

    // _abandon stops an operation of a call the widget left and says, on
    // whatever call the widget shows, what became of it. A register is
    // only said to have stored nothing when its stream ended without
    // success and, if it was cancelled (a register cancelled while its
    // credential was written may have stored it), the server's status
    // says its caller is not registered.
    // A stop or a read that fails for want of the network or of the
    // service is retried (_retry) until LEAVE_TIMEOUT_MS.
    _abandon(left) {
      // The previous caller may be the caller shown now, and after a few
      // switches "the previous call" names none: the call is named by
      // its caller, the end of its id and when it was left.
      const call = (left.callId ? 'call\u00a0' + shortId(left.callId) + ', ' : '') + 'left at ' + clock(new Date());
      const who = (left.callerId || 'the caller') + ' (' + call + ')';
      const reg = left.kind === 'register';
      const unknown = reg ? ROWS.left_unknown : ROWS.left_verify_unknown;
      const notice = { id: ++this._noticeSeq, row: null, who, why: '' };
      // why: the last reason a stop or read failed, said with "not confirmed".
      const note = (e) => {
        if (e && e.code === 'token_timeout') notice.why = 'The agent desk did not give the widget a sign-in token in time.';
        else if (e && (e.code === 'network' || e.status >= 500)) notice.why = 'The voice service could not be reached.';
        else if (e && e.status === 429) notice.why = 'Too many requests on this call.';
        throw e;
      };
      this._notice(notice, ROWS.left_stopping);
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), LEAVE_TIMEOUT_MS);
      const aborted = new Promise((resolve) => ctl.signal.addEventListener('abort', () => resolve(undefined)));
      const p = (async () => {
        // A start request still unanswered when the time is up: its
        // operation, if any, is stopped whenever the answer comes.
        const op = await Promise.race([left.op, aborted]);
        if (op === undefined) {
          left.op.then((late) => {
            if (late) this._api('/stop', { operation_id: late.id }, late.base).catch(() => {});
          });
        }
        if (op === null) return reg ? ROWS.left_register_stopped : ROWS.left_verify_stopped;
        if (!op) {
          // Whether it started is not known (its answer was lost, or the
          // time is up): it is stopped by its call and request id (POST
          // /stop with call_id and request_id), which fences it out or
          // says how it ended (_stopLost).
          if (!left.callId || ctl.signal.aborted) return unknown;
          const { end } = await this._stopLost(left, ctl.signal, note);
          if (end === 'stopped') return reg ? ROWS.left_register_stopped : ROWS.left_verify_stopped;
          if (end === 'done') return reg ? ROWS.left_register_done : ROWS.left_verify_done;
          return unknown;
        }
        try {
          await this._retry(() => this._api('/stop', { operation_id: op.id }, op.base, ctl.signal).catch(note), ctl.signal);
        } catch (e) {
          console.error('voicegate-agent: stopping the operation of the call left failed', op.id, e);
          if (ctl.signal.aborted) return unknown;
        }
        const ev = await this._retry(async () => {
          const got = await this._terminalOf(op, ctl.signal);
          if (!got) throw new APIError('network', 0, 'the events of ' + op.id + ' could not be read');
          return got;
        }, ctl.signal).catch(() => null);
        if (!ev) return unknown;
        if (ev.type === 'result-success') return reg ? ROWS.left_register_done : ROWS.left_verify_done;
        if (!reg) return ev.type === 'error-cancelled' ? ROWS.left_verify_stopped : ROWS.left_verify_done;
        if (ev.type !== 'error-cancelled') return ROWS.left_register_stopped;
        const st = await this._retry(() => this._api('/status', { call_id: op.callId, caller_id: op.callerId }, op.base, ctl.signal).catch(note), ctl.signal);
        if (st.registered === true) return ROWS.left_register_done;
        // Not registered counts only when the call's caller was looked up
        // (a call the server no longer knows answers false).
        if (st.registered === false && st.call_in_progress === true) return ROWS.left_register_stopped;
        return unknown;
      })().catch((e) => {
        console.error('voicegate-agent: the operation of the call left could not be confirmed stopped', e);
        return unknown;
      }).then((row) => {
        clearTimeout(timer);
        this._leaving.delete(p);
        if (row !== unknown) notice.why = '';
        this._notice(notice, row);
      });
      this._leaving.add(p);
    }

    // _retry calls fn until it resolves, waiting longer each time
    // (0.5 s doubling to 4 s) after an error of the network or of the
    // service (5xx), or for the answer's Retry-After (at most
    // RETRY_AFTER_MAX_MS) after a 429 too_many_requests (the call holds
    // as many request ids as the service keeps: a fence stop must be
    // retried, or a start still in transit could run once the oldest
    // expires) or a 5xx that gives one; any other error, or signal
    // aborted, ends it.
    async _retry(fn, signal) {
      for (let delay = 500; ; delay = Math.min(4000, delay * 2)) {
        let wait = delay;
        try {
          return await fn();
        } catch (e) {
          const transient = e && (e.code === 'network' || e.code === 'internal' || e.code === 'token_timeout' || e.code === 'too_many_requests' || e.status === 429 || e.status >= 500);
          if (!transient || signal.aborted) throw e;
          if (typeof e.retryAfter === 'number') wait = Math.min(RETRY_AFTER_MAX_MS, Math.max(500, e.retryAfter * 1000));
          console.warn('voicegate-agent: retrying in ' + wait + ' ms:', e.message || e);
        }
        await new Promise((resolve) => {
          const t = setTimeout(resolve, wait);
          signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
        });
        if (signal.aborted) throw new APIError('network', 0, 'gave up');
      }
    }

    // _stopLost stops a start whose answer was lost (x: {kind, callId,
    // callerId, requestId, base}) by its call and request id, retried
    // (_retry) until signal ends, and says what became of it: end is
    // 'stopped' (it never ran: the server fenced it out or it ended
    // before its operation was created; or its operation ended without
    // success and, for a register, the caller's status says not
    // registered), 'done' (a register stored, or a check that ran to its
    // result) or 'unknown'; registered is what the caller's status said
    // (a register only; null when not read); saved is true when the
    // stop's answer says this request's register ran to result-success;
    // result, on an unknown register, is the terminal type it ended with
    // (without success, but it may have stored). note sees each failure
    // (to say why it is not confirmed).
    async _stopLost(x, signal, note) {
      const reg = x.kind === 'register';
      const res = await this._retry(() => this._api('/stop', { call_id: x.callId, request_id: x.requestId }, x.base, signal).catch(note), signal);
      let end = 'check';
      if (res.fenced === true) end = 'stopped';
      else if (typeof res.result !== 'string' || !res.result) return { end: 'unknown', registered: null };
      else if (res.result === 'result-success') end = 'done';
      else if (!reg) end = /^result-/.test(res.result) ? 'done' : 'stopped';
      if (!reg) return { end, registered: null };
      // This request's register ran to its success: its voice was stored.
      if (end === 'done') return { end, registered: true, saved: true };
      // A register that ended otherwise (cancelled while its credential
      // was being written, or error-store) may still have stored it: it
      // counts as stopped only when the caller's status says so, and
      // only for a call the server knows (a call it no longer knows
      // answers registered false). Otherwise the status only tells the
      // buttons what comes next.
      let st = null;
      try {
        st = await this._retry(() => this._api('/status', { call_id: x.callId, caller_id: x.callerId }, x.base, signal).catch(note), signal);
      } catch (e) {
        // note saw why; what is known is that it ended without success.
        if (end === 'check') return { end: 'unknown', registered: null, result: res.result };
      }
      const registered = st && typeof st.registered === 'boolean' ? st.registered : null;
      if (end === 'stopped') return { end, registered };
      if (registered === true) return { end: 'done', registered };
      if (registered === false && st.call_in_progress === true) return { end: 'stopped', registered };
      // It ended without success (res.result), which may have stored.
      return { end: 'unknown', registered, result: res.result };
    }

    // _terminalOf reads op's event stream to its terminal event (null when
    // it cannot be read).
    async _terminalOf(op, signal) {
      let text;
      try {
        const res = await fetch(op.url, { signal, cache: 'no-store', credentials: 'omit', headers: { Accept: 'text/event-stream' } });
        if (!res.ok) return null;
        text = await res.text();
      } catch (e) {
        console.error('voicegate-agent: reading the events of the operation left failed', op.id, e);
        return null;
      }
      for (const block of text.split(/\r?\n\r?\n/)) {
        const data = block.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, '')).join('\n');
        if (!data) continue;
        let ev;
        try { ev = JSON.parse(data); } catch (_) { continue; }
        if (ev && ev.operation_id === op.id && TERMINAL.includes(ev.type)) return ev;
      }
      return null;
    }

    // _notice shows (or updates) notice n, about a call left, as row: in
    // a box of its own above the call's rows, which nothing about the call
    // shown replaces, until the agent dismisses it; and says it in the
    // notices' own live regions (an error assertively).
    _notice(n, row) {
      n.row = row;
      if (!this._notices.includes(n)) this._notices.unshift(n);
      const text = row.title + ': ' + row.cause.replace('{who}', n.who);
      if (row !== ROWS.left_stopping) console.info('voicegate-agent: ' + text);
      this._renderNotices();
      const said = [row.title, row.cause.replace('{who}', n.who), n.why, row.todo].filter(Boolean).join('. ').replace(/\.\./g, '.');
      const id = row.kind === 'error' ? 'nalert' : 'nlive';
      const other = id === 'nalert' ? 'nlive' : 'nalert';
      for (const r of ['nlive', 'nalert']) clearTimeout(this._speakTimers[r]);
      this.$(other).textContent = '';
      this.$(id).textContent = '';
      this._speakTimers[id] = setTimeout(() => { delete this._speakTimers[id]; this.$(id).textContent = said; }, 50);
    }

    _dismiss(n) {
      this._notices = this._notices.filter((x) => x !== n);
      for (const r of ['nlive', 'nalert']) {
        clearTimeout(this._speakTimers[r]);
        this.$(r).textContent = '';
      }
      this._renderNotices();
      const main = this.$('main');
      if (!main.hidden && !main.disabled) main.focus();
      else {
        const st = this.$('state');
        st.tabIndex = -1;
        st.focus();
      }
    }

    _renderNotices() {
      const box = this.$('notices');
      // The Dismiss button that has focus keeps it across the redraw.
      const focused = this.shadowRoot.activeElement;
      const keep = focused && box.contains(focused) ? focused.dataset.notice : '';
      box.textContent = '';
      for (const n of this._notices) {
        const row = n.row;
        const el = document.createElement('div');
        el.className = 'outcome notice ' + row.kind;
        el.setAttribute('role', 'group');
        el.setAttribute('aria-label', 'About the call of ' + n.who);
        const badge = document.createElement('span');
        badge.className = 'badge';
        badge.innerHTML = ICONS[row.kind] || ICONS.info;
        const text = document.createElement('div');
        text.className = 'text';
        for (const [cls, t] of [['title', row.title], ['cause', row.cause.replace('{who}', n.who)], ['why', n.why], ['todo', row.todo]]) {
          if (!t) continue;
          const p = document.createElement('p');
          p.className = cls;
          p.textContent = t;
          text.appendChild(p);
        }
        el.append(badge, text);
        box.appendChild(el);
        // A notice still stopping cannot be dismissed: it would come
        // back with the outcome.
        if (row === ROWS.left_stopping) continue;
        const b = document.createElement('button');
        b.type = 'button';
        b.className = 'dismiss';
        b.textContent = 'Dismiss';
        b.setAttribute('aria-label', 'Dismiss: ' + row.title + ', ' + n.who);
        b.dataset.notice = String(n.id);
        b.addEventListener('click', () => this._dismiss(n));
        el.append(b);
        if (keep === b.dataset.notice) b.focus();
      }
    }

    // ---- inputs ----

    get callId() {
      return (this._attr('call-sid') || this._attr('conversation-id') || '').trim();
    }

    get callerId() {
      return this.m.callerId || (this._attr('caller-id') || '').trim();
    }

    // inProgress: the call-in-progress attribute when set, else what the
    // server said.
    get inProgress() {
      // The server saw the call live and then not: it ended, whatever
      // the attribute says (a Genesys page keeps it "true").
      if (this.m.serverEnded) return false;
      const a = this._attr('call-in-progress');
      if (a !== null) return a.trim().toLowerCase() === 'true';
      return this.m.serverInProgress !== false;
    }

    // _knownInProgress: the call is known to be in progress (the attribute
    // says so, or, without it, the server did), not merely not known to
    // have ended.
    _knownInProgress() {
      const a = this._attr('call-in-progress');
      if (a !== null) return a.trim().toLowerCase() === 'true';
      return this.m.serverInProgress === true;
    }

    _base() {
      const b = (this._attr('backend-url') || this._config.backendUrl || scriptBase || '/agent').trim();
      return b.replace(/\/+$/, '');
    }

    _url(path, base) {
      return new URL((base || this._base()) + path, document.baseURI).href;
    }

    // _hasToken reports whether a bearer token can be had: the page may set
    // utils (getTemporaryToken) or security-token after the element is
    // connected, and no request goes out before.
    _hasToken() {
      const u = this._utils;
      return !!(u && typeof u.getTemporaryToken === 'function') || !!(this._attr('security-token') || '').trim();
    }

    // _token returns the Authorization header value ('' when none). A
    // getTemporaryToken that does not answer within TOKEN_TIMEOUT_MS (or
    // before signal aborts) fails with APIError token_timeout.
    async _token(signal) {
      const u = this._utils;
      let t = '';
      if (u && typeof u.getTemporaryToken === 'function') {
        let timer = 0;
        let onAbort = null;
        const late = new Promise((resolve, reject) => {
          const fail = () => reject(new APIError('token_timeout', 0,
            'getTemporaryToken did not answer within ' + TOKEN_TIMEOUT_MS / 1000 + ' s', false, true));
          timer = setTimeout(fail, TOKEN_TIMEOUT_MS);
          if (signal) {
            onAbort = fail;
            if (signal.aborted) fail();
            else signal.addEventListener('abort', onAbort, { once: true });
          }
        });
        try {
          t = await Promise.race([Promise.resolve().then(() => u.getTemporaryToken(this._base())), late]);
        } finally {
          clearTimeout(timer);
          if (signal && onAbort) signal.removeEventListener('abort', onAbort);
        }
      } else {
        t = this._attr('security-token') || '';
      }
      t = String(t || '').trim();
      if (!t) return '';
      // getTemporaryToken may answer "<token_type> <access_token>".
      return /^bearer\s+/i.test(t) ? t : 'Bearer ' + t;
    }

    // _api POSTs body to path under base (default _base()).
    async _api(path, body, base, signal) {
      let auth;
      try {
        auth = await this._token(signal);
      } catch (e) {
        if (e instanceof APIError) {
          console.error('voicegate-agent: ' + e.message);
          throw e;
        }
        console.error('voicegate-agent: getTemporaryToken failed', e);
        throw new APIError('unauthenticated', 0, 'getTemporaryToken failed: ' + e, false, true);
      }
      const headers = { 'Content-Type': 'application/json', Accept: 'application/json' };
      if (auth) headers.Authorization = auth;
      let res;
      try {
        res = await fetch(this._url(path, base), {
          method: 'POST', headers, body: JSON.stringify(body), cache: 'no-store', credentials: 'omit', signal,
        });
      } catch (e) {
        throw new APIError('network', 0, String(e && e.message || e));
      }
      let data = null;
      try { data = await res.json(); } catch (_) { data = null; }
      if (!res.ok) {
        const served = !!(data && typeof data.code === 'string' && data.code);
        const code = served ? data.code : codeOfStatus(res.status);
        const err = new APIError(code, res.status, (data && data.error) || res.statusText, served);
        err.auth = auth; // the token refused (a 403 is retried with another)
        // Retry-After in seconds (429, 503), when the answer gives it.
        const ra = Number(res.headers.get('Retry-After'));
        if (res.headers.get('Retry-After') && Number.isInteger(ra) && ra >= 0) err.retryAfter = ra;
        throw err;
      }
      return data || {};
    }

    // ---- status ----

    _queueLoad() {
      if (this._loadQueued) return;
      this._loadQueued = true;
      queueMicrotask(() => {
        this._loadQueued = false;
        // A start whose answer was lost is being stopped (_lost): its
        // end reads nothing, and the buttons stay off until then.
        if (this.isConnected && !this._op && !this._recovering) this._load(0);
      });
      this._render();
    }

    // _load reads the call's status. after: the read follows an
    // operation's result (did anything get stored?); it then never
    // replaces that result: a failure is logged and retried quietly.
    async _load(attempt, after) {
      clearTimeout(this._loadTimer);
      const gen = this._gen;
      const seq = ++this._loadSeq; // only the newest status answer counts
      const callId = this.callId;
      if (!callId || !this._hasToken()) {
        this.m.phase = 'idle';
        this.m.registered = null;
        this.m.next = 'register';
        this._render();
        return;
      }
      this.m.phase = 'loading';
      this._render();
      // The new call's status once what ran on the call left is stopped
      // (a register cancelled while its credential was written may have
      // stored it: the caller may be on this call too).
      if (this._leaving.size) {
        await Promise.all([...this._leaving]);
        if (gen !== this._gen || seq !== this._loadSeq) return;
      }
      let st;
      try {
        st = await this._api('/status', { call_id: callId, caller_id: (this._attr('caller-id') || '').trim() });
      } catch (e) {
        if (gen !== this._gen || seq !== this._loadSeq) return;
        const keep = after && this.m.outcome && this.m.outcome.row !== ROWS.retrying;
        if (e.code === 'network' || e.code === 'internal') {
          // Keep trying: the service may be restarting.
          this.m.phase = 'loading';
          if (keep) {
            console.warn('voicegate-agent: reading the call\u2019s status failed; retrying:', e.message || e);
            this._render();
          } else this._show(ROWS.retrying, e);
          const delay = Math.min(15000, 1000 * 2 ** Math.min(attempt, 4));
          this._loadTimer = setTimeout(() => { if (gen === this._gen && !this._op) this._load(attempt + 1, keep); }, delay);
          return;
        }
        if (e.code === 'no_call' && e.served) {
          // The service says the call has ended.
          this._ended();
          return;
        }
        this.m.phase = 'idle';
        this.m.registered = null;
        if (keep) {
          // The operation's result stays: it is what the agent must see
          // (a call that ended may no longer have a caller to look up).
          if (this.m.outcome.row === ROWS.store_checking) this._show(ROWS.store_unknown, null, this.m.outcome.detail);
          console.error('voicegate-agent: reading the call\u2019s status after the result failed: ' + (e.status || 'nothing') + ' ' + e.code + ': ' + e.message);
          this._render();
          return;
        }
        this._showStatusError(e);
        return;
      }
      if (gen !== this._gen || seq !== this._loadSeq) return;
      this._apply(st);
    }

    // _apply takes in a status answer st of the call shown.
    _apply(st) {
      this._statusAt = performance.now();
      this._status = st;
      // A stop of an operation whose stream was lost that did not get
      // through (_streamLost): the service answers again.
      const ps = this._pendingStop;
      this._pendingStop = null;
      if (ps) this._api('/stop', { operation_id: ps.id }, ps.base).catch(() => {});
      this._refreshFailures = 0;
      this._recovered();
      if (this.m.forbidden) {
        // Accepted now (another token, or assigned since).
        clearTimeout(this._tokenTimer);
        if (this.m.outcome && this.m.outcome.row === ROWS.forbidden) {
          this.m.outcome = null;
          this._quiet();
        }
      }
      this.m.forbidden = false;
      this.m.unusable = '';
      // A call that ended may be answered without its caller (a Genesys
      // call is forgotten with its AudioHook session): the caller already
      // known stays.
      const caller = typeof st.caller_id === 'string' ? st.caller_id : '';
      if (caller || st.call_in_progress !== false) this.m.callerId = caller;
      // The server saw the call live and now says it is not: it ended,
      // even where call-in-progress stays "true" (the Genesys page).
      const wasLive = this.m.serverInProgress === true || this.m.serverEnded;
      this.m.serverInProgress = typeof st.call_in_progress === 'boolean' ? st.call_in_progress : null;
      this.m.serverEnded = wasLive && this.m.serverInProgress === false;
      this._noteCallEnded();
      const was = this.m.registered;
      this.m.registered = !!st.registered;
      this.m.registeredAt = this.m.registered && typeof st.registered_at === 'string' ? st.registered_at : null;
      // Deleted since (by this caller's other call): what this call
      // learnt of another call's registration no longer holds.
      if (!this.m.registered) this.m.byOther = '';
      if (!this.m.registered) this.m.next = 'register';
      else if (was !== true || this.m.next === 'register') this.m.next = 'verify';
      this.m.phase = 'idle';
      const o = this.m.outcome;
      // A green card holds only for the registration it was earned under
      // (its registered_at, learnt from the first status read after it):
      // a delete and a register elsewhere between two reads leave
      // registered true with another registered_at, and the card goes.
      // Until that anchor is known (the reads after the result failed), a
      // registered_at at or after the result's time + 1 s (that time is in
      // whole seconds) is a registration made after the result: not the
      // one it was earned under.
      if (o && o.kind === 'success' && this.m.registered) {
        const reg = this.m.registeredAt !== null ? new Date(this.m.registeredAt) : null;
        const later = o.regAt === undefined && o.evAt && reg && !isNaN(reg) && reg.getTime() >= o.evAt.getTime() + 1000;
        if (o.regAt === undefined && !later) o.regAt = this.m.registeredAt;
        else if (later || (typeof o.regAt === 'string' && this.m.registeredAt !== null && this.m.registeredAt !== o.regAt)) {
          this.m.notPerformed = false; // that note was about the earlier result
          // The voiceprint may be another one: amber, said assertively.
          this._show({
            kind: 'error', title: 'Status changed',
            cause: 'The caller\u2019s voice registration was deleted and registered again meanwhile, elsewhere (on another call, in another tab or by another agent). The earlier result on this page no longer applies.',
            todo: 'Check the caller again before relying on a result.',
          }, null);
          this._scheduleRefresh();
          return;
        }
      }
      // Another check ended on this call after the one a green card is
      // about (another tab, another agent): the card no longer says what
      // the call's latest check found.
      const lo = st.last_operation;
      if (o && o.kind === 'success' && o.opId && lo && typeof lo === 'object' && typeof lo.operation_id === 'string' &&
        lo.operation_id !== o.opId) {
        const t = typeof lo.time === 'string' ? new Date(lo.time) : null;
        if (t && !isNaN(t) && (!o.at || t > o.at)) {
          this.m.notPerformed = false; // that note was about the earlier result
          this._show({
            kind: 'error', title: 'Status changed',
            cause: 'Another check ran on this call (' + lastResultWords(lo) + ') after the result shown here, in another tab or by another agent. The earlier result on this page no longer applies.',
            todo: 'Check the caller again before relying on a result.',
          }, null);
          this._scheduleRefresh();
          return;
        }
      }
      // "Another check is running" holds while it runs: once the service
      // says none runs on the call, the card goes.
      if (o && o.row === ROWS.busy && st.operation_running === false) {
        this.m.outcome = null;
        this._quiet();
      }
      if (o && o.row === ROWS.store_checking) {
        // Not registered counts only when the call's caller was looked up
        // (a call the server no longer knows answers false).
        let row = ROWS.store_unknown;
        if (st.registered === true) row = ROWS.store_saved;
        else if (st.registered === false && st.call_in_progress === true) row = ROWS.store;
        if (row === ROWS.store_unknown) this.m.registered = null;
        this._show(row, null, o.detail);
        this._scheduleRefresh();
        return;
      }
      this._render();
      this._scheduleRefresh();
    }

    // _ended takes in the service's word that the call has ended (409
    // no_call on a status read): the buttons go off for good, and the
    // call's end is said, unless an operation's result is shown.
    _ended() {
      clearTimeout(this._refreshTimer);
      this._statusAt = performance.now();
      this._status = null;
      this.m.phase = 'idle';
      this.m.registered = null;
      this.m.serverInProgress = false;
      this.m.serverEnded = true;
      this.m.sawLive = true;
      this.m.forbidden = false;
      clearTimeout(this._tokenTimer);
      const o = this.m.outcome;
      if (!o || o.row === ROWS.retrying || o.row === ROWS.forbidden || o.row === ROWS.unauthenticated) {
        this._show(ROWS.ended, null);
        return;
      }
      // A register that ended in error-store cannot be looked up on a
      // call that ended: not confirmed.
      if (o.row === ROWS.store_checking) {
        this._show(ROWS.store_unknown, null, o.detail);
        return;
      }
      this._noteCallEnded();
      this._render();
    }

    // ---- keeping the status fresh ----

    // _idle reports whether nothing runs or waits on the call shown, the
    // call is live, and its status can be read.
    _idle() {
      return this.isConnected && !!this.callId && this._hasToken() && this.inProgress && !this._callEnded() &&
        this.m.phase === 'idle' && !this._op && !this._starting && !this._recovering && !this._leaving.size &&
        !this.m.forbidden && !this.m.unusable && !this._loadQueued;
    }

    // _scheduleRefresh plans the next periodic status read (REFRESH_MS with
    // jitter, doubled for each failed read up to REFRESH_MAX_MS), only
    // while the page is visible.
    _scheduleRefresh() {
      clearTimeout(this._refreshTimer);
      this._refreshTimer = 0;
      if (document.visibilityState === 'hidden' || !this._idle()) return;
      const base = Math.min(REFRESH_MAX_MS, REFRESH_MS * 2 ** this._refreshFailures);
      const delay = base + (Math.random() * 2 - 1) * REFRESH_JITTER_MS;
      this._refreshTimer = setTimeout(() => this._refresh(), delay);
    }

    // _pageShown: the page became visible or got the focus. A status read
    // more than REFRESH_MIN_AGE_MS old is read again now; a hidden page
    // reads nothing.
    _pageShown() {
      if (document.visibilityState === 'hidden') {
        clearTimeout(this._refreshTimer);
        this._refreshTimer = 0;
        return;
      }
      // While reads fail, a focus does not read sooner than the back-off.
      const wait = this._refreshFailures ? Math.min(REFRESH_MAX_MS, REFRESH_MS * 2 ** (this._refreshFailures - 1)) : REFRESH_MIN_AGE_MS;
      if (performance.now() - Math.max(this._statusAt, this._refreshTriedAt || 0) < wait) {
        if (!this._refreshTimer) this._scheduleRefresh();
        return;
      }
      this._refresh();
    }

    // _refresh reads the call's status while the widget is idle: quietly
    // (the buttons stay as they are) when the last read is recent, with
    // the buttons off ("Loading…") when it is older than STALE_MS. Never
    // two at a time; a read _load starts meanwhile wins.
    async _refresh() {
      clearTimeout(this._refreshTimer);
      this._refreshTimer = 0;
      if (this._refreshing || !this._idle() || document.visibilityState === 'hidden') return;
      if (this._statusAt && performance.now() - this._statusAt > STALE_MS) {
        this._load(0);
        return;
      }
      const gen = this._gen;
      const seq = ++this._loadSeq;
      this._refreshing = true;
      this._refreshTriedAt = performance.now();
      let st;
      try {
        st = await this._api('/status', { call_id: this.callId, caller_id: (this._attr('caller-id') || '').trim() });
      } catch (e) {
        if (gen !== this._gen || seq !== this._loadSeq) return;
        // Something started meanwhile (an operation, a delete being
        // confirmed): its own status read decides, not this one.
        if (this.m.phase !== 'idle' || this._op || this._starting) return;
        if (e.code === 'no_call' && e.served) {
          this._ended();
          return;
        }
        if (e.served && (e.code === 'forbidden' || e.code === 'unauthenticated' || e.code === 'bad_caller_id')) {
          // The service's answer changed (the call was taken from this
          // agent, the session ended): said as a status read says it.
          this.m.registered = null;
          this._showStatusError(e);
          return;
        }
        this._refreshFailures++;
        console.warn('voicegate-agent: refreshing the call\u2019s status failed; next try in a while:', e.message || e);
        this._scheduleRefresh();
        return;
      } finally {
        this._refreshing = false;
      }
      if (gen !== this._gen || seq !== this._loadSeq) return;
      // Something started meanwhile: its own status read follows it.
      if (this.m.phase !== 'idle' || this._op || this._starting) return;
      const was = this.m.registered;
      const wasLive = this.inProgress;
      this._apply(st);
      // A card of an earlier operation ("Voice registered", "Caller
      // verified", "Registration deleted") no longer describes the caller
      // once their registration changed elsewhere (another call of the
      // caller, or this call in another tab or another agent's desk: a
      // status read cannot tell which): it is replaced, so no
      // green stays on screen beside a status that contradicts it.
      if (this.m.outcome && was !== null && this.m.registered !== null && this.m.registered !== was) {
        const cause = this.m.registered
          ? 'The caller was registered meanwhile, elsewhere (on another call, in another tab or by another agent). The earlier result on this page no longer applies.'
          : 'The caller\u2019s voice registration was deleted meanwhile, elsewhere (on another call, in another tab or by another agent). The earlier result on this page no longer applies.';
        this.m.notPerformed = false; // that note was about the earlier result
        this._show({ kind: 'info', title: 'Status changed', cause, todo: '' }, null);
        return;
      }
      // A change seen on the status line is said too (politely), with
      // what the main button now does.
      if (this.m.registered !== was || this.inProgress !== wasLive) {
        const state = this.$('state').textContent;
        const main = this.$('main');
        this._announce('Status updated: ' + state + '.' + (main.disabled ? '' : ' ' + main.textContent + ' is available.'));
      }
    }

    // ---- operations ----

    _onMain() {
      if (this.m.phase !== 'idle' || !this.inProgress || this.m.forbidden || this.m.unusable) return;
      if (this.m.registered === null) { this._load(0); return; }
      if (this._stale()) { this._freshThen(this.m.next); return; }
      this._start(this.m.next);
    }

    // _stale reports whether the call's status is too old to act on
    // (STALE_MS).
    _stale() {
      return !this._statusAt || performance.now() - this._statusAt > STALE_MS;
    }

    // _freshThen reads the call's status (the buttons off meanwhile) and
    // starts next only if it is still what the status calls for.
    async _freshThen(next) {
      const gen = this._gen;
      await this._load(0);
      if (gen !== this._gen || this.m.phase !== 'idle' || this.m.next !== next || this.m.registered === null ||
        !this.inProgress || this.m.forbidden || this.m.unusable || this._op || this._starting) return;
      this._start(next);
    }

    _body(kind) {
      const c = this._config || {};
      const body = { call_id: this.callId, caller_id: this.callerId };
      if (kind === 'register') {
        const r = c.register || {};
        const d = configNumber(r.audioTotalDuration, 'register.audioTotalDuration', 0, 30);
        const a = configNumber(r.authenticityThreshold, 'register.authenticityThreshold', 0, 1);
        if (d !== undefined) body.audio_total_duration = d;
        if (a !== undefined) body.authenticity_threshold = a;
        if (r.modelHash !== undefined && r.modelHash !== null && String(r.modelHash).trim() !== '') {
          body.model_hash = String(r.modelHash).trim();
        }
      } else {
        const v = c.verify || {};
        const d = configNumber(v.audioTotalDuration, 'verify.audioTotalDuration', 0, 30);
        const a = configNumber(v.authenticityThreshold, 'verify.authenticityThreshold', 0, 1);
        const s = configNumber(v.scoreThreshold, 'verify.scoreThreshold', 0, 1);
        if (d !== undefined) body.audio_total_duration = d;
        if (a !== undefined) body.authenticity_threshold = a;
        if (s !== undefined) body.score_threshold = s;
      }
      return body;
    }

    async _start(kind) {
      let body;
      try {
        body = this._body(kind);
      } catch (e) {
        console.error('voicegate-agent: wrong configuration:', e.message);
        this._show(ROWS.configuration, null, e.message);
        return;
      }
      const gen = this._gen;
      const base = this._base();
      body.request_id = requestId();
      const starting = { kind, callId: body.call_id, callerId: body.caller_id, requestId: body.request_id, base, settle: null };
      this._closeStream();
      // A new operation: nothing of the previous one stays on screen.
      this.m.outcome = null;
      this.m.byOther = '';
      this.m.notPerformed = false;
      const need = body.audio_total_duration || 0;
      this.m.progress = { have: 0, need };
      this.m.phase = 'starting';
      this._render();
      this._announce(kind === 'register' ? 'Registering the caller\u2019s voice.' : 'Checking the caller\u2019s voice.');
      let r;
      this._starting = starting;
      try {
        r = await this._api('/' + kind, body, base);
      } catch (e) {
        if (this._starting === starting) this._starting = null;
        // Left while starting: only a start the service itself refused
        // (its JSON error, 4xx) started nothing. Any other failure (no
        // answer, a proxy's 502/504, a 5xx) may have lost the answer of
        // an operation that runs.
        if (starting.settle) starting.settle(refused(e) ? null : undefined);
        if (gen !== this._gen) return;
        this.m.phase = 'idle';
        this.m.progress = null;
        if (!refused(e)) {
          // The answer was lost (no answer, a proxy's page, a 5xx): an
          // operation may run that the widget has no id of.
          this._lost(starting, e);
          return;
        }
        if (e.code === 'already_registered') {
          this.m.registered = true;
          this.m.byOther = 'start';
          this.m.next = 'verify';
        } else if (e.code === 'not_registered') {
          this.m.registered = false;
          this.m.next = 'register';
        }
        this._showAPIError(e);
        return;
      }
      if (this._starting === starting) this._starting = null;
      const op = (r && typeof r.operation_id === 'string' && r.operation_id && typeof r.events_url === 'string') ? {
        id: r.operation_id, kind: r.kind || (kind === 'register' ? 'register' : 'verify'),
        callId: body.call_id, callerId: typeof r.caller_id === 'string' && r.caller_id ? r.caller_id : body.caller_id,
        base, url: new URL(r.events_url, this._url('/', base)).href,
        es: null, lastSeq: 0, retries: 0, timer: 0, done: false, lostAt: 0, lostTimer: 0, stopWanted: false, stopRefused: null,
      } : null;
      // Left while starting: _abandon stops it.
      if (starting.settle) starting.settle(op || undefined);
      if (gen !== this._gen) return;
      if (!op) {
        // A 2xx whose body was cut or is not the expected JSON: the
        // operation may run, and the widget has no id of it.
        console.error('voicegate-agent: unexpected answer from ' + kind, r);
        this.m.phase = 'idle';
        this.m.progress = null;
        this._lost(starting, new APIError('internal', 0, 'the answer could not be read'));
        return;
      }
      this.m.phase = 'running';
      this._op = op;
      this._render();
      this._listen();
    }

    // _lost stops a start whose answer was lost by its call and request
    // id (_stopLost, retried until LEAVE_TIMEOUT_MS) and says what became
    // of it: stopped with nothing registered or checked only when the
    // server's answer confirms it, else registered, ended, or not
    // confirmed.
    async _lost(starting, e) {
      const gen = this._gen;
      const reg = starting.kind === 'register';
      console.error('voicegate-agent: the answer to ' + starting.kind + ' was lost (' + (e.status || 'no answer') + ' ' + e.code + ': ' + e.message + '); stopping it by its request id');
      const rc = { kind: starting.kind, callId: starting.callId, callerId: starting.callerId, requestId: starting.requestId, base: starting.base };
      this._recovering = rc;
      this.m.phase = 'stopping';
      this._show(ROWS.lost_stopping, null);
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), LEAVE_TIMEOUT_MS);
      let why = '';
      const note = (err) => {
        if (err && err.code === 'token_timeout') why = 'The agent desk did not give the widget a sign-in token in time.';
        else if (err && (err.code === 'network' || err.status >= 500)) why = 'The voice service could not be reached.';
        else if (err && err.status === 429) why = 'Too many requests on this call.';
        else if (err && err.code === 'no_call' && err.served) {
          // no_call: the call ended, or the agent's part in it did (a
          // transfer, a wrap-up).
          why = 'The voice service says your part in this call has ended.';
        }
        throw err;
      };
      let row = reg ? ROWS.lost_register_unknown : ROWS.lost_verify_unknown;
      let registered = null;
      try {
        const got = await this._stopLost(rc, ctl.signal, note);
        if (got.end === 'stopped') row = reg ? ROWS.lost_register_stopped : ROWS.lost_verify_stopped;
        else if (got.end === 'done' && got.saved) row = ROWS.lost_register_saved;
        else if (got.end === 'done') row = reg ? ROWS.lost_register_done : ROWS.lost_verify_done;
        else if (reg && got.result) row = ROWS.lost_register_ended;
        registered = got.registered;
      } catch (err) {
        console.error('voicegate-agent: what runs on the call could not be confirmed stopped', err);
      } finally {
        clearTimeout(timer);
      }
      // Left meanwhile: the notice of the call left says it (_leave).
      if (gen !== this._gen || this._recovering !== rc) return;
      // The call's status, before the outcome is shown: whether the call
      // still runs decides what the outcome can ask of the agent.
      const readAt = this._statusAt;
      await this._load(0, true);
      if (gen !== this._gen || this._recovering !== rc) return;
      this._recovering = null;
      this.m.phase = 'idle';
      if (reg) {
        // The status just read is newer than the stop's answer (a delete
        // from elsewhere may have come between): it decides whether the
        // caller is registered when it looked the caller up (a live
        // call); else what the stop's answer implied stands.
        const st = this._statusAt !== readAt ? this._status : null;
        if (!st || st.call_in_progress !== true || typeof st.registered !== 'boolean') {
          this.m.registered = registered;
          this.m.next = registered ? 'verify' : 'register';
        }
        this.m.lastKind = 'register';
      }
      this._show(row, null, row === ROWS.lost_register_unknown || row === ROWS.lost_register_ended || row === ROWS.lost_verify_unknown ? why : '');
    }

    // _listen opens (or reopens) the current operation's event stream.
    // EventSource resumes by itself after a dropped connection, sending
    // Last-Event-ID. When it gives up (the service answered with an HTTP
    // error, which EventSource does not tell), _probe asks the events URL
    // itself for the status: a service that no longer knows the operation
    // (401, 403, 404, 410: it restarted, or the link expired) ends the
    // view with its result unknown (_streamLost); otherwise a new stream
    // is opened after a back-off, and events already seen are skipped by
    // seq. Without contact for LOST_CONTACT_MS (no connection accepted,
    // no event) the result is said unknown too: the widget never shows a
    // check in progress that it cannot follow.
    _listen() {
      const op = this._op;
      if (!op || op.done) return;
      const es = new EventSource(op.url);
      op.es = es;
      const onEvent = (msg) => {
        if (this._op !== op || op.es !== es) return;
        let ev;
        try {
          ev = JSON.parse(msg.data);
        } catch (e) {
          console.error('voicegate-agent: bad event', msg.data);
          return;
        }
        this._contact(op);
        this._event(op, ev);
      };
      for (const name of EVENT_NAMES) es.addEventListener(name, onEvent);
      es.onmessage = onEvent;
      es.onopen = () => {
        if (this._op !== op || op.es !== es) return;
        op.retries = 0;
        this._contact(op);
        // A stop pressed while the service could not be reached.
        if (op.stopWanted) this._stop(true);
      };
      es.onerror = () => {
        if (this._op !== op || op.es !== es || op.done) return;
        if (!op.lostAt) {
          op.lostAt = performance.now();
          clearTimeout(op.lostTimer);
          op.lostTimer = setTimeout(() => this._streamLost(op, 'silent'), LOST_CONTACT_MS);
        }
        const o = this.m.outcome;
        if (!o || (o.row !== ROWS.retrying && o.row !== ROWS.stop_unreachable)) this._show(ROWS.retrying, null);
        if (es.readyState === EventSource.CLOSED) {
          es.close();
          op.es = null;
          this._probe(op);
        }
      };
    }

    // _contact notes that the service answered op's event stream.
    _contact(op) {
      op.lostAt = 0;
      clearTimeout(op.lostTimer);
      op.lostTimer = 0;
    }

    // _probe asks op's events URL why its stream failed (EventSource hides
    // the status): a service that no longer knows the operation, or the
    // link (401, 403, 404, 410; the service answers an unknown operation
    // as a link that does not verify), ends the view (_streamLost); any
    // other answer, or none, opens a new stream after a back-off.
    async _probe(op) {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), PROBE_TIMEOUT_MS);
      let status = 0;
      try {
        const res = await fetch(op.url, { signal: ctl.signal, cache: 'no-store', credentials: 'omit', headers: { Accept: 'text/event-stream' } });
        status = res.status;
      } catch (e) {
        console.warn('voicegate-agent: the events of ' + op.id + ' cannot be read:', e && e.message || e);
      } finally {
        clearTimeout(timer);
        ctl.abort(); // only the status was wanted, not the stream
      }
      if (this._op !== op || op.done) return;
      if ([401, 403, 404, 410].includes(status)) {
        console.error('voicegate-agent: the voice service answered ' + status + ' to the events of ' + op.id + ': it no longer knows the operation');
        this._streamLost(op, 'gone');
        return;
      }
      const delay = Math.min(15000, 1000 * 2 ** Math.min(op.retries, 4));
      op.retries++;
      clearTimeout(op.timer);
      op.timer = setTimeout(() => { if (this._op === op && !op.done && !op.es) this._listen(); }, delay);
    }

    // _streamLost ends the view of op, whose result cannot be had: why is
    // 'gone' (the service answers but no longer knows the operation) or
    // 'silent' (no contact for LOST_CONTACT_MS). The result is said
    // unknown, in amber, never passed; onResponse and voicegate-result
    // are not called (there is no terminal event). The operation is
    // stopped in case it still runs somewhere (a registration nobody
    // follows must not be stored; a stop that does not get through is
    // sent again with the next status read), and the call's status is
    // read again, which brings the buttons back as it allows; a status
    // read refused 401 says the sign-in is no longer accepted.
    async _streamLost(op, why) {
      if (this._op !== op || op.done) return;
      op.done = true;
      this._contact(op);
      this._closeStream();
      const gen = this._gen;
      const reg = op.kind === 'register';
      this.m.lastKind = op.kind;
      this.m.progress = null;
      this.m.notPerformed = false;
      if (!reg) this.m.next = 'reverify';
      this.m.phase = 'loading';
      this._pendingStop = op;
      const stopped = this._api('/stop', { operation_id: op.id }, op.base).then(() => {
        if (this._pendingStop === op) this._pendingStop = null;
      }, (e) => {
        // Sent again only after a failure to reach the service or a
        // sign-in refused (the next status read that gets through).
        if (this._pendingStop === op && e.code !== 'network' && !(e.status >= 500) && e.status !== 401) this._pendingStop = null;
        // Refused for good (this agent may not stop it): said, as the
        // operation may still run where nobody follows it.
        if (e.status === 403) console.error('voicegate-agent: the voice service refused to stop ' + op.id + ' (403 ' + e.code + '): it may still run');
      });
      if (why === 'silent') {
        const row = reg ? ROWS.silent_register : ROWS.silent_verify;
        this._show(Object.assign({}, row, { cause: row.cause.replace('{s}', String(LOST_CONTACT_MS / 1000)) }), null);
        this._load(0, true);
        return;
      }
      this._show(reg ? ROWS.gone_register : ROWS.gone_verify, null);
      // Stopped first (waiting at most PROBE_TIMEOUT_MS), then looked
      // up: a register that still ran somewhere cannot store after the
      // status said not registered.
      await Promise.race([stopped, new Promise((resolve) => setTimeout(resolve, PROBE_TIMEOUT_MS))]);
      if (gen !== this._gen || this._op || this._starting) return;
      let st;
      try {
        st = await this._api('/status', { call_id: op.callId, caller_id: (this._attr('caller-id') || '').trim() }, op.base);
      } catch (e) {
        if (gen !== this._gen || this._op) return;
        if (e.served && e.code === 'unauthenticated') {
          this.m.phase = 'idle';
          this.m.registered = null;
          this._show(reg ? ROWS.signin_register : ROWS.signin_verify, e);
          return;
        }
        this._load(0, true);
        return;
      }
      if (gen !== this._gen || this._op || this._starting) return;
      if (reg) {
        // Not registered counts only when the call's caller was looked up.
        if (st.registered === true) this._show(ROWS.gone_register_saved, null);
        else if (st.registered === false && st.call_in_progress === true) this._show(ROWS.gone_register_none, null);
      }
      this._apply(st);
    }

    _event(op, ev) {
      // Never show another operation's result.
      if (!ev || ev.operation_id !== op.id) return;
      if (typeof ev.seq === 'number') {
        if (ev.seq <= op.lastSeq) return;
        op.lastSeq = ev.seq;
      }
      op.retries = 0;
      this._recovered();
      if (ev.type === 'progress') {
        const need = Number(ev.net_speech_needed) || (this.m.progress && this.m.progress.need) || 0;
        this.m.progress = { have: Number(ev.net_speech) || 0, need };
        this._render();
        return;
      }
      if (TERMINAL.includes(ev.type) || (ev.reason && ev.type !== 'started')) {
        this._terminal(op, ev);
        return;
      }
      this._render(); // started, or a type this widget does not know
    }

    _terminal(op, ev) {
      op.done = true;
      this._closeStream();
      const kind = ev.kind || op.kind;
      const reason = ev.reason || REASON_OF_TYPE[ev.type] || 'internal';
      this.m.phase = 'idle';
      this.m.progress = null;
      this.m.lastKind = kind;
      this.m.notPerformed = ev.anti_spoofing === 'not-performed';
      // Green only for the operation's own success: a reason "success" on
      // any other type (an error) is not one.
      const success = ev.type === 'result-success';
      // Scores only mean something for a result, not for an error.
      const detail = success || ['authentication', 'spoof'].includes(reason) ? this._detail(ev) : '';
      // Cancelled by a delete: the caller is no longer registered, which
      // a status read made now could contradict (the delete removes the
      // credential once its operations have ended).
      const deleted = reason === 'cancelled' && ev.cause === 'deleted';
      if (success) {
        if (kind === 'register') {
          this.m.registered = true;
          this.m.next = 'verify';
          this._show({ kind: 'success', title: 'Voice registered', cause: 'The caller\u2019s voice is registered.', todo: '' }, null, detail, '', eventTime(ev));
        } else {
          this.m.next = 'reverify';
          this._show({ kind: 'success', title: 'Caller verified', cause: 'The voice matches the registered caller.', todo: '' }, null, detail, '', eventTime(ev));
        }
        // Which operation the green card is about: a later one on the
        // call (last_operation of a status read) replaces it (_apply).
        this.m.outcome.opId = op.id;
      } else {
        if (kind !== 'register') this.m.next = 'reverify';
        if (reason === 'configuration') {
          console.error('voicegate-agent: configuration error from the voice service:', ev.exception || '', ev.error || '', ev);
        }
        let row = ROWS[reason] || ROWS.internal;
        // The call's audio ended with the call: say that, not "keep the
        // caller talking".
        if (reason === 'speech' && this._callEnded()) row = ROWS.call_ended;
        // A spoof verdict from an engine that did no anti-spoofing is not
        // a verdict on the voice.
        if (reason === 'spoof' && this.m.notPerformed) row = ROWS.spoof_not_performed;
        // A store write whose answer was lost may have landed: the status
        // read below says which (see _load).
        if (reason === 'store' && kind === 'register') row = ROWS.store_checking;
        // Another call's register of this caller stored first: a failure,
        // whatever the status read below says of the caller.
        // Cancelled by something else than a stop (a delete from another
        // call, …): say what, not "stopped".
        if (reason === 'cancelled') row = cancelledRow(ev.cause, kind) || row;
        if (deleted) {
          this.m.registered = false;
          this.m.next = 'register';
        }
        if (reason === 'already_registered') {
          row = ROWS.store_conflict;
          this.m.registered = true;
          this.m.byOther = 'conflict';
          this.m.next = 'verify';
        }
        this._show(row, null, detail);
      }
      // After every result: did anything get stored, and is the call still
      // live (a hang-up can end a check as "not enough speech")?
      if (!deleted) this._load(0, true);
      const u = this._utils;
      if (u && typeof u.onResponse === 'function') {
        try {
          const p = u.onResponse(ev, undefined);
          if (p && typeof p.catch === 'function') p.catch((e) => console.error('voicegate-agent: onResponse failed', e));
        } catch (e) {
          console.error('voicegate-agent: onResponse failed', e);
        }
      }
      this.dispatchEvent(new CustomEvent('voicegate-result', { detail: ev, bubbles: true, composed: true }));
    }

    // _noteCallEnded: a "not enough speech" result, or a start refused
    // with no_call, whose call turns out to have ended (the stream's end
    // can reach the widget before the news of the hang-up) is shown, and
    // said, as the call's end.
    _noteCallEnded() {
      const o = this.m.outcome;
      if (!o || !this._callEnded()) return;
      if (o.row === ROWS.speech) this._show(ROWS.call_ended, null, o.detail);
      else if (o.row === ROWS.no_call) this._show(ROWS.ended, null);
      // A todo that asked for a button no longer offered.
      else if (o.row && this._words(o.row, o.who).todo !== o.todo) this._show(o.row, null, o.detail, o.who);
    }

    // _callEnded: this call was seen live and has ended (the attribute or
    // the server says so).
    _callEnded() {
      return this.m.sawLive && (!this.inProgress || this.m.serverEnded);
    }

    _detail(ev) {
      const parts = [];
      if (typeof ev.score === 'number') {
        parts.push('score ' + ev.score.toFixed(2) + (typeof ev.score_threshold === 'number' ? ' (needs ' + ev.score_threshold.toFixed(2) + ')' : ''));
      }
      if (typeof ev.authenticity === 'number' && ev.anti_spoofing !== 'not-performed') {
        parts.push('authenticity ' + ev.authenticity.toFixed(2) + (typeof ev.authenticity_threshold === 'number' ? ' (needs ' + ev.authenticity_threshold.toFixed(2) + ')' : ''));
      }
      if (typeof ev.net_speech === 'number' && ev.net_speech > 0) {
        parts.push(seconds(ev.net_speech) + ' s of speech');
      }
      return parts.join(' \u00b7 ');
    }

    // _stop stops the operation shown (the Stop button; again, resend,
    // once its stream is back when the service could not be reached).
    async _stop(resend) {
      const op = this._op;
      if (!op || op.done || this._stopping || (resend && !op.stopWanted)) return;
      // aria-disabled, not disabled: a disabled button loses keyboard
      // focus to the page, and the focus is to move on to the main
      // button when the operation ends (see _render).
      const stop = this.$('stop');
      this._stopping = true;
      stop.setAttribute('aria-disabled', 'true');
      try {
        await this._api('/stop', { operation_id: op.id });
        op.stopWanted = false;
        if (op.stopRefused) {
          // Pressed again and delivered: the stream brings the end.
          op.stopRefused = null;
          if (this._op === op && this.m.outcome && this.m.outcome.row.title === 'Stop did not go through') {
            this.m.outcome = null;
            this._quiet();
            this._render();
          }
        }
        if (this._op === op && this.m.outcome && this.m.outcome.row === ROWS.stop_unreachable) {
          // Delivered: the stream, when it is back, brings the end.
          if (op.lostAt) this._show(ROWS.retrying, null);
          else this._recovered();
          this._render();
        }
      } catch (e) {
        // no_call: the call has ended, and its audio with it: the
        // operation's own end follows on its stream.
        if (this._op !== op || op.done || e.code === 'no_call') return;
        if (op.lostAt && (e.code === 'network' || e.status >= 500)) {
          // The stream is down too: the stop is sent again once it is
          // back (es.onopen); LOST_CONTACT_MS bounds the wait.
          op.stopWanted = true;
          this._show(ROWS.stop_unreachable, e);
          return;
        }
        if (e.served && (e.status === 404 || (e.status === 401 && op.lostAt))) {
          // The service does not know the operation (404), or refuses
          // the sign-in while the stream is down: the events URL, which
          // does not need the sign-in, tells whether it still runs.
          console.error('voicegate-agent: the voice service answered ' + e.status + ' ' + e.code + ' to Stop; looking at the operation\u2019s events');
          clearTimeout(op.timer);
          if (op.es) op.es.close();
          op.es = null;
          // Said at once: a probe that finds the operation gone says
          // its result unknown instead (_streamLost); one that finds it
          // running reopens the stream, and the notice stays until the
          // result (_recovered shows it again after a "Retrying…").
          op.stopRefused = e.status === 401 ? ROWS.stop_refused_signin : ROWS.stop_refused_unknown;
          this._show(op.stopRefused, e);
          this._probe(op);
          return;
        }
        if (e.code === 'network' || e.status >= 500) {
          // Stop did not reach the service, or it failed there: the
          // operation runs on (its stream is up) and its result comes.
          console.error('voicegate-agent: Stop failed: ' + (e.status || 'nothing') + ' ' + e.code + ': ' + e.message);
          op.stopRefused = e.code === 'network' ? ROWS.stop_refused_unreachable : e.status === 503 ? ROWS.stop_refused_unavailable : ROWS.stop_refused_internal;
          this._show(op.stopRefused, e);
          return;
        }
        this._showAPIError(e);
      } finally {
        this._stopping = false;
        stop.removeAttribute('aria-disabled');
      }
      // The stream delivers error-cancelled.
    }

    _closeStream() {
      const op = this._op;
      if (!op) return;
      clearTimeout(op.timer);
      clearTimeout(op.lostTimer);
      if (op.es) op.es.close();
      op.es = null;
      this._op = null;
    }

    // ---- delete ----

    _askDelete() {
      if (this.m.phase !== 'idle' || !this.m.registered || !this.inProgress || this.m.serverEnded || this._callEnded()) return;
      if (this._stale()) { this._freshDelete(); return; }
      this.m.phase = 'confirm';
      this._render();
      this.$('confirm-no').focus();
    }

    // _freshDelete reads a stale status first (the buttons off meanwhile)
    // and asks to confirm only if the caller is still registered.
    async _freshDelete() {
      const gen = this._gen;
      await this._load(0);
      if (gen !== this._gen || this._stale()) return;
      this._askDelete();
    }

    _cancelDelete() {
      if (this.m.phase !== 'confirm') return;
      this.m.phase = 'idle';
      this._render();
      this.$('trash').focus();
    }

    async _delete() {
      if (this.m.phase !== 'confirm') return;
      const gen = this._gen;
      this.m.phase = 'deleting';
      this._render();
      let r;
      try {
        r = await this._api('/delete', { call_id: this.callId, caller_id: this.callerId });
      } catch (e) {
        if (gen !== this._gen) return;
        this.m.phase = 'idle';
        if (e.served && e.code === 'no_call') {
          // Refused: the call ended (Flex: the task is wrapping up).
          this._show(ROWS.delete_ended, e);
          this._ended();
        } else if (e.served) {
          // Refused for another reason: said, and that nothing went.
          this._showAPIError(e);
          const a = this.m.outcome;
          if (a) this._show(Object.assign({}, a.row, { title: 'Registration not deleted', cause: 'Nothing was deleted. ' + a.title + ': ' + a.cause }), e);
        } else this._showAPIError(e);
        this.$('main').focus();
        return;
      }
      if (gen !== this._gen) return;
      this.m.registered = false;
      this.m.byOther = '';
      this.m.next = 'register';
      this.m.phase = 'idle';
      this.m.notPerformed = false;
      // deleted:false: nothing was stored (deleted meanwhile elsewhere).
      // The audio is said removed only when the service says it removed
      // some (audio_deleted): a service that keeps none removes none.
      const audio = !!(r && r.audio_deleted === true);
      if (r && r.deleted === false) {
        const cause = 'The caller had no voice registration: it was already deleted.' + (audio ? ' Enrolment audio left from it was removed.' : '');
        this._show({ kind: 'info', title: 'Nothing to delete', cause, todo: '' }, null);
      } else {
        const cause = audio ? 'The caller\u2019s voice registration and its audio were removed.' : 'The caller\u2019s voice registration was removed.';
        this._show({ kind: 'info', title: 'Registration deleted', cause, todo: '' }, null);
      }
      this.$('main').focus();
    }

    // ---- view ----

    // _recovered drops "Retrying…" once the service answers again, from
    // the screen and from the alert region.
    // A stop not delivered is dropped once it was sent again.
    _recovered() {
      const o = this.m.outcome;
      if (!o || !(o.row === ROWS.retrying || (o.row === ROWS.stop_unreachable && !(this._op && this._op.stopWanted)))) return;
      // A Stop refused on the operation still shown stays said.
      if (this._op && !this._op.done && this._op.stopRefused) {
        this._show(this._op.stopRefused, null);
        return;
      }
      this.m.outcome = null;
      this._quiet();
    }

    _showAPIError(e) {
      let row;
      if (e.code === 'network') row = ROWS.connection;
      else if (e.code === 'bad_request' || e.code === 'not_found') row = ROWS.configuration;
      else if (e.code === 'bad_caller_id' && e.message === CALLER_MISMATCH) row = ROWS.caller_mismatch;
      else if (e.code === 'too_many_requests' || e.status === 429) {
        const n = typeof e.retryAfter === 'number' ? Math.max(1, e.retryAfter) : 60;
        row = Object.assign({}, ROWS.too_many_requests, { todo: ROWS.too_many_requests.todo.replace('{n}', String(n)) });
      } else row = ROWS[e.code] || ROWS.internal;
      if (row === ROWS.forbidden) {
        this.m.forbidden = true;
        this.m.forbiddenAuth = e.auth;
        this._watchToken();
      }
      // Trying again with the same number cannot help: the buttons stay
      // off until the call or the caller changes.
      if (row === ROWS.caller_mismatch) this.m.unusable = 'mismatch';
      if (row === ROWS.bad_caller_id) this.m.unusable = 'number';
      if (row === ROWS.configuration || row === ROWS.bad_caller_id || row === ROWS.caller_mismatch || row === ROWS.unauthenticated || row === ROWS.forbidden) {
        console.error('voicegate-agent: the voice service answered ' + (e.status || 'nothing') + ' ' + e.code + ': ' + e.message);
      }
      this._show(row, e);
      // No audio from the call: it may have ended (a Genesys call is
      // forgotten with its AudioHook session); the status read says so
      // (_noteCallEnded).
      if (row === ROWS.no_call && !this._op) this._load(0, true);
    }

    // _showStatusError shows the error of a status read. A card saying
    // that an operation's result is unknown ("Check result unknown",
    // "Registration not confirmed") stays: the error is said in it, so
    // the agent does not lose the warning.
    _showStatusError(e) {
      const o = this.m.outcome;
      const unknown = o && o.kind === 'error' && (o.title === 'Check result unknown' || o.title === 'Registration not confirmed');
      if (!unknown) {
        this._showAPIError(e);
        return;
      }
      const reg = o.title === 'Registration not confirmed';
      if (e.code === 'unauthenticated') {
        // These rows say both: the result is unknown, and why.
        this.m.notPerformed = false;
        this._show(reg ? ROWS.signin_register : ROWS.signin_verify, e, o.detail);
        return;
      }
      this._showAPIError(e);
      const a = this.m.outcome;
      if (!a || a === o) return;
      this._show(Object.assign({}, o.row, {
        title: o.title,
        cause: o.cause + ' ' + a.title + ': ' + a.cause,
        todo: [a.todo, o.todo].filter(Boolean).join(' '),
      }), e, o.detail);
    }

    // _watchToken looks at the token every FORBIDDEN_RECHECK_MS while the
    // agent is refused on the call (403): a token other than the one
    // refused (a new getTemporaryToken result) is tried with a status
    // read, which the service authorizes as it does a start; only its
    // acceptance lets the buttons back on (_load).
    _watchToken() {
      clearTimeout(this._tokenTimer);
      if (!this.m.forbidden || !this.isConnected) return;
      const gen = this._gen;
      this._tokenTimer = setTimeout(async () => {
        if (gen !== this._gen || !this.m.forbidden || !this.isConnected) return;
        let auth;
        try {
          auth = await this._token();
        } catch (_) {
          auth = undefined; // no token now: look again later
        }
        if (gen !== this._gen || !this.m.forbidden) return;
        if (auth !== undefined && auth !== this.m.forbiddenAuth && this.m.phase === 'idle' && !this._op && !this._starting) {
          this._load(0);
          return;
        }
        this._watchToken();
      }, FORBIDDEN_RECHECK_MS);
    }

    // _words returns a row's cause and todo in the words of the operation
    // that ended (m.lastKind): an agent must know whether a registration
    // or a check was cut short. Once the call has ended no button is
    // offered, so a todo that asks for one gives way to what the agent
    // can still do (the row's ended text), or to nothing.
    _words(row, who) {
      if (who) return { cause: row.cause.replace('{who}', who), todo: row.todo };
      const reg = this.m.lastKind === 'register';
      const notDone = reg ? 'Nothing was registered.' : 'The caller was not verified.';
      if (row === ROWS.call_ended) return { cause: row.cause, todo: notDone };
      if (row === ROWS.cancelled) return { cause: reg ? 'The registration was stopped before it finished.' : row.cause, todo: row.todo };
      if (this._callEnded()) {
        if (typeof row.ended === 'string') return { cause: row.cause, todo: row.ended };
        if (row === ROWS.spoof || row === ROWS.authentication) return { cause: row.cause, todo: notDone };
        if (ENDED_QUIET.includes(row)) return { cause: row.cause, todo: '' };
      }
      return { cause: row.cause, todo: row.todo };
    }

    // _show shows row (with detail, and who for {who}) and says it. A
    // success is shown with when it happened (at, local time), so that,
    // minutes later or after the call ended, it reads as an earlier
    // result, not a live one: when (a Date) is the server's time of the
    // result (its event's "time"); without it, the time the card was
    // first shown.
    _show(row, _err, detail, who, when) {
      const w = this._words(row, who);
      const was = this.m.outcome;
      const at = row.kind !== 'success' ? null : when || (was && was.row === row && was.at) || new Date();
      this.m.outcome = {
        row, kind: row.kind, title: row.title, cause: w.cause, todo: w.todo, detail: detail || '', who, at,
        // The registration (its registered_at) a green card was earned
        // under: learnt from the first status read after it (_apply).
        regAt: was && was.row === row ? was.regAt : undefined,
        // The server's time of the result (its event's "time"), if known.
        evAt: row.kind !== 'success' ? null : when || (was && was.row === row && was.evAt) || null,
      };
      this._render();
      // The hidden regions say what the row shows, score included.
      const said = (detail || '').split(' \u00b7 ').join(', ');
      const text = [row.title, w.cause, said, w.todo, this.m.notPerformed ? 'Anti-spoofing not performed.' : ''].filter(Boolean).join('. ').replace(/\.\./g, '.');
      if (row.kind === 'success' || row.kind === 'info') this._announce(text);
      else this._alert(text);
    }

    // Every message replaces what either hidden region held: a result is
    // said in one region (successes and notes politely in #live, failures
    // and errors assertively in #alert) and the other is emptied, so
    // neither keeps an earlier message ("Checking the caller's voice.",
    // another caller's "Caller verified").
    _announce(text) { this._speak('live', text); }
    _alert(text) { this._speak('alert', text); }

    _speak(id, text) {
      this._quiet();
      const el = this.$(id);
      // A change of content is what screen readers announce.
      this._speakTimers[id] = setTimeout(() => {
        delete this._speakTimers[id];
        el.textContent = text;
      }, 50);
    }

    // _quiet empties both hidden regions and drops pending writes.
    _quiet() {
      for (const id of ['live', 'alert']) {
        clearTimeout(this._speakTimers[id]);
        delete this._speakTimers[id];
        this.$(id).textContent = '';
      }
    }

    _render() {
      const m = this.m;
      const $ = this.$;
      // The button that has focus may be hidden below (Register gives way
      // to Stop while an operation runs, and back): see the end.
      const focused = this.shadowRoot.activeElement;
      const callId = this.callId;
      if (callId && this._knownInProgress()) m.sawLive = true;
      // A call seen to end offers nothing more, a delete included.
      const live = this.inProgress && !!callId && !m.serverEnded && !this._callEnded();
      // No call, no caller: what was known of the last one is gone.
      $('caller').textContent = callId ? (this.callerId || 'Unknown number') : '\u2014';

      // An operation keeps running on the server when the call ends (its
      // audio then ends, and so does the operation): its state is shown
      // until its result comes.
      const registering = (this._op ? this._op.kind : m.next) === 'register';
      const opRunning = m.phase === 'starting' || m.phase === 'running';
      let state = '';
      if (!callId) state = 'Waiting for a call';
      else if (!this._hasToken()) state = 'Waiting for sign-in\u2026';
      else if (!this.inProgress && opRunning) {
        state = registering ? 'Call ended: finishing the registration\u2026' : 'Call ended: finishing the voice check\u2026';
      } else if (!this.inProgress) {
        state = m.sawLive ? 'Call ended: voice checks are off' : 'No call in progress: voice checks are off';
      } else if (m.phase === 'loading') state = 'Loading\u2026';
      else if (m.phase === 'stopping') state = 'Stopping what runs on this call\u2026';
      else if (opRunning) {
        state = registering ? 'Registering voice\u2026' : 'Checking voice\u2026';
      } else if (m.registered === true && m.byOther === 'conflict') {
        // This call's register lost the race: the voice registered is
        // another call's, and this call's was not stored.
        state = 'Registered by another call: this call\u2019s voice was not stored';
      } else if (m.registered === true && m.byOther) state = 'Registered by another call';
      else if (m.registered === true) state = 'Voice registered';
      else if (m.registered === false) state = 'Not registered';
      const st = $('state');
      st.textContent = state;
      st.classList.toggle('off', !live);

      // Progress: only while an operation runs.
      const running = m.phase === 'starting' || m.phase === 'running';
      $('progress').hidden = !running;
      if (running && m.progress) {
        const { have, need } = m.progress;
        const pct = need > 0 ? Math.min(100, (have / need) * 100) : 0;
        $('fill').style.width = pct.toFixed(1) + '%';
        const bar = $('bar');
        bar.setAttribute('aria-valuemax', String(need || 0));
        bar.setAttribute('aria-valuenow', seconds(Math.min(have, need || have)));
        const txt = need > 0
          ? `Voice collected: ${seconds(have)} s of ${seconds(need)} s`
          : (m.phase === 'starting' ? 'Starting\u2026' : `Voice collected: ${seconds(have)} s`);
        bar.setAttribute('aria-valuetext', txt);
        $('ptext').textContent = txt;
      }

      // Outcome row.
      const o = m.outcome;
      const out = $('outcome');
      out.hidden = !o;
      if (o) {
        out.className = 'outcome ' + o.kind;
        $('badge').innerHTML = ICONS[o.kind] || ICONS.info;
        $('otitle').textContent = o.title;
        $('owhen').hidden = !o.at;
        const time = $('otime');
        if (o.at) {
          time.dateTime = o.at.toISOString();
          time.textContent = clock(o.at);
          time.title = o.at.toLocaleString();
        } else {
          time.removeAttribute('datetime');
          time.removeAttribute('title');
          time.textContent = '';
        }
        $('ocause').textContent = o.cause;
        $('ocause').hidden = !o.cause;
        $('otodo').textContent = o.todo;
        $('otodo').hidden = !o.todo;
        $('odetail').textContent = o.detail;
        $('odetail').hidden = !o.detail;
      }
      $('nospoof').hidden = !m.notPerformed || !!(o && o.row === ROWS.spoof_not_performed);

      // Confirmation.
      const confirming = m.phase === 'confirm' || m.phase === 'deleting';
      $('confirm').hidden = !confirming;
      $('confirm-q').textContent = `Delete the voice registration of ${this.callerId || 'this caller'}? The caller will have to register again.`;
      $('confirm-yes').disabled = m.phase === 'deleting';
      $('confirm-no').disabled = m.phase === 'deleting';

      // Buttons.
      const main = $('main');
      main.hidden = running || confirming;
      $('stop').hidden = !(m.phase === 'running');
      let label;
      if (!callId) label = 'No call';
      else if (m.phase === 'stopping') label = 'Stopping\u2026';
      else if (this._callEnded() && !running) label = 'Call ended';
      else if (m.forbidden) label = 'Not assigned';
      else if (m.unusable === 'mismatch') label = 'Wrong caller number';
      else if (m.unusable) label = 'No usable caller number';
      else if (m.phase === 'loading') label = 'Loading\u2026';
      else if (m.registered === null) label = 'Try again';
      else if (m.next === 'register') label = 'Register User';
      else if (m.next === 'verify') label = 'Authenticate User';
      else label = 'Re-Authenticate User';
      main.textContent = label;
      main.disabled = !live || m.phase !== 'idle' || !this._hasToken() || m.forbidden || !!m.unusable;
      const trash = $('trash');
      trash.hidden = m.registered !== true || running || confirming;
      trash.disabled = !live || m.phase !== 'idle';

      // While idle, a periodic status read is planned (_scheduleRefresh).
      if (!this._refreshTimer && !this._refreshing && document.visibilityState !== 'hidden' && this._idle()) this._scheduleRefresh();

      // Keep keyboard focus in the widget: when the focused button was
      // hidden or disabled, or focus waits on the state line, it moves to
      // the button that took its place (Stop, the main button, the trash),
      // or to the state line while none can take it (an operation
      // starting).
      const gone = (el) => el.hidden || el.disabled || !!el.closest('[hidden]');
      if (focused && focused !== st && !gone(focused)) return;
      if (focused === st || (focused && focused.tagName === 'BUTTON')) {
        const next = [$('stop'), main, trash].find((b) => !gone(b));
        if (next) {
          if (next !== focused) next.focus();
        } else if (focused !== st) {
          st.tabIndex = -1;
          st.focus();
        }
      }
    }
  }

  customElements.define('voicegate-agent', VoicegateAgent);
})();
