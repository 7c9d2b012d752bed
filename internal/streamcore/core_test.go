package streamcore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
)

func frame(seq uint64, b byte, n int) voicegate.Frame {
	return voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1, Seq: seq,
		Timestamp: time.Duration(seq) * 20 * time.Millisecond, Payload: bytes.Repeat([]byte{b}, n)}
}

func drain(t *testing.T, q *Queue) (seqs []uint64, end error) {
	t.Helper()
	for {
		f, err := q.Pop(context.Background())
		if err != nil {
			return seqs, err
		}
		if len(f.Payload) == 0 || f.Payload[0] != byte(f.Seq) {
			t.Fatalf("frame %d: payload %x", f.Seq, f.Payload[:min(4, len(f.Payload))])
		}
		seqs = append(seqs, f.Seq)
	}
}

func TestQueueOverflow(t *testing.T) {
	tests := []struct {
		name    string
		opts    QueueOptions
		sizes   []int
		want    []uint64
		dropped uint64
	}{
		{"frames drop oldest", QueueOptions{Frames: 3, Bytes: 1000}, []int{10, 10, 10, 10, 10}, []uint64{3, 4, 5}, 2},
		{"frames drop newest", QueueOptions{Frames: 3, Bytes: 1000, Overflow: DropNewest}, []int{10, 10, 10, 10, 10}, []uint64{1, 2, 3}, 2},
		{"bytes", QueueOptions{Frames: 10, Bytes: 25}, []int{10, 10, 10}, []uint64{2, 3}, 1},
		{"wraps", QueueOptions{Frames: 10, Bytes: 25}, []int{10, 10, 10, 10, 10, 10, 7}, []uint64{6, 7}, 5},
		{"payload larger than buffer", QueueOptions{Frames: 10, Bytes: 25}, []int{10, 30, 10}, []uint64{1, 3}, 1},
		{"duration", QueueOptions{Frames: 10, Bytes: 1000, Duration: 40 * time.Millisecond}, []int{10, 10, 10}, []uint64{2, 3}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := NewQueue(tc.opts)
			for i, n := range tc.sizes {
				q.Push(frame(uint64(i+1), byte(i+1), n), 20*time.Millisecond)
			}
			q.Finish(io.EOF)
			got, end := drain(t, q)
			if end != io.EOF || !equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v, io.EOF", got, end, tc.want)
			}
			c := q.Counters()
			if c.FramesDropped != tc.dropped || c.FramesReceived != uint64(len(tc.sizes)) || c.FramesRead != uint64(len(tc.want)) || c.QueueDepth != 0 {
				t.Fatalf("counters %+v", c)
			}
		})
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestQueueEnd(t *testing.T) {
	cause := errors.New("connection reset")
	tests := []struct {
		name    string
		end     func(q *Queue)
		wantErr func(error) bool
		frames  int
		errNil  bool
	}{
		{"clean", func(q *Queue) { q.Finish(io.EOF) }, func(e error) bool { return e == io.EOF }, 2, true},
		{"nil is clean", func(q *Queue) { q.Finish(nil) }, func(e error) bool { return e == io.EOF }, 2, true},
		{"abnormal", func(q *Queue) { q.Finish(cause) }, func(e error) bool {
			var se *voicegate.StreamError
			return errors.As(e, &se) && errors.Is(e, cause)
		}, 2, false},
		{"abort", func(q *Queue) { q.Abort(voicegate.ErrClosed) }, func(e error) bool { return errors.Is(e, net.ErrClosed) }, 0, false},
		{"abort after finish", func(q *Queue) { q.Finish(io.EOF); q.Abort(voicegate.ErrClosed) }, func(e error) bool { return errors.Is(e, net.ErrClosed) }, 0, true},
		{"first finish wins", func(q *Queue) { q.Finish(io.EOF); q.Finish(cause) }, func(e error) bool { return e == io.EOF }, 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := NewQueue(QueueOptions{Frames: 4, Bytes: 100})
			q.Push(frame(1, 1, 3), 0)
			q.Push(frame(2, 2, 3), 0)
			select {
			case <-q.Done():
				t.Fatal("Done before the end")
			default:
			}
			if q.Err() != nil {
				t.Fatal("Err before the end")
			}
			tc.end(q)
			<-q.Done()
			got, end := drain(t, q)
			if len(got) != tc.frames || !tc.wantErr(end) {
				t.Fatalf("frames %v, end %v", got, end)
			}
			if _, again := q.Pop(context.Background()); again != end && !errors.Is(again, end) {
				t.Fatalf("second end %v, first %v", again, end)
			}
			if (q.Err() == nil) != tc.errNil {
				t.Fatalf("Err = %v", q.Err())
			}
		})
	}
}

