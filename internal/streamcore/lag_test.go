package streamcore

import (
	"context"
	"testing"
	"time"
)

// TestLagMeter plays deliveries (wall time since the first, media time)
// against the meter.
func TestLagMeter(t *testing.T) {
	ms := time.Millisecond
	type step struct {
		at, ts  time.Duration
		lag     time.Duration
		crossed bool
	}
	tests := []struct {
		name    string
		budget  time.Duration
		steps   []step
		maxLag  time.Duration
		lagged  uint64
		crosses int
	}{
		{"real time", 100 * ms, []step{{0, 0, 0, false}, {20 * ms, 20 * ms, 0, false}, {40 * ms, 40 * ms, 0, false}}, 0, 0, 0},
		{"jitter within budget", 100 * ms, []step{{0, 0, 0, false}, {50 * ms, 20 * ms, 30 * ms, false}, {60 * ms, 40 * ms, 20 * ms, false}}, 30 * ms, 0, 0},
		{"faster than real time", 100 * ms, []step{{0, 0, 0, false}, {1 * ms, 20 * ms, 0, false}, {2 * ms, 40 * ms, 0, false}}, 0, 0, 0},
		{"late first frame sets no lag", 100 * ms, []step{{0, 500 * ms, 0, false}, {20 * ms, 520 * ms, 0, false}}, 0, 0, 0},
		{"best delivery later becomes the origin", 100 * ms, []step{
			{0, 0, 0, false}, {200 * ms, 20 * ms, 180 * ms, true}, {210 * ms, 220 * ms, 0, false}, {300 * ms, 240 * ms, 70 * ms, false},
		}, 180 * ms, 1, 1},
		{"slow consumer: one crossing, many lagged", 100 * ms, []step{
			{0, 0, 0, false}, {60 * ms, 20 * ms, 40 * ms, false}, {120 * ms, 40 * ms, 80 * ms, false},
			{180 * ms, 60 * ms, 120 * ms, true}, {240 * ms, 80 * ms, 160 * ms, false}, {300 * ms, 100 * ms, 200 * ms, false},
		}, 200 * ms, 3, 1},
		{"caught up for a moment, then over again: one episode", 100 * ms, []step{
			{0, 0, 0, false}, {150 * ms, 20 * ms, 130 * ms, true}, {160 * ms, 120 * ms, 40 * ms, false}, {400 * ms, 140 * ms, 260 * ms, false},
		}, 260 * ms, 2, 1},
		{"slow engine: three catch-ups, one episode", 100 * ms, []step{
			{0, 0, 0, false}, {1000 * ms, 20 * ms, 980 * ms, true}, {1010 * ms, 1000 * ms, 10 * ms, false},
			{2000 * ms, 1020 * ms, 980 * ms, false}, {2010 * ms, 2000 * ms, 10 * ms, false},
			{3000 * ms, 2020 * ms, 980 * ms, false}, {3010 * ms, 3000 * ms, 10 * ms, false},
		}, 980 * ms, 3, 1},
		{"kept up for LagRearm, then over again: two episodes", 100 * ms, []step{
			{0, 0, 0, false}, {150 * ms, 20 * ms, 130 * ms, true}, {160 * ms, 120 * ms, 40 * ms, false},
			{160*ms + LagRearm, 120*ms + LagRearm, 40 * ms, false}, {400*ms + LagRearm, 140*ms + LagRearm, 260 * ms, true},
		}, 260 * ms, 2, 2},
		{"swinging around the budget: one crossing", 100 * ms, []step{
			{0, 0, 0, false}, {150 * ms, 20 * ms, 130 * ms, true}, {170 * ms, 100 * ms, 70 * ms, false}, {250 * ms, 120 * ms, 130 * ms, false},
		}, 130 * ms, 2, 1},
		{"no budget: measured, never counted", 0, []step{{0, 0, 0, false}, {500 * ms, 20 * ms, 480 * ms, false}}, 480 * ms, 0, 0},
	}
	base := time.Now()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := lagMeter{budget: tc.budget}
			crosses := 0
			for i, s := range tc.steps {
				crossed := m.observe(base.Add(s.at), s.ts)
				if m.c.Lag != s.lag || crossed != s.crossed {
					t.Fatalf("step %d: lag %v crossed %v, want %v %v", i, m.c.Lag, crossed, s.lag, s.crossed)
				}
				if crossed {
					crosses++
				}
			}
			if m.c.MaxLag != tc.maxLag || m.c.FramesLagged != tc.lagged || crosses != tc.crosses {
				t.Fatalf("max %v lagged %d crosses %d, want %v %d %d", m.c.MaxLag, m.c.FramesLagged, crosses, tc.maxLag, tc.lagged, tc.crosses)
			}
		})
	}
}

// TestQueueLag: Pop measures each frame's delivery against its media
// time, calls OnLag once per crossing, and costs no allocation.
func TestQueueLag(t *testing.T) {
	var calls []time.Duration
	q := NewQueue(QueueOptions{Frames: 100, Bytes: 16000, LagBudget: 50 * time.Millisecond,
		OnLag: func(lag, budget time.Duration) {
			if budget != 50*time.Millisecond {
				t.Errorf("budget %v", budget)
			}
			calls = append(calls, lag)
		}})
	ctx := context.Background()
	pop := func() {
		t.Helper()
		if _, err := q.Pop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A prompt consumer of a sender ahead of real time (a second of media
	// per frame): frames are never due before they are read.
	for i := range 10 {
		f := frame(uint64(i), byte(i), 160)
		f.Timestamp = time.Duration(i) * time.Second
		q.Push(f, 20*time.Millisecond)
		pop()
	}
	if c := q.Counters(); c.Lag != 0 || c.MaxLag != 0 || c.FramesLagged != 0 || len(calls) != 0 {
		t.Fatalf("prompt consumer: %+v, %d calls", c.LagCounters, len(calls))
	}
	// A consumer that reads 1.2 s late: frame 10 is due a second after
	// frame 9 was read.
	late := frame(10, 10, 160)
	late.Timestamp = 10 * time.Second
	q.Push(late, 20*time.Millisecond)
	time.Sleep(1200 * time.Millisecond)
	pop()
	late.Timestamp += 20 * time.Millisecond
	q.Push(late, 20*time.Millisecond)
	pop()
	c := q.Counters()
	if c.Lag < 150*time.Millisecond || c.MaxLag < c.Lag || c.FramesLagged != 2 || len(calls) != 1 || calls[0] < 150*time.Millisecond {
		t.Fatalf("slow consumer: %+v, OnLag calls %v", c.LagCounters, calls)
	}
	// Pop with the meter allocates nothing.
	if n := testing.AllocsPerRun(100, func() {
		late.Timestamp += 20 * time.Millisecond
		q.Push(late, 20*time.Millisecond)
		pop()
	}); n != 0 {
		t.Fatalf("%v allocations per Push+Pop", n)
	}
}
