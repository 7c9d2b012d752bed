package agent

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
)

// brokenStore is a credstore.Store whose reads fail with err.
type brokenStore struct {
	credstore.Store
	err error
}

func (s brokenStore) Get(ctx context.Context, id string) (credstore.Record, error) {
	return credstore.Record{}, s.err
}

// TestClusterAdoptAbortCause: an operation whose audio reached a node
// that cannot run it ends with error-cancelled whose cause says why, not
// always no_audio: shutdown when that node is shutting down, deleted
// when the caller's credential is gone by then, store_error when the
// node cannot read the credential store. The starting node answers the
// start as soon as the operation has ended.
func TestClusterAdoptAbortCause(t *testing.T) {
	for _, c := range []struct {
		name  string
		store error // b's credential reads fail with it
		drain bool  // b is shutting down
		want  CancelCause
	}{
		{"shutting down", nil, true, CauseShutdown},
		{"credential deleted", credstore.ErrNotFound, false, CauseDeleted},
		{"store unreadable", errors.New("disk on fire"), false, CauseStoreError},
	} {
		t.Run(c.name, func(t *testing.T) {
			toB := &adoptSource{}
			nodes := clusterWith(t, 2, func(i int, o *Options, fs *fakeSource) {
				if i == 0 {
					o.Source, o.OpenTimeout = toB, time.Minute
				} else if c.store != nil {
					o.Store = &CredentialStore{Store: brokenStore{o.Store.Store, c.store}}
				}
			})
			a, b := nodes[0], nodes[1]
			toB.to = b
			if c.drain {
				b.srv.mu.Lock()
				b.srv.draining = true
				b.srv.mu.Unlock()
			}
			if err := a.mem.Put(context.Background(), callerA, credstore.Record{Credential: "c", ModelHash: "m"}); err != nil {
				t.Fatal(err)
			}
			b.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav"}})
			t0 := time.Now()
			op := a.start("/verify", callA, callerA, nil)
			// The start is answered once b ended the operation, not when
			// a's wait for the audio (OpenTimeout) runs out.
			if d := time.Since(t0); d > 20*time.Second {
				t.Errorf("start answered after %v", d)
			}
			code, msgs := a.events(op["events_url"].(string), "")
			if code != http.StatusOK || len(msgs) == 0 {
				t.Fatalf("events: %d %v", code, msgs)
			}
			last := msgs[len(msgs)-1]
			if last.Event != string(EventErrorCancelled) || last.Data["cause"] != string(c.want) {
				t.Fatalf("ended with %s, want error-cancelled cause %q", last.Raw, c.want)
			}
		})
	}
}
