package offline

import (
	"errors"
	"fmt"

	"github.com/voicegate/voicegate/daspeak"
)

// ErrReenrol matches (errors.Is) a *StaleCredentialError: the credential
// was made by an earlier model version of this engine and the speaker must
// enrol again.
var ErrReenrol = errors.New("offline: credential of an earlier model version, re-enrol the speaker")

// StaleCredentialError reports a credential made by an earlier version of
// the offline engine's model (its model hash is one of PreviousModelHashes).
// Its embedding lives in another space than the current model's, so it is
// refused rather than scored: enrol the speaker again.
//
// It matches ErrReenrol and, as das-Peak reports a credential of a model it
// does not serve, daspeak.ErrModelNotAvailable; errors.As also finds the
// *daspeak.APIError (404, ModelNotAvailable) it wraps, which is what the
// das-Peak emulator sends.
type StaleCredentialError struct {
	// Model is the credential's model hash ("offline-mfcc-v1").
	Model string
}

func (e *StaleCredentialError) Error() string {
	return fmt.Sprintf("offline: credential made by model %s, this engine runs %s: re-enrol the speaker", e.Model, ModelHash)
}

// Is reports whether target is ErrReenrol.
func (e *StaleCredentialError) Is(target error) bool { return target == ErrReenrol }

// Unwrap returns the das-Peak form of the error.
func (e *StaleCredentialError) Unwrap() error {
	return &daspeak.APIError{Status: 404, Exception: daspeak.ExceptionModelNotAvailable,
		Message: "The model is not available: " + e.Model + " (credential of an earlier version of the offline engine: re-enrol the speaker)"}
}
