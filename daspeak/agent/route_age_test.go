package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// slowLocator is a Log of a node "n1" whose search for a call's holder
// takes delay and finds "n2"; Send records the commands it is given and
// answers 200 {}.
type slowLocator struct {
	*oplog.Memory
	delay time.Duration
	mu    sync.Mutex
	sent  []command
}

func (l *slowLocator) Node() string { return "n1" }

func (l *slowLocator) Holder(ctx context.Context, callID string) (string, error) {
	time.Sleep(l.delay)
	return "n2", nil
}

func (l *slowLocator) Route(ctx context.Context, callID string, msg []byte) ([]byte, error) {
	node, err := l.Holder(ctx, callID)
	if err != nil {
		return nil, err
	}
	return l.Send(ctx, node, msg)
}

func (l *slowLocator) Send(ctx context.Context, node string, msg []byte) ([]byte, error) {
	var c command
	if err := json.Unmarshal(msg, &c); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.sent = append(l.sent, c)
	l.mu.Unlock()
	return json.Marshal(commandReply{Status: http.StatusOK, Body: json.RawMessage(`{}`)})
}

// TestForwardedAgeCountsRouting: the age of a forwarded request, from
// which the node holding the call times its request id's claim
// (MaxClaimDelay), includes the time spent finding that node.
func TestForwardedAgeCountsRouting(t *testing.T) {
	const delay = 200 * time.Millisecond
	l := &slowLocator{Memory: oplog.NewMemory(0, 0), delay: delay}
	e := newEnv(t, func(o *Options, s *fakeSource) { o.Source, o.Log = infoSource{s}, l })
	code, _, body := e.postRaw(testToken, "/register", `{"call_id":"CA00000000000000000000000000000005","caller_id":"+34911234567","request_id":"4c1d2e3f-0000-4000-8000-000000000001"}`)
	if code != http.StatusOK || body != "{}\n" {
		t.Fatalf("forwarded start: %d %s", code, body)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.sent) != 1 || l.sent[0].Op != "register" || l.sent[0].Age < delay {
		t.Fatalf("forwarded commands: %+v; want one register aged at least %v", l.sent, delay)
	}
}
