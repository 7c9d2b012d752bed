package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak/agent/natsbus/natsbustest"
	"github.com/voicegate/voicegate/twilio"
	"github.com/voicegate/voicegate/twilio/twiliotest"
)

// The multi-node test's size: VG_MULTINODE_CALLS calls (default 300; 60
// with -short), then VG_MULTINODE_LIVE live calls when a node is killed
// (default 45).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// publicURL is the load balancer's address all nodes are configured
// with: Twilio signs the Media Streams URL under it, and the test's
// "load balancer" (the fake Twilio's dialer) picks the node.
const publicURL = "http://voicegate-lb.invalid"

// proc is one twilio-flex process.
type proc struct {
	name string
	base string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// waitReady waits until p answers /readyz (nodes start one after the
// other: the first one creates the shared SQLite database).
func waitReady(t *testing.T, p *proc) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(p.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("node %s exited: %v\n%s", p.name, p.cmd.ProcessState, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s not ready: %v\n%s", p.name, err, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goTool returns the go command that builds the server binary.
func goTool(t *testing.T) string {
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH: cannot build the server processes")
	}
	return p
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// silenceWAV is a WAV of d of PCM16 8 kHz silence.
func silenceWAV(d time.Duration) []byte {
	n := int(d.Seconds() * 8000)
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+2*n))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(8000), uint32(16000), uint16(2), uint16(16)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, uint32(2*n))
	b.Write(make([]byte, 2*n))
	return b.Bytes()
}

// watchResult is what a watcher saw of one operation.
type watchResult struct {
	types    []string
	term     map[string]any
	resumed  int       // reconnections with Last-Event-ID
	termTime time.Time // when the terminal event arrived
	err      error
}

// watch follows an operation's events from node first, moving to the
// next node with Last-Event-ID when a stream ends early (its node died),
// and checks that ids are 1, 2, 3… with none missed or repeated and that
// every event is the operation's.
func watch(ctx context.Context, hc *http.Client, nodes []*proc, first int, op map[string]any) watchResult {
	var res watchResult
	last := 0
	for i := first; ; i = (i + 1) % len(nodes) {
		if ctx.Err() != nil {
			res.err = fmt.Errorf("%s: no terminal event (last id %d, %v)", op["operation_id"], last, res.types)
			return res
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, nodes[i].base+op["events_url"].(string), nil)
		if last > 0 {
			req.Header.Set("Last-Event-ID", strconv.Itoa(last))
			res.resumed++
		}
		resp, err := hc.Do(req)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			res.err = fmt.Errorf("%s on %s: status %d after id %d", op["operation_id"], nodes[i].name, resp.StatusCode, last)
			return res
		}
		sc := bufio.NewScanner(resp.Body)
		id := 0
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id, _ = strconv.Atoi(line[4:])
			case strings.HasPrefix(line, "data: "):
				var m map[string]any
				if err := json.Unmarshal([]byte(line[6:]), &m); err != nil {
					res.err = err
					resp.Body.Close()
					return res
				}
				if id != last+1 || m["seq"] != float64(id) || m["operation_id"] != op["operation_id"] || m["call_id"] != op["call_id"] {
					res.err = fmt.Errorf("%s: event id %d seq %v op %v after %d (%v)", op["operation_id"], id, m["seq"], m["operation_id"], last, res.types)
					resp.Body.Close()
					return res
				}
				last = id
				res.types = append(res.types, m["type"].(string))
				if m["reason"] != nil {
					res.term, res.termTime = m, time.Now()
					resp.Body.Close()
					return res
				}
			}
		}
		resp.Body.Close()
	}
}

