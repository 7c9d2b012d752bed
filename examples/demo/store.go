package main

import (
	"context"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/agent"
)

// openStore opens (creating if needed) the SQLite credential database at
// path through agent.OpenStore, as the starter servers do: the file is
// created 0600 and deletes leave no copy of the record in a journal. The
// caller calls closeFn when done.
func openStore(ctx context.Context, path string) (credstore.Store, func() error, error) {
	return agent.OpenStore(ctx, "sqlite:"+path, "")
}
