package natsbus

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// SetStateOwner overwrites the owner in an operation's state (as if the
// claimer's setOwner had failed) and waits until b's watch saw it.
func SetStateOwner(ctx context.Context, b *Bus, id, owner string) error {
	st, _, err := b.getState(ctx, id)
	if err != nil {
		return err
	}
	st.Owner = owner
	data, _ := json.Marshal(st)
	if _, err := b.ops.Put(ctx, opKey(id), data); err != nil {
		return err
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b.mu.Lock()
		got := b.known[id].Owner
		b.mu.Unlock()
		if got == owner {
			return nil
		}
	}
	return fmt.Errorf("the watch of %s never saw owner %s", b.o.Node, owner)
}

// PutLock overwrites the value of lock name, as a holder would write it.
func PutLock(ctx context.Context, b *Bus, name string, value []byte) error {
	_, err := b.ops.Put(ctx, lockKey(name), value)
	return err
}
