package natsbus_test

import (
	"context"
	"log"
	"os"

	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus"
)

// A node of many: the agent server keeps its operations and events on
// NATS JetStream. Every node uses the same NATS server, prefix, EventKey
// and credential store.
func ExampleConnect() {
	ctx := context.Background()
	bus, err := natsbus.Connect(ctx, os.Getenv("NATS_URL"), &natsbus.Options{Node: "node-a"})
	if err != nil {
		log.Fatal(err)
	}
	defer bus.Close()
	opts := &agent.Options{
		Log: bus,
		// Engine, Store, Source, Authenticator, EventKey: as on one node.
	}
	_ = opts // agent.NewServer(opts)
}
