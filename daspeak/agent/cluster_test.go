package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus/natsbustest"
	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

var clusterKey = []byte("0123456789abcdef0123456789abcdef")

// node is one server of a test cluster on a private NATS server.
type node struct {
	*env
	bus *natsbus.Bus
}

// cluster starts n servers sharing a NATS server, a credential store and
// an event key. src, when not nil, gives node i's Source.
func cluster(t *testing.T, n int, src func(i int, e *fakeSource) Source) []*node {
	var edit func(int, *Options, *fakeSource)
	if src != nil {
		edit = func(i int, o *Options, fs *fakeSource) { o.Source = src(i, fs) }
	}
	return clusterWith(t, n, edit)
}

// clusterWith is cluster with edit, when not nil, applied to node i's
// Options.
func clusterWith(t *testing.T, n int, edit func(i int, o *Options, fs *fakeSource)) []*node {
	srv := natsbustest.Start(t)
	shared := credstore.NewMemory()
	var nodes []*node
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		bus, err := natsbus.Connect(ctx, srv.URL, &natsbus.Options{Node: string(rune('a' + i)), Lease: 600 * time.Millisecond})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bus.Close() })
		e := newEnv(t, func(o *Options, fs *fakeSource) {
			o.Log, o.EventKey = bus, clusterKey
			o.Store = &CredentialStore{Store: shared}
			if edit != nil {
				edit(i, o, fs)
			}
		})
		e.mem, e.store = shared, e.srv.opts.Store
		nodes = append(nodes, &node{env: e, bus: bus})
	}
	return nodes
}

// waitKnown waits until the node's log lists a running operation of
// callID (a node learns of other nodes' operations a moment after they
// are created: oplog.Log.Running).
func (n *node) waitKnown(callID string) {
	n.t.Helper()
	for range 500 {
		if ops, _ := n.bus.Running(context.Background(), callID); len(ops) > 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	n.t.Fatalf("node %s does not know of an operation running on %s", n.bus.Node(), callID)
}

// watch reads an operation's events from another node.
func (n *node) watch(op map[string]any) []sseMsg {
	n.t.Helper()
	code, msgs := n.events(op["events_url"].(string), "")
	if code != http.StatusOK {
		n.t.Fatalf("events on node %s: %d", n.bus.Node(), code)
	}
	return msgs
}

// TestClusterRoute checks the Genesys agent mode on many nodes: the click
// lands on node b, the call's audio (its AudioHook session) is held by
// node a; b forwards the request to a, which runs the operation; node c
// serves its events; status and stop work from any node.
func TestClusterRoute(t *testing.T) {
	nodes := cluster(t, 3, func(i int, fs *fakeSource) Source { return infoSource{fs} })
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}, ani: callerA, live: true})
	op := b.start("/register", callA, "", nil)
	if op["caller_id"] != callerA {
		t.Fatalf("caller id from the node holding the call: %v", op)
	}
	last := checkStream(t, c.watch(op), op)
	if last.Event != "result-success" {
		t.Fatalf("ended with %s", last.Raw)
	}
	if o, err := c.bus.Get(context.Background(), op["operation_id"].(string)); err != nil || o.Owner != "a" {
		t.Fatalf("owner %+v %v", o, err)
	}
	if code, m := c.post("/status", map[string]any{"call_id": callA}); code != 200 || m["registered"] != true || m["call_in_progress"] != true {
		t.Fatalf("status through c: %d %v", code, m)
	}
	// A running operation on a, stopped through c.
	a.src.set(callB, fakeCall{clips: []string{"voices/awb_1.wav", "voices/awb_2.wav"}, ani: callerB, live: true})
	reg := b.start("/register", callB, callerB, nil)
	if last := checkStream(t, c.watch(reg), reg); last.Event != "result-success" {
		t.Fatalf("register %s: %s", callerB, last.Raw)
	}
	a.src.set(callB, fakeCall{hold: true, ani: callerB, live: true})
	op = b.start("/verify", callB, callerB, nil)
	if code, m := c.post("/stop", map[string]any{"operation_id": op["operation_id"]}); code != 200 || m["stopped"] != true {
		t.Fatalf("stop through c: %d %v", code, m)
	}
	if last := checkStream(t, c.watch(op), op); last.Event != "error-cancelled" {
		t.Fatalf("stopped operation ended with %s", last.Raw)
	}
	// A running operation on a, stopped by its call through c (the agent
	// never got its operation id).
	op = b.start("/verify", callB, callerB, nil)
	c.waitKnown(callB)
	if code, m := c.post("/stop", map[string]any{"call_id": callB}); code != 200 || m["stopped"] != true {
		t.Fatalf("stop of callB through c: %d %v", code, m)
	}
	if last := checkStream(t, c.watch(op), op); last.Event != "error-cancelled" {
		t.Fatalf("operation stopped by its call ended with %s", last.Raw)
	}
	if code, m := c.post("/stop", map[string]any{"call_id": callB}); code != 200 || m["stopped"] != false {
		t.Fatalf("second stop of callB through c: %d %v", code, m)
	}
	// A call no node holds.
	if code, m := b.post("/register", map[string]any{"call_id": "CA0000000000000000000000000000dead", "caller_id": callerA}); code != 409 || m["code"] != CodeNoCall {
		t.Fatalf("unknown call: %d %v", code, m)
	}
}

