package streamcore

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
)

// waitAsleep waits until a consumer has found q empty and waits on it.
func waitAsleep(t *testing.T, q *Queue) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.mu.Lock()
		asleep := q.asleep
		q.mu.Unlock()
		if asleep {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the consumer never waited")
		}
		time.Sleep(time.Millisecond)
	}
}

type popped struct {
	f   voicegate.Frame
	err error
}

func popAsync(q *Queue) <-chan popped {
	c := make(chan popped, 1)
	go func() {
		f, err := q.Pop(context.Background())
		c <- popped{f, err}
	}()
	return c
}

// In a Batched queue, Push leaves a waiting consumer asleep and Flush
// wakes it; the batch is then read whole, in order, without another wake.
func TestBatchedQueueWakesOnFlush(t *testing.T) {
	q := NewQueue(QueueOptions{Frames: 10, Bytes: 1000, Batched: true})
	got := popAsync(q)
	waitAsleep(t, q)
	for i := 1; i <= 3; i++ {
		q.Push(frame(uint64(i), byte(i), 10), 20*time.Millisecond)
	}
	select {
	case p := <-got:
		t.Fatalf("Pop returned %d, %v before Flush", p.f.Seq, p.err)
	case <-time.After(20 * time.Millisecond):
	}
	if len(q.wake) != 0 {
		t.Fatal("Push signalled the consumer of a Batched queue")
	}
	q.Flush()
	p := <-got
	if p.err != nil || p.f.Seq != 1 {
		t.Fatalf("after Flush: %d, %v", p.f.Seq, p.err)
	}
	for want := uint64(2); want <= 3; want++ {
		f, err := q.Pop(context.Background())
		if err != nil || f.Seq != want {
			t.Fatalf("got %d, %v; want %d", f.Seq, err, want)
		}
	}
	q.Finish(io.EOF)
	if _, err := q.Pop(context.Background()); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

// Finish and Abort wake a consumer of a Batched queue without Flush.
func TestBatchedQueueEndWakes(t *testing.T) {
	q := NewQueue(QueueOptions{Frames: 10, Bytes: 1000, Batched: true})
	got := popAsync(q)
	waitAsleep(t, q)
	q.Push(frame(1, 1, 10), 20*time.Millisecond)
	q.Finish(io.EOF)
	if p := <-got; p.err != nil || p.f.Seq != 1 {
		t.Fatalf("got %d, %v; want frame 1", p.f.Seq, p.err)
	}

	q = NewQueue(QueueOptions{Frames: 10, Bytes: 1000, Batched: true})
	got = popAsync(q)
	waitAsleep(t, q)
	errGone := errors.New("gone")
	q.Abort(errGone)
	if p := <-got; p.err != errGone {
		t.Fatalf("got %v; want the abort error", p.err)
	}
}

// A consumer that is not waiting is not signalled: pushes while it takes
// frames leave no wake-up behind.
func TestQueueSignalsOnlyWaitingConsumer(t *testing.T) {
	q := NewQueue(QueueOptions{Frames: 10, Bytes: 1000})
	for i := 1; i <= 5; i++ {
		q.Push(frame(uint64(i), byte(i), 10), 20*time.Millisecond)
	}
	if len(q.wake) != 0 {
		t.Fatal("pushes with no consumer waiting left a wake-up")
	}
	got := popAsync(q)
	if p := <-got; p.err != nil || p.f.Seq != 1 {
		t.Fatalf("got %d, %v", p.f.Seq, p.err)
	}
	// Drain, then a waiting consumer is woken by the next push.
	for range 4 {
		if _, err := q.Pop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got = popAsync(q)
	waitAsleep(t, q)
	q.Push(frame(6, 6, 10), 20*time.Millisecond)
	if p := <-got; p.err != nil || p.f.Seq != 6 {
		t.Fatalf("got %d, %v; want frame 6", p.f.Seq, p.err)
	}
}
