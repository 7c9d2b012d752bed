// Package vgexample holds the plumbing the voicegate example servers share:
// configuration from flags and environment, the biometric engine (das-Peak
// REST or the offline engine), the credential store and its adapter to
// daspeak.CredentialStore, an event hub with a Server-Sent Events writer,
// signed stream bindings, and a server runner with graceful shutdown.
//
// It is example code: copy it along with the example you start from and
// adapt it freely.
package vgexample
