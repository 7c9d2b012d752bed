package agent

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak"
)

// recObserver records what a server reports.
type recObserver struct {
	mu      sync.Mutex
	started map[daspeak.Operation]int
	ended   map[daspeak.EventType]int
	audio   int
	streams int
	read    uint64
	engine  int
	store   map[string]int
	lags    int
}

func newRecObserver() *recObserver {
	return &recObserver{started: map[daspeak.Operation]int{}, ended: map[daspeak.EventType]int{}, store: map[string]int{}}
}

func (o *recObserver) lock() func() { o.mu.Lock(); return o.mu.Unlock }
func (o *recObserver) OperationStarted(k daspeak.Operation) {
	defer o.lock()()
	o.started[k]++
}
func (o *recObserver) OperationEnded(k daspeak.Operation, t daspeak.EventType, r Reason) {
	defer o.lock()()
	o.ended[t]++
}
func (o *recObserver) AudioOpened()  { defer o.lock()(); o.audio++ }
func (o *recObserver) AudioClosed()  { defer o.lock()(); o.audio-- }
func (o *recObserver) StreamOpened() { defer o.lock()(); o.streams++ }
func (o *recObserver) StreamClosed() { defer o.lock()(); o.streams-- }
func (o *recObserver) Frames(read, dropped, late uint64) {
	defer o.lock()()
	o.read += read
}
func (o *recObserver) EngineCall(d time.Duration, err error) { defer o.lock()(); o.engine++ }
func (o *recObserver) StoreCall(op string, d time.Duration, err error) {
	defer o.lock()()
	o.store[op]++
}
func (o *recObserver) EventSent(lag time.Duration) { defer o.lock()(); o.lags++ }

// TestObserver checks what a server reports to its Observer over a
// register and a verify, and that the timed engine keeps the engine's
// model list (a register with no ModelHash asks the engine for it).
func TestObserver(t *testing.T) {
	obs := newRecObserver()
	e := newEnv(t, func(o *Options, _ *fakeSource) { o.Observer = obs })
	e.src.set(callA, fakeCall{clips: []string{"voices/slt_1.wav", "voices/slt_2.wav"}})
	op := e.start("/register", callA, callerA, nil)
	code, msgs := e.events(op["events_url"].(string), "")
	if code != http.StatusOK {
		t.Fatal(code)
	}
	if last := checkStream(t, msgs, op); last.Event != "result-success" {
		t.Fatalf("register: %s", last.Raw)
	}
	// Audio is closed after the terminal event is published.
	for range 200 {
		obs.mu.Lock()
		a := obs.audio
		obs.mu.Unlock()
		if a == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	defer obs.lock()()
	if obs.started[daspeak.OperationRegister] != 1 || obs.ended[daspeak.EventResultSuccess] != 1 || obs.audio != 0 ||
		obs.streams != 0 || obs.read == 0 || obs.engine != 1 || obs.store["store"] != 1 || obs.store["get"] == 0 || obs.lags != len(msgs) {
		t.Fatalf("observed %+v (%d events)", obs, len(msgs))
	}
}
