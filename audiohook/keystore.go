package audiohook

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// KeyStore looks up the client secret of an API key, once per upgrade
// request with its context; it must be safe for concurrent use. ok is false
// for an unknown key. secret is base64-decoded; an empty one lets the key
// connect unsigned (the secret is optional in the Genesys integration), but
// a signature it carries must verify with the empty key, as in the
// reference server.
type KeyStore interface {
	Secret(ctx context.Context, apiKey string) (secret []byte, ok bool, err error)
}

// StaticKeys is a KeyStore over a fixed map from API key to decoded secret.
type StaticKeys map[string][]byte

// Secret implements KeyStore.
func (k StaticKeys) Secret(_ context.Context, apiKey string) ([]byte, bool, error) {
	s, ok := k[apiKey]
	return s, ok, nil
}

// KeysFromJSON parses a JSON object of API key → base64 client secret, the
// format of the reference server's STATIC_API_KEY_MAP variable:
//
//	{"SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh":"TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=","open-key":""}
//
// An empty string or null allows unsigned requests for that key (signed
// ones must still verify; see KeyStore).
func KeysFromJSON(b []byte) (StaticKeys, error) {
	var m map[string]*string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("audiohook: key map: %w", err)
	}
	out := make(StaticKeys, len(m))
	for k, v := range m {
		if v == nil || *v == "" {
			out[k] = nil
			continue
		}
		s, err := base64.StdEncoding.DecodeString(*v)
		if err != nil {
			return nil, fmt.Errorf("audiohook: key map: secret of key %q is not base64: %w", k, err)
		}
		out[k] = s
	}
	return out, nil
}

// KeysFromEnv reads KeysFromJSON from the environment variable name
// (conventionally STATIC_API_KEY_MAP). An unset or empty variable yields an
// empty store.
func KeysFromEnv(name string) (StaticKeys, error) {
	v := os.Getenv(name)
	if v == "" {
		return StaticKeys{}, nil
	}
	return KeysFromJSON([]byte(v))
}

// NonceCache remembers the nonces of verified signatures to reject replayed
// upgrade requests; it must be safe for concurrent use. Accept calls Add once
// per request whose signature matched, with its clock reading now and until =
// min(expires, created + MaxAge + ClockSkew), after which the request fails
// the clock checks by itself. Add returns nil after recording nonce as live
// until until, ErrReplay when nonce is recorded and live at now, and
// ErrNonceCacheFull when recording it would mean forgetting a live nonce.
// Any error refuses the request.
type NonceCache interface {
	Add(nonce string, now, until time.Time) error
}

// DefaultNonceCapacity is the capacity of NewMemoryNonces(0): nonces live
// 13 s (MaxAge + ClockSkew), so it admits 7 600 signed connections per second.
const DefaultNonceCapacity = 100000

// MemoryNonces is an in-memory NonceCache; the zero value is not usable, call
// NewMemoryNonces. It keeps SHA-256 digests (about 6 MB for
// DefaultNonceCapacity live nonces) in a set and a min-heap by expiry;
// expired entries go in O(log n) each.
//
// Overflow policy: with Capacity nonces live, Add refuses the new one with
// ErrNonceCacheFull rather than evict a live nonce and reopen a captured
// request's replay window: a full cache costs availability (HTTP 503 for at
// most MaxAge + 2×ClockSkew, 16 s by default), never security.
type MemoryNonces struct {
	mu      sync.Mutex
	max     int
	set     map[[sha256.Size]byte]struct{}
	heap    []nonceEntry // min-heap by until
	replays uint64
	refused uint64
}

type nonceEntry struct {
	until int64 // unix nanoseconds
	key   [sha256.Size]byte
}

// NonceStats are the counters of a MemoryNonces.
type NonceStats struct {
	Live     int    // nonces recorded and not yet expired at the last Add
	Capacity int    // most live nonces
	Replays  uint64 // Add calls answered with ErrReplay
	Refused  uint64 // Add calls answered with ErrNonceCacheFull
}

// NewMemoryNonces returns a cache of at most max live nonces (0 means
// DefaultNonceCapacity).
func NewMemoryNonces(max int) *MemoryNonces {
	if max <= 0 {
		max = DefaultNonceCapacity
	}
	return &MemoryNonces{max: max, set: make(map[[sha256.Size]byte]struct{}, min(max, 1024))}
}

// Add implements NonceCache.
func (c *MemoryNonces) Add(nonce string, now, until time.Time) error {
	key := sha256.Sum256([]byte(nonce))
	t, u := now.UnixNano(), until.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.heap) > 0 && c.heap[0].until < t {
		delete(c.set, c.heap[0].key)
		c.pop()
	}
	if _, ok := c.set[key]; ok {
		c.replays++
		return ErrReplay
	}
	if u < t {
		return nil // already unusable: nothing to remember
	}
	if len(c.heap) >= c.max {
		c.refused++
		return ErrNonceCacheFull
	}
	c.set[key] = struct{}{}
	c.push(nonceEntry{until: u, key: key})
	return nil
}

// Stats returns the cache's counters.
func (c *MemoryNonces) Stats() NonceStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return NonceStats{Live: len(c.heap), Capacity: c.max, Replays: c.replays, Refused: c.refused}
}

func (c *MemoryNonces) push(e nonceEntry) {
	h := append(c.heap, e)
	for i := len(h) - 1; i > 0; {
		p := (i - 1) / 2
		if h[p].until <= h[i].until {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
	c.heap = h
}

func (c *MemoryNonces) pop() {
	h := c.heap
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h[r].until < h[l].until {
			m = r
		}
		if h[i].until <= h[m].until {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	c.heap = h
}
