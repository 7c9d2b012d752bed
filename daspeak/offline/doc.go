// Package offline is an embedded speaker verification engine: pure Go, no
// network, no cgo, no model files. It implements [daspeak.Engine] (with
// [daspeak.CredentialComparer] and [daspeak.ModelLister]), so register and
// verify sessions, the das-Peak emulator and applications can run without
// Veridas.
//
// It is a demonstration and test engine. It is NOT a security control: its
// error rates (below) are far above those of a commercial engine, and it
// detects no spoofing at all — every result reports Authenticity 1, so a
// recording or a synthetic voice passes as a live caller. Do not use it to
// protect anything.
//
// # How it works
//
// Audio (a WAV file as das-Peak takes it: 8 or 16 kHz; 16-bit PCM, μ-law or
// A-law; mono or stereo, channel chosen by AudioOptions.Channel; under 30 s)
// goes through the module's energy voice activity detector. The speech
// frames (25 ms every 10 ms, pre-emphasis, Hamming window) give 20 mel
// cepstral coefficients from 24 mel bands between 100 and 3800 Hz; frames
// more than 40 dB below the loudest one are left out. A fixed
// 16-component Gaussian mixture (the background model) assigns each frame
// to components; the utterance's component means are adapted towards its
// frames (maximum a posteriori, relevance factor 4), and the embedding is
// the 320 scaled mean shifts, normalised to unit length (a GMM
// supervector). Two embeddings are compared by cosine similarity, mapped
// to a score in (0, 1) by a logistic curve that gives 0.5
// ([DefaultScoreThreshold]) where false accepts and false rejects balanced
// on the fit trials. Everything is deterministic: the same audio gives the
// same credential bit for bit.
//
// As das-Peak does, the engine rejects audio with less than 3.00 s of net
// speech (VoiceDurationIsNotEnoughException, "Voice duration is not enough
// 2.55s < 3.00s", with APIError.Detected), 30 s or more of audio, rates
// other than 8 and 16 kHz, more than two channels and unknown calibrations,
// with the das-Peak exception names and messages.
//
// # Credentials
//
// A credential is an opaque, versioned string: "vgo1." followed by
// unpadded base64url of the format version, the model hash ([ModelHash]),
// the embedding as float32 values and a CRC-32. Anything else gives an
// InvalidCredential error ("Decryption error"); a credential of another
// model gives ModelNotAvailable. Credentials are not encrypted: they hold a
// voice embedding, which is biometric data; store them as such.
//
// # Measured accuracy
//
// Equal error rate on real speech: prompts of seven Debian Asterisk speaker
// sets (six people: Allison Smith in English and Spanish, June Wallack,
// Carlo Flora, Menardi, the IvrvoiceRU voice and Armelle Desjardins; 8 kHz,
// passed through μ-law), concatenated per set into utterances of a fixed
// net speech, 20 utterances per set, every pair a trial (1,730 target and
// 8,000 non-target trials; Allison's English–Spanish pairs count as the
// same person):
//
//	net speech   EER     at the default threshold (score 0.5)
//	3 s          14.4%   FRR 23.9%, FAR  6.8%
//	5 s           9.7%   FRR  9.0%, FAR 10.8%
//
// measured with
//
//	go test -run TestEqualErrorRate -v ./daspeak/offline
//
// (the Debian packages asterisk-core-sounds-{en,es,fr,it,ru}-wav,
// asterisk-prompt-it-menardi-wav, asterisk-prompt-fr-armelle and sox must
// be installed; the test skips otherwise). The trials use prompts held out
// from the fit of the background model and the calibration, but the same
// six people, and each person was recorded in one studio session, so the
// figures are optimistic for real calls, where channel, handset and
// speakers vary: expect clearly worse. The background model was also fitted
// on the committed test voices (four synthetic flite voices and one real
// speaker, each clip weighted twelve times), so that the default threshold
// tells them apart too (same voice ≥ 0.99, other voices ≤ 0.32 in
// TestFixtureVoices); with half that weight the 5 s EER is about 8.6%, but
// two of the synthetic voices are confused. The model is regenerated with
//
//	VOICEGATE_UPDATE_NORM=1 go test -run TestFitNorm ./daspeak/offline
//
// A credential extraction takes about 0.1% of the audio's duration on one
// core (BenchmarkGenerateCredential). A credential is about 1.7 kB.
package offline
