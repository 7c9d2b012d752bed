package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
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

	"github.com/voicegate/voicegate/audiohook/audiohooktest"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus/natsbustest"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// proc is one audiohook-server process.
type proc struct {
	name string
	base string
	cmd  *exec.Cmd
	logs *lockedBuf
	done chan struct{}
}

// watchResult is what a watcher saw of one operation.
type watchResult struct {
	types    []string
	term     map[string]any
	resumed  int
	termTime time.Time
	err      error
}

// watch follows an operation's events from node first, moving to the
// next node with Last-Event-ID when a stream ends early, and checks that
// ids are 1, 2, 3… with none missed or repeated.
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

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestMultiNodeGenesys runs the Genesys agent mode on one NATS server and
// three audiohook-server processes: each conversation's AudioHook session
// (audiohooktest.Dial) is held by node A, the agent's click lands on node B,
// which forwards it to A, and the events are watched from node C; every
// operation's events arrive exactly once, in order, and the result reaches
// Genesys as an AudioHook event. Then node 1 is killed with SIGKILL while
// agents' operations wait for speech: those it held end with a terminal
// event at their watchers within 10 s, and the credentials registered
// before are readable from the other nodes (each caller calls again, on a
// conversation held by one survivor, and the agent asks the other).
func TestMultiNodeGenesys(t *testing.T) {
	nats := natsbustest.Start(t)
	calls := envInt("VG_MULTINODE_CALLS", 300)
	live := envInt("VG_MULTINODE_LIVE", 45)
	if testing.Short() {
		calls, live = 60, 15
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "audiohook-server")
	if out, err := exec.Command(goTool(t), "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	g := fakeUsersMe(t)
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i*5 + 1)
	}
	eventKey := base64.StdEncoding.EncodeToString(b)
	var nodes []*proc
	for i := range 3 {
		p := &proc{name: fmt.Sprintf("g%d", i), logs: &lockedBuf{}, done: make(chan struct{})}
		port := freePort(t)
		p.base = fmt.Sprintf("http://127.0.0.1:%d", port)
		p.cmd = exec.Command(bin, "-listen", fmt.Sprintf("127.0.0.1:%d", port), "-agent", "-genesys-region", "mypurecloud.ie",
			"-genesys-client-id", "client-1", "-genesys-api-url", g.URL, "-offline", "-store", "sqlite:"+filepath.Join(dir, "credentials.db"),
			"-nats", nats.URL, "-node", p.name, "-buffer", "30s", "-audio-total-duration", "2s", "-drain-timeout", "3s")
		p.cmd.Env = append(os.Environ(), "STATIC_API_KEY_MAP={\""+apiKey+"\":\""+secretB64+"\"}", "EVENT_KEY="+eventKey, "NATS_URL=", "CREDSTORE_KEY=")
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
		bb, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, p.base+"/agent"+path, bytes.NewReader(bb))
		req.Header.Set("Authorization", "Bearer "+genesysToken)
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
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	type conv struct {
		id, caller      string
		hold, click, at int // nodes: AudioHook session, agent's click, watcher
		client          *audiohooktest.Client
		op              map[string]any
		res             watchResult
	}
	newConv := func(k int) *conv {
		c := &conv{id: audiohooktest.NewUUID(), caller: fmt.Sprintf("+3461%07d", k), hold: k % 3}
		c.click, c.at = (c.hold+1)%3, (c.hold+2)%3
		return c
	}
	dial := func(c *conv) error {
		var err error
		c.client, err = audiohooktest.Dial(ctx, "ws"+strings.TrimPrefix(nodes[c.hold].base, "http")+wsPath, &audiohooktest.DialOptions{
			APIKey: apiKey, Secret: secret, ConversationID: c.id, PingInterval: -1,
			Participant: &wire.Participant{ID: audiohooktest.NewUUID(), ANI: "tel:" + c.caller, ANIName: "Caller", DNIS: "+18005550100"},
		})
		return err
	}
	// click registers from node B once node A's session is known.
	click := func(c *conv) error {
		for deadline := time.Now().Add(10 * time.Second); ; {
			code, op, err := post(nodes[c.click], "/register", map[string]any{"call_id": c.id})
			if err == nil && code == http.StatusAccepted {
				if op["caller_id"] != c.caller {
					return fmt.Errorf("register %s: caller %v", c.id, op["caller_id"])
				}
				c.op = op
				return nil
			}
			if time.Now().After(deadline) || (err == nil && code != http.StatusConflict) {
				return fmt.Errorf("register %s on %s: %d %v %v", c.id, nodes[c.click].name, code, op, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Phase 1.
	var first []*conv
	for k := range calls {
		first = append(first, newConv(k))
	}
	began := time.Now()
	sem := make(chan struct{}, 24)
	var wg sync.WaitGroup
	for _, c := range first {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := dial(c); err != nil {
				c.res.err = err
				return
			}
			defer c.client.Close(context.Background(), wire.CloseEnd)
			if err := click(c); err != nil {
				c.res.err = err
				return
			}
			wav, err := audiohooktest.WAVSource(testdata("voices/slt_1.wav"))
			if err != nil {
				c.res.err = err
				return
			}
			streamed := make(chan error, 1)
			go func() { streamed <- c.client.Stream(ctx, wav, &audiohooktest.StreamOptions{Fast: true}) }()
			c.res = watch(ctx, hc, nodes, c.at, c.op)
			if c.res.err == nil {
				msg, err := c.client.Next(ctx)
				if err != nil || msg.Type != wire.TypeEvent || !bytes.Contains(msg.Parameters, []byte(`"voicegate.result"`)) {
					c.res.err = fmt.Errorf("%s: Genesys got %+v %v", c.id, msg, err)
				}
			}
			if err := <-streamed; err != nil && c.res.err == nil {
				c.res.err = fmt.Errorf("%s: stream: %w", c.id, err)
			}
		}()
	}
	wg.Wait()
	t.Logf("%d conversations registered over 3 nodes in %v", calls, time.Since(began))
	for _, c := range first {
		if c.res.err != nil {
			t.Fatal(c.res.err)
		}
		if c.res.types[0] != "started" || c.res.term["type"] != "result-success" {
			t.Fatalf("%s: events %v, terminal %v", c.id, c.res.types, c.res.term)
		}
	}

	t.Logf("phase 1 done after %v", time.Since(began))
	// Phase 2: agents' operations wait for speech on live sessions; node 1
	// dies.
	var second []*conv
	for k := range live {
		c := newConv(calls + k)
		if err := dial(c); err != nil {
			t.Fatal(err)
		}
		if err := click(c); err != nil {
			t.Fatal(err)
		}
		second = append(second, c)
	}
	for _, c := range second {
		wg.Add(1)
		go func() { defer wg.Done(); c.res = watch(ctx, hc, nodes, c.at, c.op) }()
	}
	time.Sleep(500 * time.Millisecond)
	t.Logf("phase 2 running after %v", time.Since(began))
	const victim = 1
	killed := time.Now()
	nodes[victim].cmd.Process.Signal(syscall.SIGKILL)
	<-nodes[victim].done
	alive := []*proc{nodes[0], nodes[2]}
	time.Sleep(200 * time.Millisecond)
	for _, c := range second {
		if c.hold != victim {
			if code, m, err := post(alive[c.hold%2], "/stop", map[string]any{"operation_id": c.op["operation_id"]}); err != nil || code != 200 {
				t.Errorf("stop %s: %d %v %v", c.id, code, m, err)
			}
		}
	}
	wg.Wait()
	var slowest time.Duration
	for _, c := range second {
		if c.client != nil {
			c.client.CloseNow()
		}
		if c.res.err != nil {
			t.Fatal(c.res.err)
		}
		if c.res.term["type"] != "error-cancelled" {
			t.Fatalf("%s ended with %v", c.id, c.res.term)
		}
		if c.hold == victim {
			slowest = max(slowest, c.res.termTime.Sub(killed))
			if !strings.Contains(c.res.term["error"].(string), "node running the operation stopped") {
				t.Errorf("%s: %v", c.id, c.res.term)
			}
		}
		if c.at == victim && c.res.resumed == 0 {
			t.Errorf("%s: watched on the dead node without resuming elsewhere", c.id)
		}
	}
	if slowest > 10*time.Second {
		t.Errorf("the last operation of the dead node ended %v after the kill", slowest)
	}
	t.Logf("operations held by the killed node ended; the last %v after the kill", slowest)
	// Every credential registered before the kill is readable from the
	// surviving nodes. Status only tells a call's own caller's state, so
	// each caller calls again: a new conversation held by one survivor,
	// asked about through the other.
	for i, c := range first {
		again := &conv{id: audiohooktest.NewUUID(), caller: c.caller, hold: []int{0, 2}[i%2]}
		if err := dial(again); err != nil {
			t.Fatal(err)
		}
		p := nodes[2-again.hold]
		for deadline := time.Now().Add(10 * time.Second); ; {
			code, m, err := post(p, "/status", map[string]any{"call_id": again.id, "caller_id": c.caller})
			if err == nil && code == 200 && m["call_in_progress"] == true {
				if m["registered"] != true {
					t.Fatalf("status of %s on %s: %v", c.caller, p.name, m)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("status of %s on %s: %d %v %v", c.caller, p.name, code, m, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		again.client.Close(ctx, wire.CloseEnd)
	}
	for _, p := range alive {
		resp, err := hc.Get(p.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(body, []byte("voicegate_agent_sessions_open ")) {
			t.Fatalf("metrics of %s:\n%s", p.name, tail(string(body), 2000))
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("node %s did not exit after SIGTERM", p.name)
		}
		if !p.cmd.ProcessState.Success() {
			t.Errorf("node %s exit: %v", p.name, p.cmd.ProcessState)
		}
	}
}
