package daspeak_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/daspeak/daspeaktest"
	"github.com/voicegate/voicegate/internal/fixtures"
)

// waitQueued waits until l has n callers queued.
func waitQueued(t *testing.T, l *daspeak.Limiter, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().Queued != n {
		if time.Now().After(deadline) {
			t.Fatalf("queued %d, want %d", l.Stats().Queued, n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLimiterArrivalOrder(t *testing.T) {
	for _, limit := range []int{1, 3} {
		l := daspeak.NewLimiter(limit)
		ctx := context.Background()
		for range limit {
			_, err := l.Acquire(ctx)
			require.NoError(t, err)
		}
		const n = 20
		var (
			mu    sync.Mutex
			order []int
			wg    sync.WaitGroup
		)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				wait, err := l.Acquire(ctx)
				assert.NoError(t, err)
				assert.Positive(t, wait)
				mu.Lock()
				order = append(order, i)
				mu.Unlock()
				l.Release()
			}()
			// The next caller arrives after this one queued.
			waitQueued(t, l, i+1)
		}
		for range limit {
			l.Release()
		}
		wg.Wait()
		if limit == 1 {
			for i, id := range order {
				require.Equal(t, i, id, "admitted out of arrival order: %v", order)
			}
		}
		require.Len(t, order, n)
		st := l.Stats()
		assert.Equal(t, daspeak.LimiterStats{Limit: limit, MaxQueued: n, Admitted: uint64(n + limit), Waited: n,
			WaitTime: st.WaitTime, MaxWait: st.MaxWait}, st)
		assert.Positive(t, st.MaxWait)
		assert.GreaterOrEqual(t, st.WaitTime, st.MaxWait)
	}
}

func TestLimiterCancelWhileQueued(t *testing.T) {
	l := daspeak.NewLimiter(1)
	_, err := l.Acquire(context.Background())
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan error, 1)
	go func() {
		_, err := l.Acquire(ctx)
		gone <- err
	}()
	waitQueued(t, l, 1)
	admitted := make(chan struct{})
	go func() {
		_, err := l.Acquire(context.Background())
		assert.NoError(t, err)
		close(admitted)
	}()
	waitQueued(t, l, 2)

	cancel()
	require.ErrorIs(t, <-gone, context.Canceled)
	waitQueued(t, l, 1)
	l.Release()
	<-admitted
	st := l.Stats()
	assert.Equal(t, 1, st.InFlight, "the cancelled caller's turn went to the next one")
	assert.EqualValues(t, 1, st.Canceled)
	l.Release()
	assert.Zero(t, l.Stats().InFlight)

	// An ended ctx never queues.
	_, err = l.Acquire(context.Background())
	require.NoError(t, err)
	_, err = l.Acquire(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, l.Stats().Queued)
	l.Release()
}

// TestLimiterCancelRace cancels waiters while slots are being handed over:
// every slot ends up released, whichever of the grant and the
// cancellation comes first.
func TestLimiterCancelRace(t *testing.T) {
	l := daspeak.NewLimiter(2)
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(i%7)*100*time.Microsecond)
			defer cancel()
			if _, err := l.Acquire(ctx); err != nil {
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				return
			}
			time.Sleep(50 * time.Microsecond)
			l.Release()
		}()
	}
	wg.Wait()
	st := l.Stats()
	assert.Zero(t, st.InFlight)
	assert.Zero(t, st.Queued)
	assert.EqualValues(t, 200, st.Admitted+st.Canceled)
}

func TestLimiterDefault(t *testing.T) {
	assert.Positive(t, daspeak.NewLimiter(0).Limit())
	assert.Equal(t, 4, daspeak.NewLimiter(4).Limit())
}

// TestSessionLimiter: a session queues for the engine behind a held slot,
// reports the wait, and can be cancelled while queued and resumed.
func TestSessionLimiter(t *testing.T) {
	l := daspeak.NewLimiter(1)
	_, err := l.Acquire(context.Background())
	require.NoError(t, err)
	e := &fakeEngine{authenticity: 1, score: 0.9}
	s, err := daspeak.Verify(wavReader(t, fixtures.Utterances("slt")[0]), e, "cred",
		&daspeak.Config{ModelHash: "m1", ProgressInterval: -1, Limiter: l})
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Next(ctx)
		errc <- err
	}()
	waitQueued(t, l, 1)
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled)
	assert.Zero(t, l.Stats().Queued, "the cancelled session left the queue")
	assert.Zero(t, e.calls)

	evc := make(chan daspeak.Event, 1)
	go func() {
		ev, err := s.Next(context.Background())
		assert.NoError(t, err)
		evc <- ev
	}()
	waitQueued(t, l, 1)
	time.Sleep(20 * time.Millisecond)
	l.Release()
	ev := <-evc
	require.Equal(t, daspeak.EventResultSuccess, ev.Type, "%v", ev.Err)
	assert.GreaterOrEqual(t, ev.EngineWait, 20*time.Millisecond)
	assert.Equal(t, ev.EngineWait, s.Stats().EngineWait)
	b, err := ev.MarshalJSON()
	require.NoError(t, err)
	assert.Contains(t, string(b), `"engine_wait":`)
	st := l.Stats()
	assert.Zero(t, st.InFlight, "the session gave its slot back")
	assert.EqualValues(t, 2, st.Admitted)
}

// orderEngine records the Limiter arrival and admission numbers of each
// engine call, in the order the calls were made.
type orderEngine struct {
	daspeak.Engine
	mu    sync.Mutex
	calls [][2]uint64
}

