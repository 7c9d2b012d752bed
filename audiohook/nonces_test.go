package audiohook

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// docCreated is created of the doc example; its expires is 3282026430
// (year 2074).
var docCreated = time.Unix(1641013200, 0)

// TestNonceCacheDocExample replays the doc example (exact bytes, expires in
// 2074) against a cache of one entry: the nonce is kept only while the
// request passes the clock checks, a full cache refuses new nonces instead
// of forgetting a live one, and a replay within the window always fails.
func TestNonceCacheDocExample(t *testing.T) {
	secret := mustB64(t, docSecret)
	cache := NewMemoryNonces(1)
	verify := func(r *http.Request, after time.Duration) error {
		now := docCreated.Add(after)
		_, err := verifyRequest(r, secret, &verifyOptions{Now: func() time.Time { return now }, Nonces: cache})
		return err
	}
	steps := []struct {
		name  string
		req   *http.Request
		after time.Duration
		want  error
		live  int
	}{
		{"first use", docSigned(docNonce, docSig), 0, nil, 1},
		{"replay", docSigned(docNonce, docSig), time.Second, ErrReplay, 1},
		// The old cache evicted the live nonce here and accepted ...
		{"other nonce while full", docSigned(docNonce2, docNonce2Sig), 2 * time.Second, ErrNonceCacheFull, 1},
		// ... so this replay passed.
		{"replay after refusal", docSigned(docNonce, docSig), 3 * time.Second, ErrReplay, 1},
		// Last instant a replay passes the clock checks: created+MaxAge-skew.
		{"replay at the end of the window", docSigned(docNonce, docSig), 7 * time.Second, ErrReplay, 1},
		{"replay after the window", docSigned(docNonce, docSig), 8 * time.Second, ErrSignature, 1},
		// Kept until created+MaxAge+skew, not until expires (2074).
		{"kept at created+13s (the request itself is too old)", docSigned(docNonce2, docNonce2Sig), 13 * time.Second, ErrSignature, 1},
	}
	for _, st := range steps {
		err := verify(st.req, st.after)
		if st.want == nil && err != nil || st.want != nil && !errors.Is(err, st.want) {
			t.Fatalf("%s: err %v, want %v", st.name, err, st.want)
		}
		if got := cache.Stats().Live; got != st.live {
			t.Fatalf("%s: %d live nonces, want %d", st.name, got, st.live)
		}
	}
	// 14 s after created the doc nonce is gone: a fresh request is recorded.
	now := docCreated.Add(14 * time.Second)
	if err := cache.Add("bmV3LW5vbmNlLWFmdGVyLXRoZS13aW5kb3c=", now, now.Add(13*time.Second)); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	if st := cache.Stats(); st != (NonceStats{Live: 1, Capacity: 1, Replays: 3, Refused: 1}) {
		t.Fatalf("stats %+v", st)
	}
}

// recordingNonces records the arguments of Add.
type recordingNonces struct{ now, until time.Time }

func (c *recordingNonces) Add(_ string, now, until time.Time) error {
	c.now, c.until = now, until
	return nil
}

// TestNonceRetention pins until = min(expires, created + MaxAge + skew).
func TestNonceRetention(t *testing.T) {
	secret := mustB64(t, docSecret)
	tests := []struct {
		name             string
		expires          int64
		maxAge, skew     time.Duration
		now              time.Duration // after created
		want             time.Duration // until - created
		verifyOptionsNil bool
	}{
		{name: "doc example, defaults", expires: 3282026430, now: 0, want: 13 * time.Second},
		{name: "doc example, 5 s later", expires: 3282026430, now: 5 * time.Second, want: 13 * time.Second},
		{name: "genesys client expires created+30", expires: 1641013230, want: 13 * time.Second},
		{name: "expires first", expires: 1641013205, want: 5 * time.Second},
		{name: "long max age, expires first", expires: 1641013230, maxAge: time.Hour, want: 30 * time.Second},
		{name: "custom window", expires: 3282026430, maxAge: 20 * time.Second, skew: time.Second, want: 21 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := docRequest()
			in := docInput(signatureComponents)
			in.Params[4].Value = tt.expires
			if err := signRequestWith(r, secret, in); err != nil {
				t.Fatal(err)
			}
			rec := &recordingNonces{}
			now := docCreated.Add(tt.now)
			opts := &verifyOptions{Now: func() time.Time { return now }, MaxAge: tt.maxAge, ClockSkew: tt.skew, Nonces: rec}
			if _, err := verifyRequest(r, secret, opts); err != nil {
				t.Fatal(err)
			}
			if !rec.now.Equal(now) || rec.until.Sub(docCreated) != tt.want {
				t.Fatalf("Add(now %v, until created%+v), want now %v, until created%+v", rec.now, rec.until.Sub(docCreated), now, tt.want)
			}
		})
	}
}

// nonceModel is the obvious O(n) implementation MemoryNonces must agree with.
type nonceModel struct {
	max   int
	items map[string]int64
}

