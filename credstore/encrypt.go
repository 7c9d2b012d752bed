package credstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// KeySize is the length of an encryption key secret: 32 bytes, AES-256.
const KeySize = 32

// MaxKeyIDLen is the longest key id in bytes; the id is written, in clear,
// into every envelope.
const MaxKeyIDLen = 255

// Envelope layout, version 1 (all of it stored in the inner store's field):
//
//	offset 0          1 byte   version (1)
//	offset 1          1 byte   key id length n (1..255)
//	offset 2          n bytes  key id
//	offset 2+n        12 bytes nonce (random)
//	offset 14+n       rest     AES-256-GCM ciphertext followed by its 16-byte tag
const (
	envelopeVersion = 1
	nonceSize       = 12
	tagSize         = 16
	minEnvelope     = 2 + 1 + nonceSize + tagSize
)

// EnvelopeOverhead is the most bytes an [Encrypted] envelope adds to its
// plaintext: version, key id length, a MaxKeyIDLen key id, nonce and GCM
// tag. It fits in EnvelopeHeadroom.
const EnvelopeOverhead = 2 + MaxKeyIDLen + nonceSize + tagSize

// DefaultPurpose is the purpose string bound into every envelope when
// EncryptedOptions.Purpose is empty.
const DefaultPurpose = "voicegate/credstore"

// Key is one AES-256 key and the id that names it in envelopes. Ids are not
// secret; secrets are. Load secrets from a KMS or secret store, never from
// source code.
type Key struct {
	// ID names the key: 1 to MaxKeyIDLen bytes, e.g. "2026-11".
	ID string
	// Secret is exactly KeySize random bytes. The key ring keeps only the
	// expanded cipher, not this slice.
	Secret []byte
}

// Keyring holds the keys of an [Encrypted] store: one current key that seals
// new values, and older keys that still open values sealed before a
// rotation. It is safe for concurrent use, and changes take effect for the
// next call of every store sharing the ring.
//
// Rotating across a fleet of servers takes two steps: [Keyring.Add] the new
// key on every server (so all can read what it will seal), then
// [Keyring.SetCurrent] it. [Keyring.Rotate] does both at once for a single
// process. Once [Encrypted.Rewrap] has moved every record to the current
// key, [Keyring.Retire] the old one; values still sealed with a retired key
// then fail with ErrUnknownKey.
type Keyring struct {
	mu      sync.RWMutex
	current string
	aeads   map[string]cipher.AEAD
}

// NewKeyring returns a key ring whose current key is current and that also
// holds the older keys for decryption. Ids must be distinct.
func NewKeyring(current Key, older ...Key) (*Keyring, error) {
	k := &Keyring{aeads: make(map[string]cipher.AEAD)}
	for _, key := range append([]Key{current}, older...) {
		if err := k.Add(key); err != nil {
			return nil, err
		}
	}
	k.current = current.ID
	return k, nil
}

func newAEAD(key Key) (cipher.AEAD, error) {
	if key.ID == "" || len(key.ID) > MaxKeyIDLen {
		return nil, fmt.Errorf("%w: key id is %d bytes, want 1..%d", ErrInvalidKey, len(key.ID), MaxKeyIDLen)
	}
	if len(key.Secret) != KeySize {
		return nil, fmt.Errorf("%w: key %q secret is %d bytes, want %d", ErrInvalidKey, key.ID, len(key.Secret), KeySize)
	}
	block, err := aes.NewCipher(key.Secret)
	if err != nil {
		return nil, fmt.Errorf("%w: key %q: %v", ErrInvalidKey, key.ID, err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("%w: key %q: %v", ErrInvalidKey, key.ID, err)
	}
	return aead, nil
}

// Add adds a key for decryption without making it current. Adding an id
// that the ring already holds is an error.
func (k *Keyring) Add(key Key) error {
	aead, err := newAEAD(key)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.aeads[key.ID]; ok {
		return fmt.Errorf("%w: key %q is already in the ring", ErrInvalidKey, key.ID)
	}
	k.aeads[key.ID] = aead
	return nil
}

// SetCurrent makes the key with the given id, already in the ring, the one
// that seals new values.
func (k *Keyring) SetCurrent(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.aeads[id]; !ok {
		return fmt.Errorf("%w: key %q is not in the ring", ErrInvalidKey, id)
	}
	k.current = id
	return nil
}

// Rotate adds next and makes it current. The previous current key stays in
// the ring for decryption.
func (k *Keyring) Rotate(next Key) error {
	if err := k.Add(next); err != nil {
		return err
	}
	return k.SetCurrent(next.ID)
}

// Retire removes a key that is not current. Values sealed with it can no
// longer be opened (ErrUnknownKey).
func (k *Keyring) Retire(id string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if id == k.current {
		return fmt.Errorf("%w: key %q is current and cannot be retired", ErrInvalidKey, id)
	}
	if _, ok := k.aeads[id]; !ok {
		return fmt.Errorf("%w: key %q is not in the ring", ErrInvalidKey, id)
	}
	delete(k.aeads, id)
	return nil
}

// Current returns the id of the current key.
func (k *Keyring) Current() string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current
}

