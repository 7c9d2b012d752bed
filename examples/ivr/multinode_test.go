package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus/natsbustest"
	"github.com/voicegate/voicegate/daspeak/agent/oplog"
	"github.com/voicegate/voicegate/internal/fixtures"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// lbURL is the load balancer's address every node is configured with
// (-public-url): Twilio signs the stream and webhooks under it, and the
// test picks the node each request reaches.
const lbURL = "https://ivr-lb.example.com"

// ivrNode is one server started with run and -nats.
type ivrNode struct {
	name   string
	base   string
	logs   *syncBuffer
	cancel context.CancelFunc
	errc   chan error
}

// syncBuffer is a log destination shared by a node's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startNode runs a server with args and waits until it listens.
func startNode(t *testing.T, name string, args ...string) *ivrNode {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	n := &ivrNode{name: name, logs: &syncBuffer{}, cancel: cancel, errc: make(chan error, 1)}
	addrc := make(chan net.Addr, 1)
	go func() {
		n.errc <- run(ctx, append([]string{"-listen", "127.0.0.1:0", "-offline"}, args...), n.logs, func(a net.Addr) { addrc <- a })
	}()
	select {
	case a := <-addrc:
		n.base = "http://" + a.String()
	case err := <-n.errc:
		cancel()
		t.Fatalf("node %s: %v\n%s", name, err, n.logs.String())
	}
	t.Cleanup(func() {
		n.stop(t)
		if t.Failed() {
			t.Logf("node %s log:\n%s", name, n.logs.String())
		}
	})
	return n
}

// stop stops the node (once) and checks it exited cleanly.
func (n *ivrNode) stop(t *testing.T) {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	if err := <-n.errc; err != nil {
		t.Errorf("node %s: %v", n.name, err)
	}
}

// ivrDo sends an IVR request with the API key to a node.
func ivrDo(t *testing.T, n *ivrNode, method, path string, body []byte) (int, doc) {
	t.Helper()
	req, _ := http.NewRequest(method, n.base+path, bytes.NewReader(body))
	req.Header.Set("X-API-Key", apiKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, doc{}
	}
	defer resp.Body.Close()
	var d doc
	json.NewDecoder(resp.Body).Decode(&d)
	return resp.StatusCode, d
}

// ivrPoll polls a session on a node until it leaves waiting_audio and
// processing.
func ivrPoll(t *testing.T, n *ivrNode, path string) doc {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		code, d := ivrDo(t, n, http.MethodGet, path, nil)
		if code != http.StatusOK {
			t.Errorf("poll %s on %s: %d", path, n.name, code)
			return d
		}
		if d.Status != statusWaiting && d.Status != statusProcessing {
			return d
		}
	}
	t.Errorf("session %s did not finish (polled on %s)", path, n.name)
	return doc{}
}

// playTo streams a fixture to a node as Twilio would for call, held open
// until the server closes the stream.
func playTo(t *testing.T, n *ivrNode, call string, params map[string]string, name string) (*twiliotest.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return twiliotest.PlayWAV(ctx, "ws"+strings.TrimPrefix(n.base, "http")+mediaPath, wav(t, name), &twiliotest.Options{
		AuthToken: authToken, PublicURL: "wss://ivr-lb.example.com" + mediaPath,
		CallSID: call, CustomParameters: params, Pace: twiliotest.AsFastAsPossible, HoldOpen: make(chan struct{}),
	})
}

