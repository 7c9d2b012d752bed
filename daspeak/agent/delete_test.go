package agent

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/voicegate/voicegate/credstore"
)

// sealedStore is a credstore.Store whose records cannot be opened, as
// records sealed with a key no longer in the ring: Get fails with
// credstore.ErrDecrypt for every record it holds.
type sealedStore struct{ credstore.Store }

func (s sealedStore) Get(ctx context.Context, id string) (credstore.Record, error) {
	if _, err := s.Store.Get(ctx, id); err != nil {
		return credstore.Record{}, err
	}
	return credstore.Record{}, fmt.Errorf("sealed: %w", credstore.ErrDecrypt)
}

// TestDeleteTruthful: /delete answers deleted:true only for a caller
// that had a record, one the store cannot open included (it is deleted
// all the same), and deleted:false when nothing was stored.
func TestDeleteTruthful(t *testing.T) {
	mem := credstore.NewMemory()
	e := newEnv(t, func(o *Options, _ *fakeSource) { o.Store = &CredentialStore{Store: sealedStore{mem}} })
	e.src.set(callA, fakeCall{ani: callerA, live: true, hold: true})
	ctx := context.Background()
	if err := mem.Put(ctx, callerA, credstore.Record{Credential: "c", ModelHash: "m"}); err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"call_id": callA, "caller_id": callerA}
	if code, m := e.post("/delete", body); code != 200 || m["deleted"] != true {
		t.Fatalf("delete of a record the store cannot open: %d %v", code, m)
	}
	if _, err := mem.Get(ctx, callerA); !errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("record after delete: %v", err)
	}
	if code, m := e.post("/delete", body); code != 200 || m["deleted"] != false {
		t.Fatalf("delete with nothing stored: %d %v", code, m)
	}
}