// TestMultiNode runs one NATS server and three twilio-flex processes on
// loopback (the multi-node must-show): calls spread over the nodes, each
// operation started through one node, its Media Stream sent to a second,
// its events watched from a third; every operation's events reach the
// watcher exactly once, in order. Then one node is killed with SIGKILL
// while calls run: every operation it held ends with a terminal event at
// its watcher within 10 s, watchers on the dead node resume elsewhere with
// Last-Event-ID, and every credential registered before the kill is
// readable from the other nodes. Finally the survivors drain on SIGTERM.
func TestMultiNode(t *testing.T) {
	nats := natsbustest.Start(t)
	calls := envInt("VG_MULTINODE_CALLS", 300)
	live := envInt("VG_MULTINODE_LIVE", 45)
	if testing.Short() {
		calls, live = 60, 15
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "twilio-flex")
	build := exec.Command(goTool(t), "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	voice, err := os.ReadFile(filepath.Join(voicesDir(t), "slt_1.wav"))
	if err != nil {
		t.Fatal(err)
	}
	// A silent caller's stream sends silence in real time, as Twilio does
	// on a live call, for longer than the test runs: a stream that went
	// quiet would end by the idle timeout (15 s) when a loaded machine
	// makes phase 2's set-up that slow.
	silence := silenceWAV(3 * time.Minute)

	// The fake Twilio: REST, IAM, and the load balancer that sends each
	// stream to the node chosen for its call.
	var mu sync.Mutex
	target := map[string]string{} // call SID → node base URL
	silent := map[string]bool{}
	hold := make(chan struct{})
	var fake *twiliotest.Server
	playCtx, stopPlay := context.WithCancel(context.Background())
	fake = twiliotest.NewServer(&twiliotest.ServerOptions{OnStreamStart: func(cs twiliotest.CreatedStream) {
		mu.Lock()
		base, quiet := target[cs.CallSID], silent[cs.CallSID]
		mu.Unlock()
		o := &twiliotest.Options{
			AuthToken: fake.AuthToken(), PublicURL: cs.URL, AccountSID: cs.AccountSID, CallSID: cs.CallSID, StreamSID: cs.SID,
			CustomParameters: cs.Parameters, Pace: twiliotest.AsFastAsPossible,
		}
		wav := voice
		if quiet {
			wav, o.Pace, o.HoldOpen = silence, twiliotest.RealTime, hold
		}
		ctx, cancel := context.WithTimeout(playCtx, 4*time.Minute)
		defer cancel()
		twiliotest.PlayWAV(ctx, "ws"+strings.TrimPrefix(base, "http")+mediaPath, wav, o)
	}})
	defer fake.Close()
	defer close(hold)
	defer stopPlay() // first: the silent streams play for minutes
	const flexToken = "multinode-flex-token"
	const workspace, worker = "WS00000000000000000000000000000001", "WK00000000000000000000000000000001"
	fake.AddFlexToken(flexToken, twilio.FlexIdentity{Identity: "agent", WorkerSID: worker, Expiration: time.Now().Add(time.Hour)})
	fake.AddWorkspace(workspace)

	key := func() string {
		b := make([]byte, 32)
		for i := range b {
			b[i] = byte(i*7 + 3)
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	store := "sqlite:" + filepath.Join(dir, "credentials.db")
	var nodes []*proc
	for i := range 3 {
		p := &proc{name: fmt.Sprintf("n%d", i), logs: &syncBuffer{}, done: make(chan struct{})}
		port := freePort(t)
		p.base = fmt.Sprintf("http://127.0.0.1:%d", port)
		p.cmd = exec.Command(bin, "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-public-url", publicURL,
			"-offline", "-store", store, "-nats", nats.URL, "-node", p.name,
			"-twilio-base-url", fake.URL, "-workspace", workspace, "-audio-total-duration", "2s", "-drain-timeout", "3s", "-queue-frames", "600")
		p.cmd.Env = append(os.Environ(), "TWILIO_ACCOUNT_SID="+fake.AccountSID(), "TWILIO_AUTH_TOKEN="+fake.AuthToken(),
			"EVENT_KEY="+key(), "BINDING_KEY="+key(), "NATS_URL=", "CREDSTORE_KEY=")
		p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() {
			p.cmd.Process.Kill()
			<-p.done
			if t.Failed() {
				t.Logf("node %s log (tail):\n%s", p.name, tail(p.logs.String(), 4000))
			}
		})
		nodes = append(nodes, p)
		waitReady(t, p)
	}
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()
	post := func(p *proc, path string, body any) (int, map[string]any, error) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, p.base+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+flexToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, nil
	}
	type call struct {
		sid, caller     string
		start, to, from int // nodes: started through, stream to, watched from
		op              map[string]any
		res             watchResult
	}
	newCall := func(k int, quiet bool) *call {
		c := &call{sid: fmt.Sprintf("CA%032x", k+1), caller: fmt.Sprintf("+3460%07d", k), start: k % 3}
		c.to, c.from = (c.start+1)%3, (c.start+2)%3
		// Every node binds the caller to the call through the Calls API
		// (flex.Source.Call): the fake Twilio knows each call.
		fake.AddCall(twilio.CallResource{SID: c.sid, From: c.caller, To: "+15005550006", Direction: twilio.DirectionInbound, Status: twilio.CallInProgress})
		// Every node keeps the agent to the calls of their accepted
		// tasks (flex.Assignment): the call is the agent's task.
		task := fmt.Sprintf("WT%032x", k+1)
		fake.AddTask(workspace, task, `{"call_sid":"`+c.sid+`"}`, "")
		fake.SetReservation(workspace, worker, task, twilio.ReservationAccepted)
		mu.Lock()
		target[c.sid], silent[c.sid] = nodes[c.to].base, quiet
		mu.Unlock()
		return c
	}

	// Phase 1: calls registered across the nodes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	run := func(cs []*call, conc int) {
		sem := make(chan struct{}, conc)
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				code, op, err := post(nodes[c.start], "/agent/register", map[string]any{"call_id": c.sid, "caller_id": c.caller})
				if err != nil || code != http.StatusAccepted {
					c.res.err = fmt.Errorf("register %s on %s: %d %v %v", c.sid, nodes[c.start].name, code, op, err)
					return
				}
				c.op = op
				c.res = watch(ctx, hc, nodes, c.from, op)
			}()
		}
		wg.Wait()
	}
	var first []*call
	for k := range calls {
		first = append(first, newCall(k, false))
	}
	began := time.Now()
	run(first, 24)
	t.Logf("%d calls registered over 3 nodes in %v", calls, time.Since(began))
	for _, c := range first {
		if c.res.err != nil {
			t.Fatal(c.res.err)
		}
		if c.res.types[0] != "started" || c.res.term["type"] != "result-success" {
			t.Fatalf("%s: events %v, terminal %v", c.sid, c.res.types, c.res.term)
		}
	}

	// Every node binds a request to its call: another caller's number, a
	// call Twilio does not know (though a task names it), or a call that
	// is not the agent's task, is refused whichever node gets it.
	for i, p := range nodes {
		if code, m, err := post(p, "/agent/verify", map[string]any{"call_id": first[i].sid, "caller_id": first[i+1].caller}); err != nil || code != http.StatusBadRequest || m["code"] != "bad_caller_id" {
			t.Fatalf("verify of another caller on %s: %d %v %v", p.name, code, m, err)
		}
		unknown := fmt.Sprintf("CA%032x", 1<<40+i)
		task := fmt.Sprintf("WT%032x", 1<<40+i)
		fake.AddTask(workspace, task, `{"call_sid":"`+unknown+`"}`, "")
		fake.SetReservation(workspace, worker, task, twilio.ReservationAccepted)
		if code, m, err := post(p, "/agent/verify", map[string]any{"call_id": unknown, "caller_id": first[i].caller}); err != nil || code != http.StatusConflict || m["code"] != "no_call" {
			t.Fatalf("verify on an unknown call on %s: %d %v %v", p.name, code, m, err)
		}
		if code, m, err := post(p, "/agent/verify", map[string]any{"call_id": fmt.Sprintf("CA%032x", 1<<41+i), "caller_id": first[i].caller}); err != nil || code != http.StatusForbidden || m["code"] != "forbidden" {
			t.Fatalf("verify on a call that is not the agent's on %s: %d %v %v", p.name, code, m, err)
		}
	}

	t.Logf("phase 1 done after %v", time.Since(began))
	// Phase 2: live calls (silent callers, so their operations run), then
	// SIGKILL one node.
	var second []*call
	for k := range live {
		second = append(second, newCall(calls+k, true))
	}
	for _, c := range second {
		code, op, err := post(nodes[c.start], "/agent/register", map[string]any{"call_id": c.sid, "caller_id": c.caller})
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("live register %s: %d %v %v", c.sid, code, op, err)
		}
		c.op = op
	}
	var wg sync.WaitGroup
	for _, c := range second {
		wg.Add(1)
		go func() { defer wg.Done(); c.res = watch(ctx, hc, nodes, c.from, c.op) }()
	}
	time.Sleep(500 * time.Millisecond)
	t.Logf("phase 2 running after %v", time.Since(began))
	const victim = 1
	killed := time.Now()
	nodes[victim].cmd.Process.Signal(syscall.SIGKILL)
	<-nodes[victim].done
	alive := []*proc{nodes[0], nodes[2]}
	// The operations the victim held (their streams reached it) end by
	// themselves; the others are stopped through a surviving node.
	time.Sleep(200 * time.Millisecond)
	for _, c := range second {
		if c.to != victim {
			if code, m, err := post(alive[c.start%2], "/agent/stop", map[string]any{"operation_id": c.op["operation_id"]}); err != nil || code != 200 {
				t.Errorf("stop %s: %d %v %v", c.sid, code, m, err)
			}
		}
	}
	wg.Wait()
	held := 0
	for _, c := range second {
		if c.res.err != nil {
			t.Fatal(c.res.err)
		}
		if c.res.term["type"] != "error-cancelled" {
			t.Fatalf("%s ended with %v", c.sid, c.res.term)
		}
		if c.to == victim {
			held++
			if el := c.res.termTime.Sub(killed); el > 10*time.Second {
				t.Errorf("%s: terminal event %v after the kill", c.sid, el)
			}
			if !strings.Contains(c.res.term["error"].(string), "node running the operation stopped") {
				t.Errorf("%s: %v", c.sid, c.res.term)
			}
		}
		if c.from == victim && c.res.resumed == 0 {
			t.Errorf("%s: watched on the dead node without resuming elsewhere", c.sid)
		}
	}
	var slowest time.Duration
	for _, c := range second {
		if c.to == victim {
			slowest = max(slowest, c.res.termTime.Sub(killed))
		}
	}
	t.Logf("%d live operations held by the killed node ended; the last %v after the kill", held, slowest)

	// Every credential registered before the kill is readable from the
	// surviving nodes.
	for i, c := range first {
		p := alive[i%2]
		code, m, err := post(p, "/agent/status", map[string]any{"call_id": c.sid, "caller_id": c.caller})
		if err != nil || code != 200 || m["registered"] != true {
			t.Fatalf("status of %s on %s: %d %v %v", c.caller, p.name, code, m, err)
		}
	}

	// The survivors scrape as Prometheus text and drain on SIGTERM.
	for _, p := range alive {
		resp, err := hc.Get(p.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(body, []byte("voicegate_agent_operations_total{")) || !bytes.Contains(body, []byte("voicegate_agent_bus_lag_seconds_count")) {
			t.Fatalf("metrics of %s:\n%s", p.name, tail(string(body), 2000))
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("node %s did not exit after SIGTERM", p.name)
		}
		if err := p.cmd.ProcessState; err == nil || !err.Success() {
			t.Errorf("node %s exit: %v", p.name, p.cmd.ProcessState)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
