package audiohook

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// KeyStore looks up the client secret of an API key. Implementations must be
// safe for concurrent use; Secret is called once per upgrade request, before
// the upgrade, with the request's context.
//
// ok is false for an unknown key. An empty secret means the key may connect
// without a signature (the secret is optional in the Genesys integration);
// a non-empty secret is the base64-decoded client secret.
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
// An empty string or null allows unsigned requests for that key.
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

// DecodeSecret decodes a client secret as configured in the Genesys
// integration (base64) into the key that signs requests.
func DecodeSecret(b64 string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("audiohook: client secret is not base64: %w", err)
	}
	return b, nil
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

// NonceCache remembers signature nonces to reject replayed upgrade requests.
// Seen records nonce until expires and reports whether it was already
// recorded. Implementations must be safe for concurrent use.
type NonceCache interface {
	Seen(nonce string, expires time.Time) bool
}

// MemoryNonces is an in-memory NonceCache bounded to a number of entries;
// when full, the entry expiring soonest is evicted. The zero value is not
// usable; call NewMemoryNonces.
type MemoryNonces struct {
	mu    sync.Mutex
	max   int
	now   func() time.Time
	items map[string]time.Time
}

// NewMemoryNonces returns a cache of at most max nonces (0 means 100 000).
func NewMemoryNonces(max int) *MemoryNonces {
	if max <= 0 {
		max = 100000
	}
	return &MemoryNonces{max: max, now: time.Now, items: make(map[string]time.Time)}
}

// Seen implements NonceCache.
func (c *MemoryNonces) Seen(nonce string, expires time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if exp, ok := c.items[nonce]; ok && !exp.Before(now) {
		return true
	}
	if len(c.items) >= c.max {
		var oldest string
		var oldestT time.Time
		for k, t := range c.items {
			if t.Before(now) {
				delete(c.items, k)
				continue
			}
			if oldest == "" || t.Before(oldestT) {
				oldest, oldestT = k, t
			}
		}
		if len(c.items) >= c.max {
			delete(c.items, oldest)
		}
	}
	c.items[nonce] = expires
	return false
}