// adoptSource is node a's Source in TestClusterAdopt: the audio it asks
// for reaches node b (as a Twilio Media Stream through a load balancer
// would), whose server takes the operation over.
type adoptSource struct {
	to *node
}

func (s *adoptSource) Open(ctx context.Context, req SourceRequest) (Audio, error) {
	go func() {
		audio, err := s.to.src.Open(context.Background(), req)
		if err != nil {
			return
		}
		if err := s.to.srv.Adopt(context.Background(), req, audio); err != nil {
			audio.Close()
		}
	}()
	<-ctx.Done()
	return nil, context.Cause(ctx)
}

// TestClusterAdopt checks an operation started on node a whose audio
// reached node b: b runs it, a answers the start, c serves the events.
func TestClusterAdopt(t *testing.T) {
	toB := &adoptSource{}
	nodes := cluster(t, 3, func(i int, fs *fakeSource) Source {
		if i == 0 {
			return toB
		}
		return fs
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	toB.to = b
	b.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
	op := a.start("/register", callA, callerA, nil)
	last := checkStream(t, c.watch(op), op)
	if last.Event != "result-success" {
		t.Fatalf("ended with %s", last.Raw)
	}
	if o, _ := c.bus.Get(context.Background(), op["operation_id"].(string)); o.Owner != "b" {
		t.Fatalf("owner %q, want b", o.Owner)
	}
	if _, err := b.mem.Get(context.Background(), callerA); err != nil {
		t.Fatalf("credential: %v", err)
	}
	// A register taken over by b is stopped by its call through a, the
	// node that started it.
	b.src.set(callB, fakeCall{hold: true})
	op2 := a.start("/register", callB, callerB, nil)
	b.waitRunning(callB)
	a.waitKnown(callB)
	if code, m := a.post("/stop", map[string]any{"call_id": callB}); code != 200 || m["stopped"] != true {
		t.Fatalf("stop of callB through a: %d %v", code, m)
	}
	if last := checkStream(t, c.watch(op2), op2); last.Event != "error-cancelled" {
		t.Fatalf("operation stopped by its call ended with %s", last.Raw)
	}
	// Adopting again, or an unknown operation, fails.
	if err := b.srv.Adopt(context.Background(), SourceRequest{OperationID: op["operation_id"].(string), CallID: callA, CallerID: callerA}, &fakeAudio{closed: make(chan struct{})}); err == nil {
		t.Fatal("adopted a finished operation")
	}
}

// TestClusterDeadNode checks that the operation of a node that dies (its
// connection to NATS gone, its lease expired) is ended by another node
// with error-cancelled, seen by a watcher on a third.
func TestClusterDeadNode(t *testing.T) {
	nodes := cluster(t, 3, nil)
	a, c := nodes[0], nodes[2]
	a.src.set(callA, fakeCall{hold: true})
	op := a.start("/register", callA, callerA, nil)
	a.waitRunning(callA)
	got := make(chan []sseMsg, 1)
	go func() { got <- c.watch(op) }()
	time.Sleep(50 * time.Millisecond)
	killed := time.Now()
	a.bus.Conn().Close()
	select {
	case msgs := <-got:
		last := checkStream(t, msgs, op)
		if last.Event != "error-cancelled" || !strings.Contains(last.Data["error"].(string), "node running the operation stopped") || last.Data["cause"] != "node_stopped" {
			t.Fatalf("ended with %s", last.Raw)
		}
		t.Logf("ended %v after the node died", time.Since(killed))
	case <-time.After(10 * time.Second):
		t.Fatal("no terminal event within 10 s of the node's death")
	}
	if o, err := c.bus.Get(context.Background(), op["operation_id"].(string)); err != nil || !o.Done {
		t.Fatalf("state %+v %v", o, err)
	}
	var _ oplog.Log = a.bus
}

// TestClusterResume checks that an event stream read in part on one node
// resumes on another with Last-Event-ID: nothing missed, nothing twice;
// and that a finished operation read to its end answers 204 on any node.
func TestClusterResume(t *testing.T) {
	nodes := cluster(t, 3, nil)
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
	op := a.start("/register", callA, callerA, nil)
	resp, err := http.Get(b.http.URL + op["events_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	// Two events on b, then the connection drops.
	var head []sseMsg
	sc := bufio.NewScanner(resp.Body)
	var cur sseMsg
	for len(head) < 2 && sc.Scan() {
		line := sc.Text()
		switch {
		case line == "" && cur.Event != "":
			json.Unmarshal([]byte(cur.Raw), &cur.Data)
			head = append(head, cur)
			cur = sseMsg{}
		case strings.HasPrefix(line, "id: "):
			cur.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.Event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.Raw += line[6:]
		}
	}
	resp.Body.Close()
	if len(head) != 2 {
		t.Fatalf("read %d events on b", len(head))
	}
	code, rest := c.events(op["events_url"].(string), head[1].ID)
	if code != http.StatusOK {
		t.Fatalf("resume on c: %d", code)
	}
	all := append(head, rest...)
	if last := checkStream(t, all, op); last.Event != "result-success" {
		t.Fatalf("ended with %s", last.Raw)
	}
	if code, _ := b.events(op["events_url"].(string), all[len(all)-1].ID); code != http.StatusNoContent {
		t.Fatalf("finished stream read to its end on b: %d, want 204", code)
	}
}

// tokenAuth is an Authenticator and CallAuthorizer that, like
// genesys.Authenticator, judges call access by the request's own bearer
// token: "agent-a" may act on callA only, "agent-b" on callB only. It
// counts the calls it was asked about.
type tokenAuth struct {
	asked atomic.Int32
}

func (a *tokenAuth) Authenticate(ctx context.Context, r *http.Request) (Principal, error) {
	tok, _ := BearerToken(r)
	if tok != "agent-a" && tok != "agent-b" {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Subject: tok}, nil
}

func (a *tokenAuth) AuthorizeCall(ctx context.Context, r *http.Request, p Principal, callID string) error {
	a.asked.Add(1)
	tok, _ := BearerToken(r)
	switch {
	case tok == "":
		return ErrUnauthenticated
	case (tok == "agent-a" && callID == callA) || (tok == "agent-b" && callID == callB):
		return nil
	}
	return fmt.Errorf("%w: %s is not on %s", ErrForbidden, tok, callID)
}

// TestClusterChecks: a request forwarded to the node holding the call
// keeps every check. The agent is authorized on the call by the node the
// click reached (the only one with the agent's token), before anything is
// forwarded; the node holding the call binds the caller to it. A stop
// through another node is authorized there before it reaches the
// operation's node.
func TestClusterChecks(t *testing.T) {
	auths := []*tokenAuth{{}, {}, {}}
	nodes := clusterWith(t, 3, func(i int, o *Options, fs *fakeSource) {
		o.Source, o.Authenticator = infoSource{fs}, auths[i]
	})
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.src.set(callA, fakeCall{hold: true, ani: callerA, live: true})
	opened := func() int {
		a.src.mu.Lock()
		defer a.src.mu.Unlock()
		return len(a.src.reqs)
	}
	for _, tc := range []struct {
		name, token, path, caller string
		code                      int
		errCode                   string
	}{
		{"register, agent not on the call", "agent-b", "/register", callerA, 403, CodeForbidden},
		{"status, agent not on the call", "agent-b", "/status", callerA, 403, CodeForbidden},
		{"delete, agent not on the call", "agent-b", "/delete", callerA, 403, CodeForbidden},
		{"register, another caller", "agent-a", "/register", callerB, 400, CodeBadCallerID},
		{"delete, another caller", "agent-a", "/delete", callerB, 400, CodeBadCallerID},
		{"status, another caller", "agent-a", "/status", callerB, 400, CodeBadCallerID},
		{"verify, not registered", "agent-a", "/verify", callerA, 404, CodeNotRegistered},
	} {
		code, m := b.postAs(tc.token, tc.path, map[string]any{"call_id": callA, "caller_id": tc.caller})
		if code != tc.code || m["code"] != tc.errCode {
			t.Errorf("%s through b: %d %v, want %d %s", tc.name, code, m, tc.code, tc.errCode)
		}
	}
	if n := opened(); n != 0 {
		t.Fatalf("%d audio sources opened by refused requests", n)
	}
	code, op := b.postAs("agent-a", "/register", map[string]any{"call_id": callA})
	if code != 202 || op["caller_id"] != callerA {
		t.Fatalf("register through b: %d %v", code, op)
	}
	a.waitRunning(callA)
	if code, m := c.postAs("agent-b", "/stop", map[string]any{"operation_id": op["operation_id"]}); code != 403 || m["code"] != CodeForbidden {
		t.Fatalf("agent-b stop through c: %d %v", code, m)
	}
	a.srv.mu.Lock()
	running := a.srv.running[callA] != nil
	a.srv.mu.Unlock()
	if !running {
		t.Fatal("a refused stop ended the operation")
	}
	if code, m := c.postAs("agent-a", "/stop", map[string]any{"operation_id": op["operation_id"]}); code != 200 || m["stopped"] != true {
		t.Fatalf("agent-a stop through c: %d %v", code, m)
	}
	if last := checkStream(t, c.watch(op), op); last.Event != "error-cancelled" {
		t.Fatalf("stopped operation ended with %s", last.Raw)
	}
	// Node a, which has no agent token for forwarded requests, was never
	// asked: b and c authorized them.
	if n := auths[0].asked.Load(); n != 0 {
		t.Fatalf("node a's authorizer asked %d times about forwarded requests", n)
	}
	if n := auths[1].asked.Load(); n < 8 {
		t.Fatalf("node b's authorizer asked %d times", n)
	}
}