func TestQueueCancelAndConcurrentReaders(t *testing.T) {
	q := NewQueue(QueueOptions{Frames: 1000, Bytes: 100000})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := q.Pop(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Pop on empty queue: %v", err)
	}
	const n = 500
	var mu sync.Mutex
	seen := map[uint64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				f, err := q.Pop(context.Background())
				if err != nil {
					return
				}
				// The payload is another caller's once it pops: only the
				// metadata is ours.
				mu.Lock()
				seen[f.Seq]++
				mu.Unlock()
			}
		}()
	}
	for i := 1; i <= n; i++ {
		q.Push(frame(uint64(i), byte(i), 5), 0)
	}
	q.Finish(io.EOF)
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("read %d distinct frames, want %d", len(seen), n)
	}
	for s, c := range seen {
		if c != 1 {
			t.Fatalf("frame %d read %d times", s, c)
		}
	}
}

func TestQueueAllocs(t *testing.T) {
	q := NewQueue(QueueOptions{Frames: 8, Bytes: 8 * 160})
	f := frame(1, 1, 160)
	ctx := context.Background()
	q.Push(f, 0)
	_, _ = q.Pop(ctx)
	if n := testing.AllocsPerRun(1000, func() {
		q.Push(f, 20*time.Millisecond)
		q.PushSilence(f, 160, 0xFF, 20*time.Millisecond)
		_, _ = q.Pop(ctx)
		_, _ = q.Pop(ctx)
	}); n != 0 {
		t.Fatalf("%v allocations per push/pop", n)
	}
}

// TestQueueGrows: the ring starts small and grows while frames wait,
// keeping their order and bytes across a wrapped ring, up to the bounds
// and no further; a prompt consumer keeps it small.
func TestQueueGrows(t *testing.T) {
	q := NewQueue(QueueOptions{Frames: 200, Bytes: 200 * 160})
	ctx := context.Background()
	var want []uint64
	seq := uint64(0)
	push := func() {
		seq++
		q.Push(frame(seq, byte(seq), 160), 20*time.Millisecond)
		want = append(want, seq)
	}
	pop := func() {
		t.Helper()
		f, err := q.Pop(ctx)
		if err != nil || f.Seq != want[0] || len(f.Payload) != 160 || !bytes.Equal(f.Payload, bytes.Repeat([]byte{byte(f.Seq)}, 160)) {
			t.Fatalf("pop: frame %d (%d bytes, %x...), %v; want frame %d", f.Seq, len(f.Payload), f.Payload[:min(4, len(f.Payload))], err, want[0])
		}
		want = want[1:]
	}
	// A prompt consumer: the ring stays at its first size, wrapping.
	for range 50 {
		push()
		push()
		pop()
		pop()
	}
	if len(q.data) != ringBytes || len(q.meta) != ringFrames {
		t.Fatalf("prompt consumer: ring grew to %d bytes, %d frames", len(q.data), len(q.meta))
	}
	// Leave the read position mid-ring, then let frames pile up: every
	// growth moves a wrapped ring.
	push()
	push()
	push()
	pop()
	for range 150 {
		push()
	}
	for range 60 {
		pop()
	}
	for range 150 {
		push() // past the bound: the oldest are dropped
	}
	if len(q.data) != 200*160 || len(q.meta) != 200 {
		t.Fatalf("ring %d bytes, %d frames; want the bounds", len(q.data), len(q.meta))
	}
	c := q.Counters()
	if c.QueueDepth != 200 || c.FramesDropped != 42 {
		t.Fatalf("counters %+v", c)
	}
	want = want[len(want)-200:]
	for len(want) > 0 {
		pop()
	}
}

