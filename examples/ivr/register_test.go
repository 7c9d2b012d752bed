package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/daspeak/agent"
	"github.com/voicegate/voicegate/internal/fixtures"
)

// slowStore widens the window between a registration's check and its
// store, as a remote database does.
type slowStore struct {
	credstore.Store
	delay time.Duration
}

func (s slowStore) Get(ctx context.Context, id string) (credstore.Record, error) {
	time.Sleep(s.delay)
	return s.Store.Get(ctx, id)
}

func (s slowStore) Put(ctx context.Context, id string, rec credstore.Record) error {
	time.Sleep(s.delay)
	return s.Store.Put(ctx, id, rec)
}

// TestRegisterOnceAcrossNodes: the same new caller registers on three
// nodes at once (three servers, each on its own NATS connection, sharing
// one credential store), several rounds, and a deletion races with the
// registrations in each. Exactly one registration may succeed per round;
// the credential kept is the winner's.
func TestRegisterOnceAcrossNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	buses := connectNodes(t, ctx, "ivr_reg", "n1", "n2", "n3")
	shared := credstore.NewMemory()
	creds := &agent.CredentialStore{Store: slowStore{Store: shared, delay: 20 * time.Millisecond}}
	cfg := &config{SessionTTL: time.Minute}
	var nodes []*server
	for _, b := range buses {
		nodes = append(nodes, &server{cfg: cfg, log: quietLog(), ops: b, creds: creds, waiting: map[string]time.Time{}})
	}
	const caller = "+34600000777"
	for round := range 5 {
		var wg sync.WaitGroup
		errs := make([]error, len(nodes))
		for i, s := range nodes {
			wg.Go(func() {
				errs[i] = (&registerOnce{s: s}).StoreCredential(ctx, caller, fmt.Sprintf("cred-%d-%d", round, i), "model", nil)
			})
		}
		wg.Wait()
		var won []int
		for i, err := range errs {
			switch {
			case err == nil:
				won = append(won, i)
			case !errors.Is(err, errAlreadyRegistered):
				t.Fatalf("round %d, node %d: %v", round, i, err)
			}
		}
		if len(won) != 1 {
			t.Fatalf("round %d: %d nodes registered the caller (%v), want exactly 1", round, len(won), won)
		}
		rec, err := shared.Get(ctx, caller)
		if want := fmt.Sprintf("cred-%d-%d", round, won[0]); err != nil || rec.Credential != want {
			t.Fatalf("round %d: stored %q (%v), want the winner's %q", round, rec.Credential, err, want)
		}
		// Delete on another node, before the next round.
		ctx2, unlock, err := nodes[(won[0]+1)%len(nodes)].lockCaller(ctx, caller)
		if err != nil {
			t.Fatal(err)
		}
		err = creds.Delete(ctx2, caller)
		unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// ctxStore holds a Put until release is closed and then, like a store
// that honours its context, refuses it if the context ended meanwhile.
type ctxStore struct {
	credstore.Store
	entered, release chan struct{}
}

func (s ctxStore) Put(ctx context.Context, id string, rec credstore.Record) error {
	close(s.entered)
	<-s.release
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Store.Put(ctx, id, rec)
}

// TestRegisterStoreNotCut: once the caller's lock is taken, the store runs
// to its end although the registration's context is cancelled meanwhile
// (a drain, a caller gone): it is not cut part-way.
func TestRegisterStoreNotCut(t *testing.T) {
	mem := credstore.NewMemory()
	st := ctxStore{Store: mem, entered: make(chan struct{}), release: make(chan struct{})}
	s := &server{cfg: &config{SessionTTL: time.Minute}, log: quietLog(), ops: nil, creds: &agent.CredentialStore{Store: st}, waiting: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- (&registerOnce{s: s}).StoreCredential(ctx, "+34600000778", "cred", "model", nil) }()
	<-st.entered
	cancel()
	close(st.release)
	if err := <-errc; err != nil {
		t.Fatalf("StoreCredential: %v", err)
	}
	if rec, err := mem.Get(context.Background(), "+34600000778"); err != nil || rec.Credential != "cred" {
		t.Fatalf("stored %+v, %v", rec, err)
	}
}

// racingStore is a credstore.Store in which another registration of the
// caller lands just before the second Get (the first is the request's
// check, the second registerOnce's): the registration lost the race.
type racingStore struct {
	credstore.Store
	mu   sync.Mutex
	gets int
}

func (r *racingStore) Get(ctx context.Context, id string) (credstore.Record, error) {
	r.mu.Lock()
	r.gets++
	if r.gets == 2 {
		r.Store.Put(ctx, id, credstore.Record{Credential: "cred-of-the-other-registration"})
	}
	r.mu.Unlock()
	return r.Store.Get(ctx, id)
}

// TestRegisterLostRace: an upload whose registration another one beat to
// the store is answered as a register of a registered caller is (409,
// already registered), not as a storage failure, after one store attempt
// (the refusal is permanent, never retried); the other registration's
// credential stays. The lost race is an expected outcome: logged at WARN,
// never ERROR, and counted with its own metrics reason
// already_registered, not store.
func TestRegisterLostRace(t *testing.T) {
	e := newEnv(t)
	logs := &syncBuffer{}
	e.srv.log = slog.New(slog.NewJSONHandler(logs, nil))
	rs := &racingStore{Store: e.srv.creds.Store}
	e.srv.creds.Store = rs
	const caller = "+34600000035"
	start := time.Now()
	req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/register?caller="+url.QueryEscape(caller), bytes.NewReader(wav(t, fixtures.Utterances("rms")[0])))
	req.Header.Set("X-API-Key", apiKey)
	req.Header.Set("Content-Type", "audio/wav")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if resp.StatusCode != http.StatusConflict || string(body) != `{"error":"`+errAlreadyRegistered.Error()+`"}`+"\n" {
		t.Fatalf("register that lost the race: %d %s, want 409 as a register of a registered caller gets", resp.StatusCode, body)
	}
	rs.mu.Lock()
	gets := rs.gets
	rs.mu.Unlock()
	if gets != 2 {
		t.Fatalf("the store was read %d times (took %v), want 2: the check and one store attempt", gets, took)
	}
	if rec, _ := e.store.Get(context.Background(), caller); rec.Credential != "cred-of-the-other-registration" {
		t.Fatalf("the other registration's credential was replaced: %q", rec.Credential)
	}
	out := logs.String()
	if strings.Contains(out, `"level":"ERROR"`) || !strings.Contains(out, `"level":"WARN","msg":"another registration of the caller stored first; this one was not stored"`) {
		t.Errorf("logs of a lost registration race:\n%s", out)
	}
	_, metrics := e.get("/metrics")
	if want := `voicegate_agent_operations_total{kind="register",reason="already_registered",type="error-store"} 1`; !strings.Contains(metrics, want) || strings.Contains(metrics, `reason="store"`) {
		t.Errorf("/metrics lacks %q:\n%s", want, metrics)
	}
}
