// Package agent is the agent and IVR flow of voicegate as a library:
// operations (register, verify, re-verify, delete, status) bound to a call,
// their event streams, the credential-store adapter, and the adapters that
// get a call's audio from Twilio Media Streams or a Genesys AudioHook
// session.
package agent