// IDs returns the ids of all keys in the ring, sorted.
func (k *Keyring) IDs() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ids := make([]string, 0, len(k.aeads))
	for id := range k.aeads {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (k *Keyring) currentAEAD() (string, cipher.AEAD) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.current, k.aeads[k.current]
}

func (k *Keyring) aead(id string) (cipher.AEAD, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	a, ok := k.aeads[id]
	return a, ok
}

// EncryptedOptions configures [NewEncrypted]. A nil *EncryptedOptions means
// all defaults.
type EncryptedOptions struct {
	// Purpose is bound into the associated data of every envelope, so values
	// sealed for one purpose do not open under another that shares the
	// keys. Default DefaultPurpose. Changing it makes existing records
	// unreadable.
	Purpose string
}

// Encrypted is a Store that encrypts records at rest in another Store.
//
// Credential and AudioRef are each sealed with AES-256-GCM under the
// ring's current key into a versioned envelope that names the key, with a
// fresh random nonce per value. The
// associated data binds the envelope header, the purpose string, the field
// name and the caller id, so an envelope copied to another id or to the
// other field, or altered in any byte, fails to open with a
// [*DecryptError] matching ErrDecrypt; an envelope naming a key the ring
// does not hold fails with ErrUnknownKey. Decryption never returns garbage.
// The envelope layout is in the package documentation.
//
// ModelHash, the timestamps and the caller id stay in clear (the id is the
// lookup key; the model hash is needed to find credentials to regenerate
// after a model change) and are not authenticated. An empty AudioRef stays
// empty, so whether a record has enrolment audio is visible.
//
// Limits are those of [ValidateRecord] on the plaintext; the inner store
// must accept EnvelopeOverhead more bytes, as the built-in stores do.
// Rotate keys well before 2^32 values have been sealed under one key (the
// random-nonce limit of GCM; each Put seals one or two). Encrypted is safe
// for concurrent use if the inner store is.
type Encrypted struct {
	inner   Store
	keys    *Keyring
	purpose string
}

var _ Store = (*Encrypted)(nil)

// NewEncrypted returns a store that encrypts into inner with keys.
func NewEncrypted(inner Store, keys *Keyring, opts *EncryptedOptions) (*Encrypted, error) {
	if inner == nil {
		return nil, fmt.Errorf("credstore: NewEncrypted: nil inner store")
	}
	if keys == nil {
		return nil, fmt.Errorf("%w: NewEncrypted: nil key ring", ErrInvalidKey)
	}
	e := &Encrypted{inner: inner, keys: keys, purpose: DefaultPurpose}
	if opts != nil && opts.Purpose != "" {
		e.purpose = opts.Purpose
	}
	return e, nil
}

// Field names bound into the associated data and reported in DecryptError.
const (
	fieldCredential = "credential"
	fieldAudioRef   = "audio_ref"
)

// aad builds the associated data: the envelope header, then the purpose and
// field name each with a length prefix, then the caller id.
func (e *Encrypted) aad(header []byte, field, id string) []byte {
	b := make([]byte, 0, len(header)+len(e.purpose)+len(field)+len(id)+2*binary.MaxVarintLen64)
	b = append(b, header...)
	b = binary.AppendUvarint(b, uint64(len(e.purpose)))
	b = append(b, e.purpose...)
	b = binary.AppendUvarint(b, uint64(len(field)))
	b = append(b, field...)
	return append(b, id...)
}

// seal returns the envelope of plaintext for field of id.
func (e *Encrypted) seal(field, id, plaintext string) string {
	kid, aead := e.keys.currentAEAD()
	hlen := 2 + len(kid)
	out := make([]byte, hlen+nonceSize, hlen+nonceSize+len(plaintext)+tagSize)
	out[0] = envelopeVersion
	out[1] = byte(len(kid))
	copy(out[2:], kid)
	nonce := out[hlen : hlen+nonceSize]
	_, _ = rand.Read(nonce) // never fails (crypto/rand crashes the program instead)
	out = aead.Seal(out, nonce, []byte(plaintext), e.aad(out[:hlen], field, id))
	return string(out)
}

// parsedEnvelope is an envelope split into its parts.
type parsedEnvelope struct {
	header, nonce, ciphertext []byte
	keyID                     string
}

