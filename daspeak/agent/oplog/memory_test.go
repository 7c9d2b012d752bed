package oplog_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
	"github.com/voicegate/voicegate/daspeak/agent/oplog/oplogtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestMemory runs the conformance suite on Memory.
func TestMemory(t *testing.T) {
	oplogtest.Run(t, func(t *testing.T) oplog.Log { return oplog.NewMemory(0, 0) })
}
