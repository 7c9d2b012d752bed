// Package vgexample holds the plumbing the voicegate example servers share:
// configuration from flags and environment, the biometric engine (das-Peak
// REST or the offline engine), the credential store and its adapter to
// daspeak.CredentialStore, an event hub with a Server-Sent Events writer,
// signed stream bindings, and a server runner with graceful shutdown.
//
// Most of it now lives in the public package daspeak/agent, which this
// package forwards to; what remains (the topic Hub, the Twilio-style
// Params reader, and CredentialStore, which names enrolment audio by an
// unkeyed hash and does not delete it: use agent.CredentialStore) serves
// the examples not yet moved to daspeak/agent.
package vgexample