func (m *nonceModel) add(nonce string, now, until int64) error {
	for k, u := range m.items {
		if u < now {
			delete(m.items, k)
		}
	}
	if _, ok := m.items[nonce]; ok {
		return ErrReplay
	}
	if until < now {
		return nil
	}
	if len(m.items) >= m.max {
		return ErrNonceCacheFull
	}
	m.items[nonce] = until
	return nil
}

func TestMemoryNoncesModel(t *testing.T) {
	for _, max := range []int{1, 2, 7, 64} {
		t.Run(strconv.Itoa(max), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(max)))
			c := NewMemoryNonces(max)
			m := &nonceModel{max: max, items: map[string]int64{}}
			var now int64
			for i := 0; i < 20000; i++ {
				now += rng.Int64N(3)
				nonce := "nonce-" + strconv.Itoa(rng.IntN(4*max))
				until := now + rng.Int64N(20) - 2
				want := m.add(nonce, now, until)
				got := c.Add(nonce, time.Unix(0, now), time.Unix(0, until))
				if got != want {
					t.Fatalf("step %d: Add(%s, %d, %d) = %v, model %v", i, nonce, now, until, got, want)
				}
				if live := c.Stats().Live; live != len(m.items) {
					t.Fatalf("step %d: %d live, model %d", i, live, len(m.items))
				}
			}
		})
	}
}

func TestMemoryNoncesDefaults(t *testing.T) {
	if got := NewMemoryNonces(0).Stats().Capacity; got != DefaultNonceCapacity {
		t.Fatalf("capacity %d", got)
	}
	c := NewMemoryNonces(2)
	now := docCreated
	// A nonce that can no longer be used is not recorded.
	if err := c.Add("stale-nonce-0123456789ab", now, now.Add(-time.Second)); err != nil || c.Stats().Live != 0 {
		t.Fatalf("stale: %v, %d live", err, c.Stats().Live)
	}
	// Live until the instant until itself.
	if err := c.Add("edge-nonce-0123456789abc", now, now); err != nil {
		t.Fatal(err)
	}
	if err := c.Add("edge-nonce-0123456789abc", now, now); !errors.Is(err, ErrReplay) {
		t.Fatalf("at until: %v, want ErrReplay", err)
	}
	if err := c.Add("edge-nonce-0123456789abc", now.Add(1), now.Add(1)); err != nil {
		t.Fatalf("after until: %v", err)
	}
}

func TestMemoryNoncesAllocs(t *testing.T) {
	c := NewMemoryNonces(1024)
	nonces := make([]string, 2048)
	for i := range nonces {
		nonces[i] = newNonce()
	}
	// Warm up: the set and the heap reach their size.
	now := docCreated
	for i, n := range nonces {
		_ = c.Add(n, now.Add(time.Duration(i)), now.Add(time.Duration(i+512)))
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		n := nonces[i%len(nonces)]
		t := now.Add(time.Duration(2048 + i))
		_ = c.Add(n, t, t.Add(512))
		i++
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Add", allocs)
	}
}

func TestMemoryNoncesConcurrent(t *testing.T) {
	c := NewMemoryNonces(1000)
	now := docCreated
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, replays, full := 0, 0, 0
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				// Every nonce is added by two goroutines: exactly one wins.
				err := c.Add(fmt.Sprintf("nonce-%d-%d", g/2, i), now, now.Add(time.Minute))
				mu.Lock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrReplay):
					replays++
				case errors.Is(err, ErrNonceCacheFull):
					full++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// 2000 distinct nonces, 1000 slots: 1000 recorded, 1000 refused or
	// seen as replays, 2000 second uses replayed or refused.
	st := c.Stats()
	if ok != 1000 || st.Live != 1000 || ok+replays+full != 4000 || uint64(replays) != st.Replays || uint64(full) != st.Refused {
		t.Fatalf("ok %d replays %d full %d, stats %+v", ok, replays, full, st)
	}
}

// BenchmarkMemoryNonces measures Add at the default capacity. steady: the
// connection rate fills about half the cache and expired nonces leave from
// the heap top; full: every slot holds a live nonce and Add is refused
// (where the former cache scanned all 100 000 entries under its lock).
func BenchmarkMemoryNonces(b *testing.B) {
	nonces := make([]string, 1<<17)
	for i := range nonces {
		nonces[i] = newNonce()
	}
	b.Run("steady", func(b *testing.B) {
		c := NewMemoryNonces(0)
		const window = DefaultNonceCapacity / 2
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			now := docCreated.Add(time.Duration(i))
			if err := c.Add(nonces[i%len(nonces)], now, now.Add(window)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full", func(b *testing.B) {
		c := NewMemoryNonces(0)
		for i := range DefaultNonceCapacity {
			_ = c.Add(nonces[i], docCreated, docCreated.Add(time.Hour))
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if err := c.Add(nonces[DefaultNonceCapacity+i%(len(nonces)-DefaultNonceCapacity)], docCreated, docCreated.Add(time.Hour)); !errors.Is(err, ErrNonceCacheFull) {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		c := NewMemoryNonces(0)
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(next.Add(1))
				now := docCreated.Add(time.Duration(i))
				_ = c.Add(nonces[i%len(nonces)], now, now.Add(DefaultNonceCapacity/2))
			}
		})
	})
}