// signedPost posts a Twilio webhook signed for the load balancer's URL.
func signedPost(t *testing.T, n *ivrNode, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(twilio.SignatureHeader, twilio.ComputeSignature(authToken, lbURL+path, form))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// TestMultiNode runs three nodes on one NATS server and a shared SQLite
// store, as behind a load balancer: every session is created on one node,
// its Twilio stream reaches a second and its polls (or Twilio's
// /twiml/result) a third, which report the session's real result. Genuine
// callers and impostors run at the same time, so a result reported for
// the wrong session shows as a wrong status. A second stream for a session
// is refused on any node.
func TestMultiNode(t *testing.T) {
	nats := natsbustest.Start(t)
	t.Setenv(envAPIKey, apiKey)
	t.Setenv("TWILIO_AUTH_TOKEN", authToken)
	t.Setenv("NATS_URL", "")
	t.Setenv("CREDSTORE_KEY", "")
	store := "sqlite:" + filepath.Join(t.TempDir(), "credentials.db")
	var nodes []*ivrNode
	for i := range 3 {
		name := fmt.Sprintf("n%d", i)
		nodes = append(nodes, startNode(t, name, "-public-url", lbURL, "-store", store, "-nats", nats.URL, "-node", name,
			"-next-url", nextURL, "-queue-frames", "2000"))
		if !strings.Contains(nodes[i].logs.String(), "one node of many") {
			t.Fatalf("node %s does not say it is one node of many:\n%s", name, nodes[i].logs.String())
		}
	}

	// Callers registered from uploads, each through another node.
	voices := []string{"rms", "slt", "kal", "awb", "armelle"}
	caller := func(i int) string { return fmt.Sprintf("+346000002%02d", i) }
	for i, v := range voices {
		code, d := ivrDo(t, nodes[i%3], http.MethodPost, "/register?caller="+url.QueryEscape(caller(i)), wav(t, fixtures.Utterances(v)[0]))
		if code != http.StatusOK || d.Status != statusSuccess {
			t.Fatalf("register %s on %s: %d %+v %s", v, nodes[i%3].name, code, d, d.Event)
		}
		// The upload's session can be polled on every node.
		for _, n := range nodes {
			if code, p := ivrDo(t, n, http.MethodGet, "/register/"+d.ID, nil); code != http.StatusOK || p.Status != statusSuccess || p.Input == nil || p.Input.SampleRate != d.Input.SampleRate {
				t.Fatalf("poll upload %s on %s: %d %+v", d.ID, n.name, code, p)
			}
		}
	}

	// One new caller registered on every node at once, a few rounds: the
	// registration lock holds across the nodes, so exactly one wins and
	// the others are answered 409 (already registered), nothing stored
	// over the winner.
	const contested = "+34600000299"
	for round := range 3 {
		docs := make([]doc, len(nodes))
		codes := make([]int, len(nodes))
		var wg sync.WaitGroup
		for i, n := range nodes {
			wg.Go(func() {
				codes[i], docs[i] = ivrDo(t, n, http.MethodPost, "/register?caller="+url.QueryEscape(contested), wav(t, fixtures.Utterances(voices[i])[1]))
			})
		}
		wg.Wait()
		won := 0
		for i, d := range docs {
			switch {
			case d.Status == statusSuccess:
				won++
			case codes[i] != http.StatusConflict:
				t.Errorf("round %d, node %s: %d %+v %s", round, nodes[i].name, codes[i], d, d.Event)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d nodes registered %s at once, want 1", round, won, contested)
		}
		if code, _ := ivrDo(t, nodes[round%3], http.MethodDelete, "/callers/"+url.PathEscape(contested), nil); code != http.StatusNoContent {
			t.Fatalf("delete: %d", code)
		}
	}

	// Verify sessions bound to calls: created on node k, streamed to k+1,
	// polled on k+2; the genuine caller's voice or the next caller's.
	type verification struct {
		caller, call, id string
		genuine          bool
		a, b, c          int
		got              doc
		res              *twiliotest.Result
		err              error
	}
	var vs []*verification
	for k := range 2 * len(voices) {
		i := k % len(voices)
		v := &verification{caller: caller(i), call: twiliotest.SID("CA"), genuine: k < len(voices), a: k % 3}
		v.b, v.c = (v.a+1)%3, (v.a+2)%3
		code, d := ivrDo(t, nodes[v.a], http.MethodPost, "/verify?caller="+url.QueryEscape(v.caller)+"&call="+v.call, nil)
		if code != http.StatusAccepted || d.Status != statusWaiting || d.StreamURL != "wss://ivr-lb.example.com"+mediaPath || d.Parameters[paramSession] != d.ID {
			t.Fatalf("create on %s: %d %+v", nodes[v.a].name, code, d)
		}
		v.id = d.ID
		// Waiting, on every node.
		for _, n := range nodes {
			if code, p := ivrDo(t, n, http.MethodGet, "/verify/"+v.id, nil); code != http.StatusOK || p.Status != statusWaiting || p.CallID != v.call {
				t.Fatalf("waiting session on %s: %d %+v", n.name, code, p)
			}
		}
		vs = append(vs, v)
	}
	var wg sync.WaitGroup
	for k, v := range vs {
		voice := voices[k%len(voices)]
		if !v.genuine {
			voice = voices[(k+1)%len(voices)]
		}
		wg.Go(func() {
			v.res, v.err = playTo(t, nodes[v.b], v.call, map[string]string{paramSession: v.id}, fixtures.Utterances(voice)[1])
			v.got = ivrPoll(t, nodes[v.c], "/verify/"+v.id)
		})
	}
	wg.Wait()
	for _, v := range vs {
		if errors.Is(v.err, context.DeadlineExceeded) || (v.err == nil && !v.res.ServerClosed) {
			t.Errorf("%s: the node that got the stream did not close it after the result: %v %+v", v.id, v.err, v.res)
		}
		want := statusFailScore
		if v.genuine {
			want = statusSuccess
		}
		if v.got.ID != v.id || v.got.CallID != v.call || v.got.Operation != "verify" || v.got.Status != want {
			t.Errorf("session %s (call %s, genuine %v) polled on %s: %+v %s", v.id, v.call, v.genuine, nodes[v.c].name, v.got, v.got.Event)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	// A second stream for a finished session is refused on every node,
	// and the result stays.
	for _, n := range nodes {
		v := vs[0]
		res, err := playTo(t, n, v.call, map[string]string{paramSession: v.id}, fixtures.Utterances("kal")[2])
		if errors.Is(err, context.DeadlineExceeded) || (err == nil && !res.ServerClosed) {
			t.Fatalf("second stream on %s not closed: %v %+v", n.name, err, res)
		}
		if _, p := ivrDo(t, n, http.MethodGet, "/verify/"+v.id, nil); p.Status != statusSuccess || string(p.Event) != string(v.got.Event) {
			t.Fatalf("after a second stream on %s: %+v", n.name, p)
		}
	}
	// A poll by the other operation's path, or an unknown id, is 404.
	if code, _ := ivrDo(t, nodes[1], http.MethodGet, "/register/"+vs[0].id, nil); code != http.StatusNotFound {
		t.Fatalf("verify session polled as register: %d", code)
	}
	if code, _ := ivrDo(t, nodes[1], http.MethodGet, "/verify/"+strings.Repeat("0", 32), nil); code != http.StatusNotFound {
		t.Fatalf("unknown session: %d", code)
	}

	// The voice webhook: TwiML from node 0, stream to node 1,
	// /twiml/result on node 2 (asked as soon as the stream ends, it waits
	// for the result).
	call := twiliotest.SID("CA")
	form := url.Values{"CallSid": {call}, "From": {caller(1)}, "AccountSid": {twiliotest.DefaultAccountSID}}
	resp, body := signedPost(t, nodes[0], "/twiml/verify", form)
	id := resp.Header.Get("X-Voicegate-Session")
	if resp.StatusCode != http.StatusOK || len(id) != 32 || !strings.Contains(body, `url="wss://ivr-lb.example.com/twilio/media"`) {
		t.Fatalf("twiml: %s %s", resp.Status, body)
	}
	if _, err := playTo(t, nodes[1], call, map[string]string{paramSession: id}, fixtures.Utterances("slt")[2]); err != nil && errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	_, body = signedPost(t, nodes[2], resultPath+"?session="+id, form)
	want := twimlHead + `<Say>Your identity has been verified.</Say><Redirect method="POST">https://flow.example.com/next?flow=FW1&amp;voicegate_operation=verify&amp;voicegate_session=` + id + `&amp;voicegate_status=success</Redirect></Response>`
	if body != want {
		t.Fatalf("result on another node:\n got %s\nwant %s", body, want)
	}
	// The action for another call learns nothing, on any node.
	other := url.Values{"CallSid": {twiliotest.SID("CA")}}
	if _, body := signedPost(t, nodes[0], resultPath+"?session="+id, other); strings.Contains(body, "success") {
		t.Fatalf("result for another call: %s", body)
	}
}

// TestMultiNodeDeadNode: a session whose node stopped for good (its lease
// gone) while it ran is ended by a live node with error-audio, so a poll
// on any node does not report processing forever.
func TestMultiNodeDeadNode(t *testing.T) {
	nats := natsbustest.Start(t)
	t.Setenv(envAPIKey, apiKey)
	t.Setenv("TWILIO_AUTH_TOKEN", authToken)
	t.Setenv("NATS_URL", "")
	t.Setenv("CREDSTORE_KEY", "")
	store := "sqlite:" + filepath.Join(t.TempDir(), "credentials.db")
	live := startNode(t, "live", "-public-url", lbURL, "-store", store, "-nats", nats.URL, "-node", "live", "-nats-lease", "600ms")

	// The dead node: it took a session, recorded its audio and an
	// event, then stopped without ending it.
	ctx := context.Background()
	bus, err := natsbus.Connect(ctx, nats.URL, &natsbus.Options{Prefix: defaultNATSPrefix, Node: "dead", Lease: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const id = "0123456789abcdef0123456789abcdef"
	call := twiliotest.SID("CA")
	if err := bus.Create(ctx, oplog.Op{ID: id, Kind: "verify", CallID: call, CallerID: "+34600000300", Spec: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	progress, _ := json.Marshal(daspeak.Event{Type: daspeak.EventProgress, Operation: daspeak.OperationVerify})
	for i, r := range []oplog.Record{{Seq: 1, Type: recAudio, Data: []byte("null")}, {Seq: 2, Type: string(daspeak.EventProgress), Data: progress}} {
		if err := bus.Append(ctx, id, r); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if code, d := ivrDo(t, live, http.MethodGet, "/verify/"+id, nil); code != http.StatusOK || d.Status != statusProcessing || d.CallID != call {
		t.Fatalf("running session on the live node: %d %+v", code, d)
	}
	bus.Close()
	d := ivrPoll(t, live, "/verify/"+id)
	if d.Status != statusError || eventType(d) != string(daspeak.EventErrorAudio) || !strings.Contains(string(d.Event), errNodeStopped.Error()) {
		t.Fatalf("session of the dead node: %+v %s", d, d.Event)
	}
}

// TestSingleNodeSaysSo: without -nats the server says at start-up that
// sessions live in this process only.
func TestSingleNodeSaysSo(t *testing.T) {
	t.Setenv(envAPIKey, apiKey)
	t.Setenv("NATS_URL", "")
	n := startNode(t, "single")
	if !strings.Contains(n.logs.String(), "single node: sessions live in this process") {
		t.Fatalf("start-up log:\n%s", n.logs.String())
	}
	n.stop(t)
	// -nats needs a shared credential store.
	err := run(context.Background(), []string{"-listen", "127.0.0.1:0", "-offline", "-nats", "nats://127.0.0.1:1"}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "one credential store") {
		t.Fatalf("-nats with the memory store: %v", err)
	}
}

// TestWaitingSessionsBounded: a node keeps at most MaxSessions sessions
// waiting for a stream; those past -session-ttl are ended (and gone for
// polls and streams) when a new one is created, which frees their place;
// the log forgets ended ones past MaxSessions.
func TestWaitingSessionsBounded(t *testing.T) {
	const ttl = 300 * time.Millisecond
	e := newEnv(t, func(c *config) { c.MaxSessions = 3; c.SessionTTL = ttl })
	const q = "/verify?caller=%2B34600000310&call="
	if code, _ := e.do(http.MethodPost, "/register?caller=%2B34600000310", "audio/wav", wav(t, fixtures.Utterances("rms")[0])); code != http.StatusOK {
		t.Fatalf("register: %d", code)
	}
	var ids []string
	for range 3 {
		code, d := e.do(http.MethodPost, q+twiliotest.SID("CA"), "", nil)
		if code != http.StatusAccepted {
			t.Fatalf("create: %d", code)
		}
		ids = append(ids, d.ID)
	}
	if code, _ := e.do(http.MethodPost, q+twiliotest.SID("CA"), "", nil); code != http.StatusServiceUnavailable {
		t.Fatalf("fourth waiting session: %d, want 503", code)
	}
	time.Sleep(ttl + 50*time.Millisecond)
	if code, _ := e.do(http.MethodPost, q+twiliotest.SID("CA"), "", nil); code != http.StatusAccepted {
		t.Fatalf("after the TTL: %d", code)
	}
	e.srv.mu.Lock()
	waiting := len(e.srv.waiting)
	e.srv.mu.Unlock()
	if waiting != 1 {
		t.Fatalf("%d sessions remembered as waiting, want 1", waiting)
	}
	for _, id := range ids {
		if code, _ := e.do(http.MethodGet, "/verify/"+id, "", nil); code != http.StatusNotFound {
			t.Fatalf("expired session %s: %d", id, code)
		}
		// Ended, or already forgotten: the log keeps at most MaxSessions.
		op, err := e.srv.ops.Get(context.Background(), id)
		if err == nil && !op.Done || err != nil && !errors.Is(err, oplog.ErrNotFound) {
			t.Fatalf("expired session %s not ended: %+v %v", id, op, err)
		}
	}
}

// silenceWAV is d of 8 kHz 16-bit silence: a caller who says nothing, so
// a session on it keeps running.
func silenceWAV(d time.Duration) []byte {
	n := int(d.Seconds() * 8000)
	b, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 1}, make([]byte, 2*n))
	if err != nil {
		panic(err)
	}
	return b
}

// TestMultiNodeKill runs two server processes on one NATS server and
// kills one with SIGKILL while it runs a session whose stream reached it:
// the other node ends the session with error-audio ("the node running the
// session stopped") within 10 s, and a session the killed node created
// but no stream took yet is still taken, and verified, by the survivor.
func TestMultiNodeKill(t *testing.T) {
	nats := natsbustest.Start(t)
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH: cannot build the server processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ivr")
	if out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	store := "sqlite:" + filepath.Join(dir, "credentials.db")
	type proc struct {
		n    *ivrNode
		cmd  *exec.Cmd
		done chan struct{}
	}
	var procs []*proc
	for _, name := range []string{"a", "b"} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		p := &proc{n: &ivrNode{name: name, base: "http://" + addr, logs: &syncBuffer{}}, done: make(chan struct{})}
		p.cmd = exec.Command(bin, "-listen", addr, "-offline", "-public-url", lbURL, "-store", store,
			"-nats", nats.URL, "-node", name, "-nats-lease", "1s", "-queue-frames", "2000")
		p.cmd.Env = append(os.Environ(), envAPIKey+"="+apiKey, "TWILIO_AUTH_TOKEN="+authToken, "NATS_URL=", "CREDSTORE_KEY=")
		p.cmd.Stdout, p.cmd.Stderr = p.n.logs, p.n.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() {
			p.cmd.Process.Kill()
			<-p.done
			if t.Failed() {
				t.Logf("node %s log:\n%s", name, p.n.logs.String())
			}
		})
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if resp, err := http.Get(p.n.base + "/healthz"); err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s did not start:\n%s", name, p.n.logs.String())
			}
		}
		procs = append(procs, p)
	}
	a, b := procs[0].n, procs[1].n
	const caller = "%2B34600000320"
	if code, d := ivrDo(t, a, http.MethodPost, "/register?caller="+caller, wav(t, fixtures.Utterances("rms")[0])); code != http.StatusOK || d.Status != statusSuccess {
		t.Fatalf("register: %d %+v", code, d)
	}
	// A session whose stream reaches b and stays silent: it runs on b.
	running := twiliotest.SID("CA")
	_, d := ivrDo(t, a, http.MethodPost, "/verify?caller="+caller+"&call="+running, nil)
	hold := make(chan struct{})
	defer close(hold)
	go func() {
		twiliotest.PlayWAV(context.Background(), "ws"+strings.TrimPrefix(b.base, "http")+mediaPath, silenceWAV(30*time.Second), &twiliotest.Options{
			AuthToken: authToken, PublicURL: "wss://ivr-lb.example.com" + mediaPath,
			CallSID: running, CustomParameters: map[string]string{paramSession: d.ID}, Pace: twiliotest.RealTime, HoldOpen: hold,
		})
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, p := ivrDo(t, a, http.MethodGet, "/verify/"+d.ID, nil); p.Status == statusProcessing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the silent session did not start on b")
		}
	}
	// A session b created, waiting for its stream.
	waitingCall := twiliotest.SID("CA")
	_, w := ivrDo(t, b, http.MethodPost, "/verify?caller="+caller+"&call="+waitingCall, nil)
	if w.Status != statusWaiting {
		t.Fatalf("waiting session on b: %+v", w)
	}

	procs[1].cmd.Process.Signal(syscall.SIGKILL)
	<-procs[1].done
	killed := time.Now()
	got := ivrPoll(t, a, "/verify/"+d.ID)
	t.Logf("session of the killed node: %s after %v", got.Event, time.Since(killed))
	if got.Status != statusError || eventType(got) != string(daspeak.EventErrorAudio) || !strings.Contains(string(got.Event), errNodeStopped.Error()) {
		t.Fatalf("session of the killed node: %+v %s", got, got.Event)
	}
	if el := time.Since(killed); el > 10*time.Second {
		t.Errorf("ended %v after the kill", el)
	}
	if _, err := playTo(t, a, waitingCall, map[string]string{paramSession: w.ID}, fixtures.Utterances("rms")[1]); errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	if got := ivrPoll(t, a, "/verify/"+w.ID); got.Status != statusSuccess || got.CallID != waitingCall {
		t.Fatalf("session created by the killed node, streamed to the survivor: %+v %s", got, got.Event)
	}
}
