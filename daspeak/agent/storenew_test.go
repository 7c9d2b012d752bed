package agent

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak"
)

// meetingStore holds each Get's answer until a second Get has read too (or
// a short wait passes), so two unserialised check-then-write callers both
// see "not found" before either writes.
type meetingStore struct {
	credstore.Store
	mu      sync.Mutex
	waiting chan struct{}
}

func (m *meetingStore) Get(ctx context.Context, id string) (credstore.Record, error) {
	rec, err := m.Store.Get(ctx, id)
	m.mu.Lock()
	if m.waiting == nil {
		ch := make(chan struct{})
		m.waiting = ch
		m.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(300 * time.Millisecond):
			m.mu.Lock()
			m.waiting = nil
			m.mu.Unlock()
		}
	} else {
		close(m.waiting)
		m.waiting = nil
		m.mu.Unlock()
	}
	return rec, err
}

// TestStoreNewOneWinner: two registers of one caller that both reach
// StoreNew before either stored (one through an agent Server's path, one
// an application's own session sharing the CredentialStore, as the demo's
// scripted calls and desk do) store exactly one voiceprint; the other is
// refused with ErrAlreadyRegistered and daspeak.ErrAlreadyStored, and the
// first credential is kept.
func TestStoreNewOneWinner(t *testing.T) {
	ctx := context.Background()
	cs := &CredentialStore{Store: &meetingStore{Store: credstore.NewMemory()}}
	const id = "+34600000000"
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, cred := range []string{"voice-a", "voice-b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = cs.StoreNew(ctx, id, cred, "m", nil)
		}()
	}
	wg.Wait()
	var won, lost int
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, ErrAlreadyRegistered) && errors.Is(err, daspeak.ErrAlreadyStored):
			lost++
		default:
			t.Fatalf("StoreNew: %v", err)
		}
	}
	if won != 1 || lost != 1 {
		t.Fatalf("%d stored and %d refused, want 1 and 1 (errors %v)", won, lost, errs)
	}
	rec, err := cs.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	winner := "voice-a"
	if errs[0] != nil {
		winner = "voice-b"
	}
	if rec.Credential != winner {
		t.Fatalf("stored %q, want the winner's %q", rec.Credential, winner)
	}
}
