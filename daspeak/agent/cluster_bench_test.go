package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus"
	"github.com/voicegate/voicegate/daspeak/agent/natsbus/natsbustest"
	"github.com/voicegate/voicegate/daspeak/agent/oplog"
)

// lagObserver keeps the bus lags a server reports.
type lagObserver struct {
	nopObserver
	mu   sync.Mutex
	lags []time.Duration
}

func (o *lagObserver) EventSent(lag time.Duration) {
	o.mu.Lock()
	o.lags = append(o.lags, lag)
	o.mu.Unlock()
}

// BenchmarkNATSEventPath measures the many-node event path: node a
// appends the events of 1,000 concurrent operations to NATS JetStream
// (b.N events in all, at least two per operation: the last terminal);
// node b's server streams each operation to its own SSE client. It
// reports events/s (appended and written to their streams) and the p50
// and p99 latency from the append on node a to the SSE write on node b.
// "saturated": every operation appends back to back; "paced": each
// appends one event every 250 ms (4,000 events/s offered), as sessions
// report progress.
//
//	go test -run '^$' -bench NATSEventPath -benchtime 20000x ./daspeak/agent/
func BenchmarkNATSEventPath(b *testing.B) {
	b.Run("saturated", func(b *testing.B) { benchEventPath(b, 0) })
	b.Run("paced", func(b *testing.B) { benchEventPath(b, 250*time.Millisecond) })
}

func benchEventPath(b *testing.B, every time.Duration) {
	const ops = 1000
	srv := natsbustest.Start(b)
	connect := func(node string) *natsbus.Bus {
		bus, err := natsbus.Connect(context.Background(), srv.URL, &natsbus.Options{Node: node})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { bus.Close() })
		return bus
	}
	writer, reader := connect("a"), connect("b")
	obs := &lagObserver{}
	e := newEnv(b, func(o *Options, _ *fakeSource) {
		o.Log, o.EventKey, o.Observer, o.KeepAlive = reader, clusterKey, obs, time.Minute
	})
	per := max(2, b.N/ops)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: ops, MaxConnsPerHost: 0}}
	defer hc.CloseIdleConnections()
	ctx := context.Background()
	ids := make([]string, ops)
	for i := range ids {
		ids[i] = fmt.Sprintf("op_bench%06d%x", i, time.Now().UnixNano())
		if err := writer.Create(ctx, oplog.Op{ID: ids[i], Kind: "verify", CallID: fmt.Sprintf("CA%032d", i), CallerID: callerA}); err != nil {
			b.Fatal(err)
		}
	}
	// Every stream open before the first event.
	var ready, done sync.WaitGroup
	errc := make(chan error, ops)
	for i, id := range ids {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			u := e.http.URL + "/agent/operations/" + id + "/events?token=" + url.QueryEscape(e.srv.eventToken(id, fmt.Sprintf("CA%032d", i)))
			resp, err := hc.Get(u)
			ready.Done()
			if err != nil {
				errc <- err
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			n := 0
			for sc.Scan() {
				if strings.HasPrefix(sc.Text(), "data: ") {
					n++
				}
			}
			if n != per {
				errc <- fmt.Errorf("%s: %d events, want %d", id, n, per)
			}
		}()
	}
	ready.Wait()
	for {
		var open int
		e.srv.streams.mu.Lock()
		open = len(e.srv.streams.cancels)
		e.srv.streams.mu.Unlock()
		if open == ops {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var tick *time.Ticker
			if every > 0 {
				time.Sleep(time.Duration(i) * every / ops) // spread the operations over the interval
				tick = time.NewTicker(every)
				defer tick.Stop()
			}
			for s := 1; s <= per; s++ {
				if tick != nil && s > 1 {
					<-tick.C
				}
				ev := Event{OperationID: id, CallID: fmt.Sprintf("CA%032d", i), CallerID: callerA, Kind: daspeak.OperationVerify, Seq: uint64(s), Type: daspeak.EventProgress,
					Session: daspeak.Event{Type: daspeak.EventProgress, NetSpeech: time.Duration(s) * 100 * time.Millisecond, NetSpeechNeeded: 4 * time.Second}}
				if s == per {
					ev.Type, ev.Reason, ev.Session = EventErrorCancelled, ReasonCancelled, daspeak.Event{}
				}
				data, _ := json.Marshal(ev)
				if err := writer.Append(ctx, id, oplog.Record{Seq: uint64(s), Type: string(ev.Type), Terminal: s == per, Data: data}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	done.Wait()
	el := time.Since(start)
	b.StopTimer()
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	obs.mu.Lock()
	lags := slices.Clone(obs.lags)
	obs.mu.Unlock()
	slices.Sort(lags)
	if len(lags) != ops*per {
		b.Fatalf("%d lags for %d events", len(lags), ops*per)
	}
	b.ReportMetric(float64(ops*per)/el.Seconds(), "events/s")
	b.ReportMetric(float64(lags[len(lags)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lags[len(lags)*99/100].Microseconds())/1000, "p99_ms")
	b.ReportMetric(0, "ns/op")
}
