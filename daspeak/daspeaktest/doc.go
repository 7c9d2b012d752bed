// Package daspeaktest is an in-process emulator of the das-Peak REST API,
// backed by any [daspeak.Engine], for testing code that talks to das-Peak
// without a Veridas account or network access.
//
// The emulator serves the same paths (under /daspeak/v1), reads the same
// multipart fields and answers with the same JSON fields and error catalogue
// (exception names and messages) as das-Peak, so the real [daspeak.Client]
// is tested end to end:
//
//	srv := daspeaktest.NewServer(daspeaktest.FakeEngine{}, nil)
//	defer srv.Close()
//	c, _ := daspeak.NewClient(&daspeak.ClientOptions{BaseURL: srv.URL()})
//
// It validates WAV input as das-Peak does (at most 2 channels, 8 or 16 kHz,
// 16-bit PCM, μ-law or A-law, under 30 s, at least 3 s of net speech),
// checks the channel, calibration and model hash, and can require an apikey
// header or an OAuth2 bearer token from its own token endpoint.
//
// # Fault injection
//
// [Emulator.Inject] makes the next requests fail the way a real deployment
// can: a forced status and exception, HTTP 429 with Retry-After, an HTML 502
// from a gateway, a slow answer, a dropped connection or a truncated body.
// [Emulator.Stats] counts requests per endpoint, so tests can assert how many
// attempts a client made.
//
// # Emulator-defined behaviour
//
// Some behaviour of the real service is not public. Where the emulator has
// to choose, the choice is marked "emulator-defined" in the documentation
// of this package: the answer to a wrong API key, the OAuth2 token endpoint
// (Veridas publishes none), HTTP statuses of InvalidCredential and
// ModelNotAvailable, the model metadata keys beyond hash and description,
// and the answers to malformed identification lists. Clients must not rely
// on these details.
//
// # voicegate extensions
//
// das-Peak documents authenticity values in [0, 1]. An engine that does no
// anti-spoofing reports [daspeak.AuthenticityNotPerformed] (-1); the
// emulator passes it through unchanged as -1 in "authenticity",
// "authenticity_reference" and "authenticity_to_evaluate", so a
// [daspeak.Client] reads back daspeak.AuthenticityNotPerformed and a
// session over that client reports that anti-spoofing was not performed
// rather than judging -1 against a threshold. A real das-Peak never sends
// this value.
package daspeaktest