// parseEnvelope splits env. It never panics on any input; the error is a
// *DecryptError.
func parseEnvelope(field string, env []byte) (parsedEnvelope, error) {
	bad := func(kid, format string, args ...any) error {
		return &DecryptError{Field: field, KeyID: kid, Reason: fmt.Sprintf(format, args...), Err: ErrDecrypt}
	}
	if len(env) < minEnvelope {
		return parsedEnvelope{}, bad("", "envelope %d bytes < minimum %d", len(env), minEnvelope)
	}
	if env[0] != envelopeVersion {
		return parsedEnvelope{}, bad("", "envelope version %d, want %d", env[0], envelopeVersion)
	}
	n := int(env[1])
	if n == 0 {
		return parsedEnvelope{}, bad("", "envelope key id is empty")
	}
	hlen := 2 + n
	if len(env) < hlen+nonceSize+tagSize {
		return parsedEnvelope{}, bad("", "envelope %d bytes < %d for a %d-byte key id", len(env), hlen+nonceSize+tagSize, n)
	}
	return parsedEnvelope{
		header:     env[:hlen],
		keyID:      string(env[2:hlen]),
		nonce:      env[hlen : hlen+nonceSize],
		ciphertext: env[hlen+nonceSize:],
	}, nil
}

// open returns the plaintext of the envelope env for field of id.
func (e *Encrypted) open(field, id, env string) (string, error) {
	p, err := parseEnvelope(field, []byte(env))
	if err != nil {
		return "", err
	}
	aead, ok := e.keys.aead(p.keyID)
	if !ok {
		return "", &DecryptError{Field: field, KeyID: p.keyID, Reason: "key not in the key ring", Err: ErrUnknownKey}
	}
	pt, err := aead.Open(nil, p.nonce, p.ciphertext, e.aad(p.header, field, id))
	if err != nil {
		return "", &DecryptError{Field: field, KeyID: p.keyID,
			Reason: "authentication failed (wrong key, wrong id or altered data)", Err: ErrDecrypt}
	}
	return string(pt), nil
}

// Put implements Store: it validates rec, seals Credential and a non-empty
// AudioRef under the current key and stores the envelopes in the inner store.
func (e *Encrypted) Put(ctx context.Context, id string, rec Record) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := ValidateRecord(rec); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("credstore: put: %w", err)
	}
	rec.Credential = e.seal(fieldCredential, id, rec.Credential)
	if rec.AudioRef != "" {
		rec.AudioRef = e.seal(fieldAudioRef, id, rec.AudioRef)
	}
	return e.inner.Put(ctx, id, rec)
}

// Get implements Store: it reads the inner record and opens its envelopes.
// A value that cannot be opened gives a [*DecryptError], never a partial
// record.
func (e *Encrypted) Get(ctx context.Context, id string) (Record, error) {
	if err := ValidateID(id); err != nil {
		return Record{}, err
	}
	rec, err := e.inner.Get(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if rec.Credential, err = e.open(fieldCredential, id, rec.Credential); err != nil {
		return Record{}, err
	}
	if rec.AudioRef != "" {
		if rec.AudioRef, err = e.open(fieldAudioRef, id, rec.AudioRef); err != nil {
			return Record{}, err
		}
	}
	return rec, nil
}

// Delete implements Store.
func (e *Encrypted) Delete(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	return e.inner.Delete(ctx, id)
}

// Remove implements Remover when the wrapped Store does; otherwise it
// returns an error matching errors.ErrUnsupported and removes nothing.
func (e *Encrypted) Remove(ctx context.Context, id string) (bool, error) {
	if err := ValidateID(id); err != nil {
		return false, err
	}
	r, ok := e.inner.(Remover)
	if !ok {
		return false, fmt.Errorf("credstore: the wrapped store cannot report a delete: %w", errors.ErrUnsupported)
	}
	return r.Remove(ctx, id)
}

// Rewrap re-seals the record of id under the current key if any of its
// fields is sealed with another key, and reports whether it did. Use it to
// move records off a key before retiring it. It is a Get followed by a Put,
// not atomic: a Put to the same id between the two is overwritten with the
// older value, so run it when nothing else writes that id. The rewrite
// advances UpdatedAt.
func (e *Encrypted) Rewrap(ctx context.Context, id string) (bool, error) {
	if err := ValidateID(id); err != nil {
		return false, err
	}
	raw, err := e.inner.Get(ctx, id)
	if err != nil {
		return false, err
	}
	cur := e.keys.Current()
	stale := false
	for _, f := range []struct{ name, env string }{{fieldCredential, raw.Credential}, {fieldAudioRef, raw.AudioRef}} {
		if f.env == "" && f.name == fieldAudioRef {
			continue
		}
		p, err := parseEnvelope(f.name, []byte(f.env))
		if err != nil {
			return false, err
		}
		if p.keyID != cur {
			stale = true
		}
	}
	if !stale {
		return false, nil
	}
	rec, err := e.Get(ctx, id)
	if err != nil {
		return false, err
	}
	if err := e.Put(ctx, id, rec); err != nil {
		return false, err
	}
	return true, nil
}