func (e *orderEngine) CompareCredentialToAudio(ctx context.Context, cred string, audio []byte, opts *daspeak.AudioOptions) (*daspeak.CompareResult, error) {
	arrival, admission, ok := daspeak.CallOrder(ctx)
	if !ok {
		return nil, errors.New("no Limiter slot in the engine call's context")
	}
	e.mu.Lock()
	e.calls = append(e.calls, [2]uint64{arrival, admission})
	e.mu.Unlock()
	return e.Engine.CompareCredentialToAudio(ctx, cred, audio, opts)
}

// TestSessionLimiterCallOrder: queued sessions call the engine in the
// order they reached the Limiter, and each call's slot carries that
// order.
func TestSessionLimiterCallOrder(t *testing.T) {
	l := daspeak.NewLimiter(1)
	_, err := l.Acquire(context.Background()) // arrival and admission 1
	require.NoError(t, err)
	e := &orderEngine{Engine: &fakeEngine{authenticity: 1, score: 0.9}}
	const n = 5
	done := make(chan struct{}, n)
	for k := range n {
		s, err := daspeak.Verify(wavReader(t, fixtures.Utterances("slt")[0]), e, "cred",
			&daspeak.Config{ModelHash: "m1", ProgressInterval: -1, Limiter: l})
		require.NoError(t, err)
		go func() {
			ev, err := s.Next(context.Background())
			assert.NoError(t, err)
			assert.Equal(t, daspeak.EventResultSuccess, ev.Type, "%v", ev.Err)
			done <- struct{}{}
		}()
		waitQueued(t, l, k+1)
	}
	l.Release()
	for range n {
		<-done
	}
	want := make([][2]uint64, n)
	for k := range want {
		want[k] = [2]uint64{uint64(k + 2), uint64(k + 2)}
	}
	assert.Equal(t, want, e.calls)
}

const rateLimited = `{"message":"API rate limit exceeded"}`

// TestClientRateLimitLimiter: a 429 with Retry-After is retried and then
// succeeds; the Client does not hold its Limiter slot while it waits.
func TestClientRateLimitLimiter(t *testing.T) {
	srv := restServer(t, nil)
	srv.Inject(daspeaktest.Fault{Status: 429, Body: rateLimited, RetryAfter: "1"})
	l := daspeak.NewLimiter(1)
	c := restClient(t, srv, &daspeak.ClientOptions{Limiter: l})
	done := make(chan error, 1)
	go func() {
		_, err := c.GenerateCredential(context.Background(), restModel, restVoice(t, 300), nil)
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for srv.Requests("/models/{hash}/credential/wav") < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	// Within the second of Retry-After, the slot is free for others.
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	_, err := l.Acquire(ctx)
	require.NoError(t, err, "the slot was held during Retry-After")
	l.Release()

	require.NoError(t, <-done)
	assert.EqualValues(t, 2, srv.Requests("/models/{hash}/credential/wav"))
	st := l.Stats()
	assert.Zero(t, st.InFlight)
	assert.EqualValues(t, 3, st.Admitted, "two attempts and the other caller")
}

// TestClientRateLimitGivesUp: repeated 429 answers end in a
// *RateLimitError, which a session reports as error-das-Peak; a session
// sharing the Client's Limiter lends its slot and gets it back.
func TestClientRateLimitGivesUp(t *testing.T) {
	srv := restServer(t, nil)
	srv.Inject(daspeaktest.Fault{Status: 429, Body: rateLimited, Times: 6})
	l := daspeak.NewLimiter(1)
	c := restClient(t, srv, &daspeak.ClientOptions{Limiter: l, MaxRetries: 2})

	_, err := c.GenerateCredential(context.Background(), restModel, restVoice(t, 300), nil)
	var rl *daspeak.RateLimitError
	require.ErrorAs(t, err, &rl)
	assert.Equal(t, 3, rl.Attempts)
	assert.ErrorIs(t, err, daspeak.ErrRateLimited)
	var ae *daspeak.APIError
	require.ErrorAs(t, err, &ae)
	assert.Equal(t, 429, ae.Status)
	assert.Contains(t, err.Error(), "rate limited after 3 attempts")
	assert.Zero(t, l.Stats().InFlight)

	s, err := daspeak.Register(wavReader(t, fixtures.Utterances("slt")[0]), c,
		&daspeak.Config{ModelHash: restModel, ProgressInterval: -1, Limiter: l})
	require.NoError(t, err)
	ev, err := s.Next(context.Background())
	require.NoError(t, err)
	require.Equal(t, daspeak.EventErrorDasPeak, ev.Type)
	assert.True(t, errors.As(ev.Err, &rl), "%v", ev.Err)
	assert.EqualValues(t, 6, srv.Requests("/models/{hash}/credential/wav"))
	assert.Zero(t, l.Stats().InFlight, "no slot left held")

	// With the rate limit gone, the shared slot serves the session's call
	// without a second one (limit 1: a second would never come).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err = daspeak.Register(wavReader(t, fixtures.Utterances("slt")[0]), c,
		&daspeak.Config{ModelHash: restModel, ProgressInterval: -1, Limiter: l})
	require.NoError(t, err)
	ev, err = s.Next(ctx)
	require.NoError(t, err)
	require.Equal(t, daspeak.EventResultSuccess, ev.Type, "%v", ev.Err)
	assert.Zero(t, l.Stats().InFlight)
}