func TestTrackPlaceAndFill(t *testing.T) {
	ms := time.Millisecond
	tmpl := voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}
	tests := []struct {
		name     string
		ts       []time.Duration // frames of 20 ms
		fill     bool
		wantLate uint64
		wantGaps uint64
		wantGap  time.Duration
		silence  int      // silence frames queued
		seqs     []uint64 // seq of the accepted frames
	}{
		{"in order", []time.Duration{0, 20 * ms, 40 * ms}, false, 0, 0, 0, 0, []uint64{1, 2, 3}},
		{"late and duplicate", []time.Duration{0, 20 * ms, 20 * ms, 10 * ms, 40 * ms}, false, 2, 0, 0, 0, []uint64{1, 2, 3}},
		{"jitter below MinGap", []time.Duration{0, 25 * ms}, false, 0, 0, 0, 0, []uint64{1, 2}},
		{"gap not filled skips seq", []time.Duration{0, 80 * ms}, false, 0, 1, 60 * ms, 0, []uint64{1, 5}},
		{"gap filled", []time.Duration{0, 80 * ms}, true, 0, 1, 60 * ms, 3, []uint64{1, 5}},
		{"gap over MaxGapFill not filled", []time.Duration{0, voicegate.MaxGapFill + 40*ms}, true, 0, 1, voicegate.MaxGapFill + 20*ms, 0, []uint64{1, 103}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := NewQueue(QueueOptions{Frames: 1000, Bytes: 160000})
			tr := Track{MinGap: 10 * ms}
			var c GapCounters
			var seqs []uint64
			for _, ts := range tc.ts {
				gap, late := tr.Place(ts, 20*ms, &c)
				if late {
					continue
				}
				tr.FillGap(q, tmpl, ts, gap, 20*ms, 20*ms, tc.fill)
				s := tr.Seq()
				seqs = append(seqs, s)
				f := tmpl
				f.Seq, f.Timestamp, f.Payload = s, ts, make([]byte, 160)
				q.Push(f, 20*ms)
			}
			if c.FramesLate != tc.wantLate || c.Gaps != tc.wantGaps || c.GapTime != tc.wantGap {
				t.Errorf("counters %+v", c)
			}
			if got := q.Counters().SilenceFrames; got != uint64(tc.silence) {
				t.Errorf("silence frames %d, want %d", got, tc.silence)
			}
			if !equal(seqs, tc.seqs) {
				t.Errorf("seqs %v, want %v", seqs, tc.seqs)
			}
			q.Finish(io.EOF)
			var last time.Duration = -1
			for {
				f, err := q.Pop(context.Background())
				if err != nil {
					break
				}
				if f.Timestamp <= last {
					t.Fatalf("timestamp %v after %v", f.Timestamp, last)
				}
				if f.Seq == 0 {
					t.Fatal("seq 0")
				}
				last = f.Timestamp
			}
		})
	}
}

func BenchmarkQueuePushPop(b *testing.B) {
	q := NewQueue(QueueOptions{Frames: 100, Bytes: 100 * 320})
	f := frame(1, 1, 320)
	ctx := context.Background()
	b.SetBytes(320)
	b.ReportAllocs()
	for b.Loop() {
		q.Push(f, 20*time.Millisecond)
		if _, err := q.Pop(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
