package flex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/daspeak/offline"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

const (
	workspace = "WS00000000000000000000000000000001"
	workerA   = "WK0000000000000000000000000000000a"
	workerB   = "WK0000000000000000000000000000000b"
	callOfA   = "CA0000000000000000000000000000000a"
	callOfB   = "CA0000000000000000000000000000000b"
	taskOfA   = "WT0000000000000000000000000000000a"
	taskOfB   = "WT0000000000000000000000000000000b"
)

// taskRouterFake is a fake Twilio whose TaskRouter has worker A on call A
// and worker B on call B (accepted reservations of assigned voice tasks).
func taskRouterFake(t *testing.T) *twiliotest.Server {
	t.Helper()
	fake := newFake(t, nil)
	fake.AddWorkspace(workspace)
	fake.AddTask(workspace, taskOfA, `{"type":"inbound","call_sid":"`+callOfA+`","from":"+34911234567"}`, "")
	fake.AddTask(workspace, taskOfB, `{"type":"inbound","call_sid":"`+callOfB+`"}`, "")
	fake.SetReservation(workspace, workerA, taskOfA, twilio.ReservationAccepted)
	fake.SetReservation(workspace, workerB, taskOfB, twilio.ReservationAccepted)
	return fake
}

func newAssignment(t *testing.T, base, authToken string, mod func(*AssignmentOptions)) *Assignment {
	t.Helper()
	c, err := twilio.NewClient(&twilio.ClientOptions{
		AccountSID: twiliotest.DefaultAccountSID, AuthToken: authToken, BaseURL: base,
		Timeout: 2 * time.Second, MaxRetries: 1, RetryBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	o := &AssignmentOptions{Client: c, WorkspaceSID: workspace, CacheTTL: -1}
	if mod != nil {
		mod(o)
	}
	a, err := NewAssignment(o)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAssignment: an agent may act on the call of their accepted,
// assigned task and on no other; TaskRouter's faults and a wrong
// workspace are the server's (agent.ErrAuthUnavailable), not a refusal.
func TestAssignment(t *testing.T) {
	fake := taskRouterFake(t)
	a := newAssignment(t, fake.URL, fake.AuthToken(), nil)
	ctx := context.Background()
	r := httptest.NewRequest(http.MethodPost, "/agent/status", nil)
	as := func(worker string) agent.Principal { return agent.Principal{Subject: worker, Name: "agent"} }
	forbidden := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, agent.ErrForbidden) || !errors.Is(err, ErrNotAssigned) || errors.Is(err, agent.ErrAuthUnavailable) {
			t.Fatalf("err %v, want agent.ErrForbidden and ErrNotAssigned", err)
		}
	}

	if err := a.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if err := a.AuthorizeCall(ctx, r, as(workerA), callOfA); err != nil {
		t.Fatalf("worker A on their call: %v", err)
	}
	if err := a.AuthorizeCall(ctx, r, as(workerA), "CA"+strings.ToUpper(callOfA[2:])); err != nil {
		t.Fatalf("worker A on their call, hex in upper case: %v", err)
	}
	forbidden(t, a.AuthorizeCall(ctx, r, as(workerA), callOfB))
	forbidden(t, a.AuthorizeCall(ctx, r, as(workerB), callOfA))
	if err := a.AuthorizeCall(ctx, r, as(workerA), "CA-not-a-sid"); !errors.Is(err, agent.ErrBadCallID) || errors.Is(err, agent.ErrForbidden) {
		t.Fatalf("a call id that is not a SID: %v, want agent.ErrBadCallID", err)
	}
	forbidden(t, a.AuthorizeCall(ctx, r, as("user_40example_2Dcom"), callOfA)) // a Flex token without a worker SID
	forbidden(t, a.AuthorizeCall(ctx, r, as("WK0000000000000000000000000000000c"), callOfA))

	// The call ends (the reservation wraps up, then completes): the call
	// is no longer the agent's, and the refusal says it ended (no_call),
	// to its agent only. The reservation statuses of a task the worker
	// never held stay refusals.
	ended := func(t *testing.T, err error) {
		t.Helper()
		if !errors.Is(err, agent.ErrNoCall) || !errors.Is(err, ErrCallEnded) || errors.Is(err, agent.ErrForbidden) || errors.Is(err, agent.ErrAuthUnavailable) {
			t.Fatalf("err %v, want agent.ErrNoCall and ErrCallEnded, not forbidden", err)
		}
	}
	for _, st := range []string{twilio.ReservationWrapping, twilio.ReservationCompleted} {
		fake.SetReservation(workspace, workerA, taskOfA, st)
		fake.AddTask(workspace, taskOfA, `{"call_sid":"`+callOfA+`"}`, st)
		ended(t, a.AuthorizeCall(ctx, r, as(workerA), callOfA))
		forbidden(t, a.AuthorizeCall(ctx, r, as(workerA), callOfB))
		forbidden(t, a.AuthorizeCall(ctx, r, as(workerB), callOfA))
	}
	for _, st := range []string{"pending", "rejected", "timeout", "canceled", "rescinded"} {
		fake.SetReservation(workspace, workerA, taskOfA, st)
		forbidden(t, a.AuthorizeCall(ctx, r, as(workerA), callOfA))
	}
	// TaskRouter failing while the ended reservations are read: not
	// judged (503), never an ended call nor a refusal.
	fake.SetReservation(workspace, workerA, taskOfA, twilio.ReservationWrapping)
	fake.SetFaults(twiliotest.Fault{PathPrefix: "/v1/Workspaces/" + workspace + "/Tasks/", Status: 500, Code: 20500, Message: "Internal"})
	if err := a.AuthorizeCall(ctx, r, as(workerA), callOfA); !errors.Is(err, agent.ErrAuthUnavailable) || errors.Is(err, agent.ErrNoCall) {
		t.Fatalf("TaskRouter failing on the ended reservation's task: err %v, want agent.ErrAuthUnavailable", err)
	}
	fake.SetFaults()
	fake.AddTask(workspace, taskOfA, `{"call_sid":"`+callOfA+`"}`, "")
	fake.SetReservation(workspace, workerA, taskOfA, twilio.ReservationAccepted)
	fake.AddTask(workspace, taskOfA, `{"call_sid":"`+callOfA+`"}`, "wrapping")
	forbidden(t, a.AuthorizeCall(ctx, r, as(workerA), callOfA))
	// A task without call_sid, or with attributes that are not JSON,
	// authorizes nothing.
	fake.AddTask(workspace, taskOfA, `{"conversation_sid":"CH0000000000000000000000000000000a"}`, "")
	forbidden(t, a.AuthorizeCall(ctx, r, as(workerA), callOfA))
	fake.AddTask(workspace, taskOfA, `not json`, "")
	forbidden(t, a.AuthorizeCall(ctx, r, as(workerA), callOfA))
	fake.AddTask(workspace, taskOfA, `{"call_sid":"`+callOfA+`"}`, "")
	if err := a.AuthorizeCall(ctx, r, as(workerA), callOfA); err != nil {
		t.Fatalf("worker A on their call again: %v", err)
	}

	// The server's side: its answer is 503, never 403.
	unavailable := func(t *testing.T, err error, kind error) {
		t.Helper()
		var se *ServerError
		if !errors.As(err, &se) || !errors.Is(err, agent.ErrAuthUnavailable) || !errors.Is(err, kind) || errors.Is(err, agent.ErrForbidden) {
			t.Fatalf("err %v, want a *ServerError wrapping agent.ErrAuthUnavailable and %v", err, kind)
		}
	}
	fake.SetFaults(twiliotest.Fault{PathPrefix: "/v1/Workspaces/", Status: 503, Code: 20503, Message: "Service unavailable"})
	unavailable(t, a.AuthorizeCall(ctx, r, as(workerA), callOfA), ErrTwilioUnavailable)
	fake.SetFaults(twiliotest.Fault{PathPrefix: "/v1/Workspaces/" + workspace + "/Tasks/", Status: 500, Code: 20500, Message: "Internal"})
	unavailable(t, a.AuthorizeCall(ctx, r, as(workerA), callOfA), ErrTwilioUnavailable)
	fake.SetFaults()
	stale := newAssignment(t, fake.URL, "stale-auth-token", nil)
	unavailable(t, stale.AuthorizeCall(ctx, r, as(workerA), callOfA), ErrServerCredentials)
	unavailable(t, stale.Check(ctx), ErrServerCredentials)
	wrong := newAssignment(t, fake.URL, fake.AuthToken(), func(o *AssignmentOptions) { o.WorkspaceSID = "WS000000000000000000000000000000ff" })
	unavailable(t, wrong.AuthorizeCall(ctx, r, as(workerA), callOfA), ErrWorkspace)
	unavailable(t, wrong.Check(ctx), ErrWorkspace)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	unreachable := newAssignment(t, downURL, fake.AuthToken(), nil)
	unavailable(t, unreachable.AuthorizeCall(ctx, r, as(workerA), callOfA), ErrTwilioUnavailable)
}

// TestAssignmentCache: an allowed pair is remembered for CacheTTL, a
// refusal never.
func TestAssignmentCache(t *testing.T) {
	fake := taskRouterFake(t)
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	a := newAssignment(t, fake.URL, fake.AuthToken(), func(o *AssignmentOptions) { o.CacheTTL = 5 * time.Second; o.Now = clock })
	ctx := context.Background()
	r := httptest.NewRequest(http.MethodPost, "/agent/status", nil)
	p := agent.Principal{Subject: workerA}
	requests := func() int { return len(fake.Requests()) }

	if err := a.AuthorizeCall(ctx, r, p, callOfA); err != nil {
		t.Fatal(err)
	}
	n := requests()
	fake.SetReservation(workspace, workerA, taskOfA, "completed")
	if err := a.AuthorizeCall(ctx, r, p, callOfA); err != nil || requests() != n {
		t.Fatalf("within the TTL: err %v, %d TaskRouter requests (want none)", err, requests()-n)
	}
	advance(5 * time.Second)
	if err := a.AuthorizeCall(ctx, r, p, callOfA); !errors.Is(err, agent.ErrNoCall) {
		t.Fatalf("after the TTL, with the reservation completed: err %v, want refused, the call ended", err)
	}
	n = requests()
	if err := a.AuthorizeCall(ctx, r, p, callOfA); !errors.Is(err, agent.ErrNoCall) || requests() == n {
		t.Fatalf("a refusal was remembered: err %v, %d requests", err, requests()-n)
	}

	// A start or a delete never takes the cached allow: right after a
	// hang-up (the reservation wrapping) it is refused, within the TTL.
	fake.SetReservation(workspace, workerA, taskOfA, twilio.ReservationAccepted)
	if err := a.AuthorizeCall(ctx, r, p, callOfA); err != nil {
		t.Fatalf("accepted again: %v", err)
	}
	fake.SetReservation(workspace, workerA, taskOfA, twilio.ReservationWrapping)
	for _, path := range []string{"/agent/register", "/agent/verify", "/agent/reverify", "/agent/delete"} {
		start := httptest.NewRequest(http.MethodPost, path, nil)
		if err := a.AuthorizeCall(ctx, start, p, callOfA); !errors.Is(err, agent.ErrNoCall) {
			t.Errorf("%s within the TTL after the hang-up: err %v, want refused, the call ended", path, err)
		}
	}
	for _, path := range []string{"/agent/status", "/agent/stop"} {
		read := httptest.NewRequest(http.MethodPost, path, nil)
		if err := a.AuthorizeCall(ctx, read, p, callOfA); err != nil {
			t.Errorf("%s within the TTL: %v (a read may come from the cache)", path, err)
		}
	}
}

// TestAssignedAgentAPI: behind an agent.Server, an agent acting on a call
// that is not theirs gets 403 forbidden; on their own call they get
// through, and once it has ended 409 no_call; a TaskRouter fault answers
// 503 auth_unavailable.
func TestAssignedAgentAPI(t *testing.T) {
	fake := taskRouterFake(t)
	id := agentID
	id.WorkerSID = workerA
	id.Expiration = time.Now().Add(time.Hour)
	fake.AddFlexToken("token-of-a", id)
	auth := Assigned(newAuth(t, fake.URL, fake.AuthToken()), newAssignment(t, fake.URL, fake.AuthToken(), nil))
	api, err := agent.NewServer(&agent.Options{
		Engine: offline.New(nil), Store: &agent.CredentialStore{Store: credstore.NewMemory()},
		Source: noCalls{}, Authenticator: auth, AuthFailureDelay: time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer api.Shutdown(context.Background())
	status := func(call string) (int, string) {
		r := httptest.NewRequest(http.MethodPost, "/agent/status", strings.NewReader(`{"call_id":"`+call+`","caller_id":"+34911234567"}`))
		r.Header.Set("Authorization", "Bearer token-of-a")
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	if code, body := status(callOfA); code != 200 {
		t.Errorf("own call: %d %s", code, body)
	}
	if code, body := status(callOfB); code != 403 || !strings.Contains(body, `"code":"forbidden"`) {
		t.Errorf("another agent's call: %d %s, want 403 forbidden", code, body)
	}
	// The agent's call ends: 409 no_call, for status, starts and delete
	// alike; still 403 on another agent's call.
	fake.SetReservation(workspace, workerA, taskOfA, twilio.ReservationWrapping)
	for _, path := range []string{"/agent/status", "/agent/register", "/agent/verify", "/agent/delete"} {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(`{"call_id":"`+callOfA+`","caller_id":"+34911234567"}`))
		r.Header.Set("Authorization", "Bearer token-of-a")
		w := httptest.NewRecorder()
		api.ServeHTTP(w, r)
		if w.Code != 409 || !strings.Contains(w.Body.String(), `"code":"no_call"`) {
			t.Errorf("%s on the agent's call after hang-up: %d %s, want 409 no_call", path, w.Code, w.Body)
		}
	}
	if code, body := status(callOfB); code != 403 || !strings.Contains(body, `"code":"forbidden"`) {
		t.Errorf("another agent's call: %d %s, want 403 forbidden", code, body)
	}
	fake.SetReservation(workspace, workerA, taskOfA, twilio.ReservationAccepted)
	fake.SetFaults(twiliotest.Fault{PathPrefix: "/v1/Workspaces/", Status: 500, Code: 20500, Message: "Internal"})
	if code, body := status(callOfA); code != 503 || !strings.Contains(body, `"code":"auth_unavailable"`) {
		t.Errorf("TaskRouter failing: %d %s, want 503 auth_unavailable", code, body)
	}
}

func TestNewAssignmentOptions(t *testing.T) {
	c, err := twilio.NewClient(&twilio.ClientOptions{AccountSID: twiliotest.DefaultAccountSID, AuthToken: "x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []*AssignmentOptions{nil, {WorkspaceSID: workspace}, {Client: c}, {Client: c, WorkspaceSID: "WS123"}, {Client: c, WorkspaceSID: workerA}} {
		if _, err := NewAssignment(o); !errors.Is(err, twilio.ErrInvalidArgument) {
			t.Errorf("NewAssignment(%+v): err %v, want ErrInvalidArgument", o, err)
		}
	}
}

// TestAssignedIdentityIsNoWorker: a Flex token without a worker SID whose
// identity looks like another agent's worker SID never acts as that
// worker: its subject is an identity, refused, and not worker A's call.
func TestAssignedIdentityIsNoWorker(t *testing.T) {
	fake := taskRouterFake(t)
	const token = "token-of-an-identity-shaped-like-a-worker"
	fake.AddFlexToken(token, twilio.FlexIdentity{Identity: workerA, Expiration: time.Now().Add(time.Hour)})
	auth := Assigned(newAuth(t, fake.URL, fake.AuthToken()), newAssignment(t, fake.URL, fake.AuthToken(), nil))
	ctx := context.Background()
	r := httptest.NewRequest(http.MethodPost, "/agent/status", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	p, err := auth.Authenticate(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != IdentitySubject+workerA {
		t.Errorf("subject %q, want %q", p.Subject, IdentitySubject+workerA)
	}
	if err := auth.AuthorizeCall(ctx, r, p, callOfA); !errors.Is(err, agent.ErrForbidden) || !errors.Is(err, ErrNotAssigned) {
		t.Fatalf("an identity %q acts on worker %s's call: err %v", workerA, workerA, err)
	}
}

func TestIsCallSID(t *testing.T) {
	for _, c := range []struct {
		id   string
		want bool
	}{
		{callOfA, true},
		{"CA0123456789ABCDEF0123456789abcdef", true},
		{"CA0123456789abcdef0123456789abcde", false},
		{"CA0123456789abcdef0123456789abcdef0", false},
		{"CA0123456789abcdef0123456789abcdeg", false},
		{"WK0123456789abcdef0123456789abcdef", false},
		{"", false},
	} {
		if got := IsCallSID(c.id); got != c.want {
			t.Errorf("IsCallSID(%q) = %v", c.id, got)
		}
	}
}

// TestAssignmentRefusalCost: a worker's wrapping and completed
// reservations are read once per CacheTTL, so refusals for calls that
// are not theirs (one agent posting random call SIDs) cost TaskRouter
// one accepted-reservation check each and no more than two lists and
// maxEndedTasks task fetches together; the accepted check is never
// cached, so a call assigned meanwhile is allowed at once.
func TestAssignmentRefusalCost(t *testing.T) {
	fake := taskRouterFake(t)
	sid := func(prefix string, i int) string { return fmt.Sprintf("%s%032x", prefix, i) }
	wrappedCallSID := sid("CA", 0xffff)
	fake.AddTask(workspace, sid("WT", 0xffff), `{"call_sid":"`+wrappedCallSID+`"}`, twilio.ReservationWrapping)
	fake.SetReservation(workspace, workerA, sid("WT", 0xffff), twilio.ReservationWrapping)
	const completed = 2 * maxEndedTasks
	for i := range completed {
		fake.AddTask(workspace, sid("WT", 0x1000+i), `{"call_sid":"`+sid("CA", 0x1000+i)+`"}`, twilio.ReservationCompleted)
		fake.SetReservation(workspace, workerA, sid("WT", 0x1000+i), twilio.ReservationCompleted)
	}
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	a := newAssignment(t, fake.URL, fake.AuthToken(), func(o *AssignmentOptions) { o.CacheTTL = 5 * time.Second; o.Now = clock })
	ctx := context.Background()
	r := httptest.NewRequest(http.MethodPost, "/agent/status", nil)
	p := agent.Principal{Subject: workerA}
	count := func() (lists, tasks int) {
		for _, q := range fake.Requests() {
			switch {
			case strings.HasSuffix(q.Path, "/Reservations"):
				lists++
			case strings.Contains(q.Path, "/Tasks/"):
				tasks++
			}
		}
		return lists, tasks
	}
	since := func(l0, t0 int) (int, int) { l, t := count(); return l - l0, t - t0 }

	// A call of a wrapping reservation: ended, without listing the
	// completed ones.
	l0, t0 := count()
	if err := a.AuthorizeCall(ctx, r, p, wrappedCallSID); !errors.Is(err, agent.ErrNoCall) || !errors.Is(err, ErrCallEnded) {
		t.Fatalf("the wrapping reservation's call: %v, want ErrNoCall", err)
	}
	if l, tk := since(l0, t0); l != 2 || tk != 2 {
		t.Errorf("the wrapping reservation's call: %d lists, %d task fetches; want 2 (accepted, wrapping) and 2", l, tk)
	}

	// N refusals for random calls within the TTL.
	const n = 50
	l0, t0 = count()
	for i := range n {
		err := a.AuthorizeCall(ctx, r, p, sid("CA", 0x9000+i))
		if !errors.Is(err, agent.ErrForbidden) || !errors.Is(err, ErrNotAssigned) {
			t.Fatalf("random call %d: %v, want forbidden", i, err)
		}
	}
	l, tk := since(l0, t0)
	// Each refusal: the accepted list and its one task; once: the
	// completed list and the tasks left of maxEndedTasks.
	if l > n+1 || tk > n+maxEndedTasks {
		t.Errorf("%d refusals cost %d lists and %d task fetches; want at most %d and %d", n, l, tk, n+1, n+maxEndedTasks)
	}
	t.Logf("%d refusals: %d reservation lists, %d task fetches", n, l, tk)
	// A completed reservation within the bound still says ended, from
	// the cache.
	l0, t0 = count()
	if err := a.AuthorizeCall(ctx, r, p, sid("CA", 0x1000)); !errors.Is(err, agent.ErrNoCall) {
		t.Errorf("a completed reservation's call: %v, want ErrNoCall", err)
	}
	if l, tk := since(l0, t0); l != 1 || tk != 1 {
		t.Errorf("a completed reservation's call from the cache: %d lists, %d task fetches; want 1 and 1", l, tk)
	}
	// The accepted check is not cached: a call assigned now is allowed.
	fresh := sid("CA", 0x9000)
	fake.AddTask(workspace, sid("WT", 0x9000), `{"call_sid":"`+fresh+`"}`, "")
	fake.SetReservation(workspace, workerA, sid("WT", 0x9000), twilio.ReservationAccepted)
	if err := a.AuthorizeCall(ctx, r, p, fresh); err != nil {
		t.Errorf("a call assigned within the TTL: %v", err)
	}
	// Another worker's refusals read their own lists.
	l0, t0 = count()
	if err := a.AuthorizeCall(ctx, r, agent.Principal{Subject: workerB}, wrappedCallSID); !errors.Is(err, agent.ErrForbidden) {
		t.Errorf("worker B on worker A's wrapped call: %v, want forbidden", err)
	}
	if l, _ := since(l0, t0); l != 3 {
		t.Errorf("worker B's refusal: %d lists, want 3", l)
	}
	// After the TTL the lists are read again.
	advance(5 * time.Second)
	l0, t0 = count()
	if err := a.AuthorizeCall(ctx, r, p, sid("CA", 0x9999)); !errors.Is(err, agent.ErrForbidden) {
		t.Fatalf("after the TTL: %v", err)
	}
	if l, _ := since(l0, t0); l != 3 {
		t.Errorf("after the TTL: %d lists, want 3 (accepted, wrapping, completed)", l)
	}
	// Concurrent refusals of one worker share one read of the lists.
	advance(5 * time.Second)
	const m = 16
	l0, t0 = count()
	var wg sync.WaitGroup
	for i := range m {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.AuthorizeCall(ctx, r, p, sid("CA", 0xa000+i)); !errors.Is(err, agent.ErrForbidden) {
				t.Errorf("concurrent refusal %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	// Worker A now holds two accepted reservations: two task fetches
	// per refusal.
	if l, tk := since(l0, t0); l > m+2 || tk > 2*m+maxEndedTasks {
		t.Errorf("%d concurrent refusals: %d lists, %d task fetches; want at most %d and %d", m, l, tk, m+2, 2*m+maxEndedTasks)
	}
}
