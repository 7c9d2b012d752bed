package daspeak

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CredentialStore keeps the credential of a successful register session.
// das-Peak does not keep credentials: the integrator must. A
// credstore.Store is adapted in a few lines:
//
//	daspeak.StoreFunc(func(ctx context.Context, id, cred, hash string, audio []byte) error {
//		return store.Put(ctx, id, credstore.Record{Credential: cred, ModelHash: hash})
//	})
//
// StoreCredential is called synchronously from [Session.Next] and retried
// on error (Config.StoreRetries). Its ctx is not Next's ctx: it is
// context.WithoutCancel of it (values kept, cancellation dropped) with the
// deadline Config.StoreTimeout, shared by all attempts, so a shutdown that
// cancels the session does not cut off a store in progress. It must be
// safe to call again after a failure (an upsert). A store that refuses to
// replace a caller's credential (register once) returns an error wrapping
// [ErrAlreadyStored]: that error is permanent and is not retried. audio is the collected
// audio as a WAV file, to regenerate the credential for a new model later;
// it must not be kept after the call returns unless copied.
type CredentialStore interface {
	StoreCredential(ctx context.Context, callerID, credential, modelHash string, audio []byte) error
}

// StoreFunc adapts a function to CredentialStore.
type StoreFunc func(ctx context.Context, callerID, credential, modelHash string, audio []byte) error

// StoreCredential calls f.
func (f StoreFunc) StoreCredential(ctx context.Context, callerID, credential, modelHash string, audio []byte) error {
	return f(ctx, callerID, credential, modelHash, audio)
}

// ErrAlreadyStored reports that the caller already has a stored
// credential and the store will not replace it: another registration of
// the caller stored first. A [CredentialStore] returns an error wrapping
// it; it is permanent, so the session does not retry it, and the
// error-store event's Err matches it (as well as ErrStore).
var ErrAlreadyStored = errors.New("daspeak: the caller already has a stored credential")

// storeWithRetries calls st up to 1+retries times, waiting backoff, then
// twice as long each time (at most 10 s), between attempts. It returns the
// number of attempts and the store's last error. An error matching
// ErrAlreadyStored is permanent: it is returned at once. A ctx that ends
// (the store step's deadline) stops it; the error then also matches ctx's
// error.
func storeWithRetries(ctx context.Context, st CredentialStore, retries int, backoff time.Duration, id, cred, hash string, audio []byte) (int, error) {
	wait := backoff
	for attempt := 1; ; attempt++ {
		err := st.StoreCredential(ctx, id, cred, hash, audio)
		if err == nil {
			return attempt, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			if errors.Is(err, cerr) {
				return attempt, err
			}
			return attempt, fmt.Errorf("%w; then %w", err, cerr)
		}
		if attempt > retries || errors.Is(err, ErrAlreadyStored) {
			return attempt, err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return attempt, fmt.Errorf("%w; then %w before the next attempt", err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 10*time.Second)
	}
}
