package credstore_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/voicegate/voicegate/credstore"
)

const (
	secretCred  = "das-peak-credential:eyJtIjoiaGFzaCIsInYiOiJ2b2ljZXByaW50In0="
	secretAudio = "s3://voice-enrolments/2026/11/+34600000000.wav"
)

func secretRecord() credstore.Record {
	return credstore.Record{Credential: secretCred, ModelHash: "model-hash-1", AudioRef: secretAudio}
}

func mustRing(t *testing.T, current credstore.Key, older ...credstore.Key) *credstore.Keyring {
	t.Helper()
	r, err := credstore.NewKeyring(current, older...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustEncrypted(t *testing.T, inner credstore.Store, ring *credstore.Keyring, opts *credstore.EncryptedOptions) *credstore.Encrypted {
	t.Helper()
	e, err := credstore.NewEncrypted(inner, ring, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// envelopeKeyID reads the key id from an envelope (layout version 1).
func envelopeKeyID(t *testing.T, env string) string {
	t.Helper()
	if len(env) < 2 || env[0] != 1 || len(env) < 2+int(env[1]) {
		t.Fatalf("not a version 1 envelope: %x", env)
	}
	return env[2 : 2+int(env[1])]
}

// wantDecryptError checks that err is a *DecryptError for field, with the
// given key id, matching ErrDecrypt and, when unknown is set, ErrUnknownKey.
func wantDecryptError(t *testing.T, err error, field, keyID string, unknown bool) {
	t.Helper()
	var de *credstore.DecryptError
	if !errors.As(err, &de) {
		t.Fatalf("error = %v (%T), want *DecryptError", err, err)
	}
	if !errors.Is(err, credstore.ErrDecrypt) {
		t.Errorf("errors.Is(%v, ErrDecrypt) = false", err)
	}
	if got := errors.Is(err, credstore.ErrUnknownKey); got != unknown {
		t.Errorf("errors.Is(%v, ErrUnknownKey) = %v, want %v", err, got, unknown)
	}
	if de.Field != field || de.KeyID != keyID {
		t.Errorf("DecryptError{Field: %q, KeyID: %q}, want {%q, %q}", de.Field, de.KeyID, field, keyID)
	}
	for _, leak := range []string{secretCred, secretAudio, "+34600000000"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error message leaks %q: %v", leak, err)
		}
	}
}

func TestEncryptedNoPlaintextAtRest(t *testing.T) {
	ctx := t.Context()
	inner := credstore.NewMemory()
	e := encrypt(t, inner)
	if err := e.Put(ctx, "+34600000000", secretRecord()); err != nil {
		t.Fatal(err)
	}
	raw, err := inner.Get(ctx, "+34600000000")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(raw.Credential, secretCred) || strings.Contains(raw.Credential, "das-peak") {
		t.Error("credential stored in clear")
	}
	if strings.Contains(raw.AudioRef, "voice-enrolments") {
		t.Error("audio ref stored in clear")
	}
	if raw.ModelHash != "model-hash-1" {
		t.Errorf("model hash = %q, want it in clear", raw.ModelHash)
	}
	if got, want := len(raw.Credential), len(secretCred)+2+len("k1")+12+16; got != want {
		t.Errorf("envelope %d bytes, want %d", got, want)
	}
	// Same plaintext, fresh nonce: a different envelope every time.
	if err := e.Put(ctx, "+34600000000", secretRecord()); err != nil {
		t.Fatal(err)
	}
	raw2, _ := inner.Get(ctx, "+34600000000")
	if raw2.Credential == raw.Credential || raw2.AudioRef == raw.AudioRef {
		t.Error("re-sealing the same plaintext gave the same envelope (nonce reuse)")
	}
	// A record without audio ref keeps it empty.
	if err := e.Put(ctx, "noaudio", credstore.Record{Credential: "c"}); err != nil {
		t.Fatal(err)
	}
	raw3, _ := inner.Get(ctx, "noaudio")
	if raw3.AudioRef != "" {
		t.Errorf("empty audio ref stored as %d bytes", len(raw3.AudioRef))
	}
}

// TestEncryptedAtRestSQLite checks the database file itself, not only the
// column values: no plaintext credential anywhere on disk.
func TestEncryptedAtRestSQLite(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := dir + "/at-rest.db"
	db := openSQLiteFile(t, path)
	s := newSQLStore(t, db, credstore.SQLite)
	e := encrypt(t, s)
	for i := range 50 {
		if err := e.Put(ctx, fmt.Sprint("+3460000000", i), secretRecord()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal"} {
		b, err := readFileIfExists(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("das-peak")) || bytes.Contains(b, []byte("voice-enrolments")) {
			t.Errorf("%s holds plaintext", f)
		}
		if f == path && !bytes.Contains(b, []byte("model-hash-1")) {
			t.Errorf("%s: model hash not found; is this the right file?", f)
		}
	}
}

func TestCiphertextMovedToAnotherID(t *testing.T) {
	ctx := t.Context()
	t.Run("memory", func(t *testing.T) {
		inner := credstore.NewMemory()
		e := encrypt(t, inner)
		if err := e.Put(ctx, "+34600000000", secretRecord()); err != nil {
			t.Fatal(err)
		}
		raw, _ := inner.Get(ctx, "+34600000000")
		if err := inner.Put(ctx, "+34600000001", raw); err != nil {
			t.Fatal(err)
		}
		_, err := e.Get(ctx, "+34600000001")
		wantDecryptError(t, err, "credential", "k1", false)
		// The original still opens.
		if rec, err := e.Get(ctx, "+34600000000"); err != nil || rec.Credential != secretCred {
			t.Fatalf("original: %v", err)
		}
	})
	t.Run("sqlite", func(t *testing.T) {
		db := openSQLite(t)
		s := newSQLStore(t, db, credstore.SQLite)
		e := encrypt(t, s)
		if err := e.Put(ctx, "+34600000000", secretRecord()); err != nil {
			t.Fatal(err)
		}
		// An attacker with write access to the table copies the row.
		q := `INSERT INTO "` + s.Table() + `" SELECT '+34600000001', credential, model_hash, audio_ref, created_at, updated_at FROM "` +
			s.Table() + `" WHERE id = '+34600000000'`
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
		_, err := e.Get(ctx, "+34600000001")
		wantDecryptError(t, err, "credential", "k1", false)
	})
	t.Run("swapped fields", func(t *testing.T) {
		inner := credstore.NewMemory()
		e := encrypt(t, inner)
		if err := e.Put(ctx, "+34600000000", secretRecord()); err != nil {
			t.Fatal(err)
		}
		raw, _ := inner.Get(ctx, "+34600000000")
		raw.Credential, raw.AudioRef = raw.AudioRef, raw.Credential
		if err := inner.Put(ctx, "+34600000000", raw); err != nil {
			t.Fatal(err)
		}
		_, err := e.Get(ctx, "+34600000000")
		wantDecryptError(t, err, "credential", "k1", false)
	})
	t.Run("other purpose", func(t *testing.T) {
		inner := credstore.NewMemory()
		ring := mustRing(t, testKey("k1"))
		a := mustEncrypted(t, inner, ring, &credstore.EncryptedOptions{Purpose: "tenant-a"})
		b := mustEncrypted(t, inner, ring, &credstore.EncryptedOptions{Purpose: "tenant-b"})
		if err := a.Put(ctx, "+34600000000", secretRecord()); err != nil {
			t.Fatal(err)
		}
		_, err := b.Get(ctx, "+34600000000")
		wantDecryptError(t, err, "credential", "k1", false)
	})
}

func TestWrongKey(t *testing.T) {
	ctx := t.Context()
	inner := credstore.NewMemory()
	w := mustEncrypted(t, inner, mustRing(t, testKey("k1")), nil)
	// Same id "k1", different secret: a misconfigured deployment.
	r := mustEncrypted(t, inner, mustRing(t, testKey("k1")), nil)
	if err := w.Put(ctx, "+34600000000", secretRecord()); err != nil {
		t.Fatal(err)
	}
	rec, err := r.Get(ctx, "+34600000000")
	wantDecryptError(t, err, "credential", "k1", false)
	if rec != (credstore.Record{}) {
		t.Errorf("Get returned a record with the error: %+v", rec)
	}
}

func TestKeyRotation(t *testing.T) {
	ctx := t.Context()
	inner := credstore.NewMemory()
	k1, k2 := testKey("2026-01"), testKey("2026-07")
	ring := mustRing(t, k1)
	e := mustEncrypted(t, inner, ring, nil)
	for _, id := range []string{"a", "b", "c"} {
		if err := e.Put(ctx, id, secretRecord()); err != nil {
			t.Fatal(err)
		}
	}
	if err := ring.Rotate(k2); err != nil {
		t.Fatal(err)
	}
	if ring.Current() != k2.ID || strings.Join(ring.IDs(), ",") != "2026-01,2026-07" {
		t.Fatalf("after Rotate: current %q, ids %v", ring.Current(), ring.IDs())
	}
	// Old records still open with the old key.
	for _, id := range []string{"a", "b", "c"} {
		rec, err := e.Get(ctx, id)
		if err != nil || rec.Credential != secretCred || rec.AudioRef != secretAudio {
			t.Fatalf("Get(%s) after rotation: %+v, %v", id, rec, err)
		}
	}
	// New writes use the new key.
	if err := e.Put(ctx, "d", secretRecord()); err != nil {
		t.Fatal(err)
	}
	raw, _ := inner.Get(ctx, "d")
	if got := envelopeKeyID(t, raw.Credential); got != k2.ID {
		t.Errorf("new write sealed with %q, want %q", got, k2.ID)
	}
	raw, _ = inner.Get(ctx, "a")
	if got := envelopeKeyID(t, raw.Credential); got != k1.ID {
		t.Errorf("old record sealed with %q, want %q", got, k1.ID)
	}
	// Rewrap moves a and b to the new key; c stays on the old one.
	for _, id := range []string{"a", "b"} {
		if did, err := e.Rewrap(ctx, id); err != nil || !did {
			t.Fatalf("Rewrap(%s) = %v, %v; want true, nil", id, did, err)
		}
	}
	if did, err := e.Rewrap(ctx, "a"); err != nil || did {
		t.Errorf("second Rewrap(a) = %v, %v; want false, nil", did, err)
	}
	if did, err := e.Rewrap(ctx, "d"); err != nil || did {
		t.Errorf("Rewrap of a current record = %v, %v; want false, nil", did, err)
	}
	if _, err := e.Rewrap(ctx, "missing"); !errors.Is(err, credstore.ErrNotFound) {
		t.Errorf("Rewrap(missing) = %v, want ErrNotFound", err)
	}
	raw, _ = inner.Get(ctx, "a")
	if envelopeKeyID(t, raw.Credential) != k2.ID || envelopeKeyID(t, raw.AudioRef) != k2.ID {
		t.Error("Rewrap did not re-seal both fields with the current key")
	}
	// Retire the old key: c, still sealed with it, now fails with a typed
	// error naming the key.
	if err := ring.Retire(k1.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "d"} {
		if rec, err := e.Get(ctx, id); err != nil || rec.Credential != secretCred {
			t.Errorf("Get(%s) after retiring the old key: %v", id, err)
		}
	}
	_, err := e.Get(ctx, "c")
	wantDecryptError(t, err, "credential", k1.ID, true)
	if _, err := e.Rewrap(ctx, "c"); !errors.Is(err, credstore.ErrUnknownKey) {
		t.Errorf("Rewrap with a retired key = %v, want ErrUnknownKey", err)
	}
	// Bringing the old key back (e.g. from backup) makes c readable again.
	if err := ring.Add(k1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Get(ctx, "c"); err != nil {
		t.Errorf("Get(c) with the key restored: %v", err)
	}
}

func TestUnknownKeyAudioRef(t *testing.T) {
	ctx := t.Context()
	inner := credstore.NewMemory()
	k1 := testKey("k1")
	e1 := mustEncrypted(t, inner, mustRing(t, k1), nil)
	if err := e1.Put(ctx, "x", secretRecord()); err != nil {
		t.Fatal(err)
	}
	// Credential re-sealed with k2, audio ref still on k1 (as after an
	// interrupted migration); a ring with only k2 must fail on the audio
	// ref, not return a half-decrypted record.
	k2 := testKey("k2")
	both := mustEncrypted(t, inner, mustRing(t, k2, k1), nil)
	old, _ := inner.Get(ctx, "x")
	if err := both.Put(ctx, "x", credstore.Record{Credential: secretCred}); err != nil {
		t.Fatal(err)
	}
	mixed, _ := inner.Get(ctx, "x")
	mixed.AudioRef = old.AudioRef // k1
	if err := inner.Put(ctx, "x", mixed); err != nil {
		t.Fatal(err)
	}
	if rec, err := both.Get(ctx, "x"); err != nil || rec.AudioRef != secretAudio {
		t.Fatalf("mixed-key record with both keys: %v", err)
	}
	only2 := mustEncrypted(t, inner, mustRing(t, k2), nil)
	rec, err := only2.Get(ctx, "x")
	wantDecryptError(t, err, "audio_ref", "k1", true)
	if rec != (credstore.Record{}) {
		t.Errorf("partial record returned with the error: %+v", rec)
	}
}

// TestTamper flips every bit of an envelope and truncates it at every
// length: each variant must fail with ErrDecrypt, never open.
func TestTamper(t *testing.T) {
	ctx := t.Context()
	inner := credstore.NewMemory()
	e := encrypt(t, inner)
	if err := e.Put(ctx, "id", credstore.Record{Credential: "short secret"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := inner.Get(ctx, "id")
	env := []byte(raw.Credential)
	check := func(name string, v []byte) {
		t.Helper()
		if len(v) == 0 {
			return // not storable: the inner store rejects an empty credential
		}
		r := raw
		r.Credential = string(v)
		if err := inner.Put(ctx, "id", r); err != nil {
			t.Fatal(err)
		}
		rec, err := e.Get(ctx, "id")
		if !errors.Is(err, credstore.ErrDecrypt) {
			t.Fatalf("%s: Get = %+v, %v; want ErrDecrypt", name, rec, err)
		}
	}
	for i := range env {
		for bit := range 8 {
			v := bytes.Clone(env)
			v[i] ^= 1 << bit
			check(fmt.Sprintf("byte %d bit %d", i, bit), v)
		}
	}
	for n := range len(env) {
		check(fmt.Sprintf("truncated to %d", n), env[:n])
	}
	check("extended", append(bytes.Clone(env), 0))
	check("plaintext", []byte("short secret"))
}

func TestKeyringValidation(t *testing.T) {
	good := testKey("k")
	bad := []struct {
		name string
		key  credstore.Key
	}{
		{"empty id", credstore.Key{Secret: good.Secret}},
		{"long id", credstore.Key{ID: strings.Repeat("k", credstore.MaxKeyIDLen+1), Secret: good.Secret}},
		{"nil secret", credstore.Key{ID: "k"}},
		{"16-byte secret", credstore.Key{ID: "k", Secret: make([]byte, 16)}},
		{"31-byte secret", credstore.Key{ID: "k", Secret: make([]byte, 31)}},
		{"33-byte secret", credstore.Key{ID: "k", Secret: make([]byte, 33)}},
	}
	for _, b := range bad {
		_, err := credstore.NewKeyring(b.key)
		if !errors.Is(err, credstore.ErrInvalidKey) {
			t.Errorf("NewKeyring(%s) = %v, want ErrInvalidKey", b.name, err)
		}
		if err != nil && len(b.key.Secret) > 0 && strings.Contains(err.Error(), hex.EncodeToString(b.key.Secret)) {
			t.Errorf("error leaks the secret: %v", err)
		}
	}
	if _, err := credstore.NewKeyring(credstore.Key{ID: strings.Repeat("k", credstore.MaxKeyIDLen), Secret: good.Secret}); err != nil {
		t.Errorf("NewKeyring with a %d-byte id: %v", credstore.MaxKeyIDLen, err)
	}
	if _, err := credstore.NewKeyring(good, testKey("k")); !errors.Is(err, credstore.ErrInvalidKey) {
		t.Errorf("duplicate id = %v, want ErrInvalidKey", err)
	}
	ring := mustRing(t, good, testKey("old"))
	for name, err := range map[string]error{
		"Retire current":     ring.Retire("k"),
		"Retire unknown":     ring.Retire("nope"),
		"SetCurrent unknown": ring.SetCurrent("nope"),
		"Add duplicate":      ring.Add(testKey("old")),
		"Rotate to existing": ring.Rotate(testKey("old")),
	} {
		if !errors.Is(err, credstore.ErrInvalidKey) {
			t.Errorf("%s = %v, want ErrInvalidKey", name, err)
		}
	}
	if ring.Current() != "k" {
		t.Errorf("failed operations changed the current key to %q", ring.Current())
	}
	if err := ring.SetCurrent("old"); err != nil || ring.Current() != "old" {
		t.Errorf("SetCurrent(old) = %v, current %q", err, ring.Current())
	}
	if err := ring.Retire("k"); err != nil {
		t.Errorf("Retire(k) after SetCurrent(old) = %v", err)
	}
	if _, err := credstore.NewEncrypted(credstore.NewMemory(), nil, nil); !errors.Is(err, credstore.ErrInvalidKey) {
		t.Errorf("NewEncrypted(nil ring) = %v", err)
	}
	if _, err := credstore.NewEncrypted(nil, ring, nil); err == nil {
		t.Error("NewEncrypted(nil inner) succeeded")
	}
	// The ring does not keep the caller's secret slice.
	k := testKey("mutable")
	r2 := mustRing(t, k)
	e := mustEncrypted(t, credstore.NewMemory(), r2, nil)
	if err := e.Put(t.Context(), "id", credstore.Record{Credential: "c"}); err != nil {
		t.Fatal(err)
	}
	clear(k.Secret)
	if rec, err := e.Get(t.Context(), "id"); err != nil || rec.Credential != "c" {
		t.Errorf("Get after the caller zeroed its secret: %v", err)
	}
}

// TestRotationUnderLoad rotates keys while writers and readers run; with
// no key retired, every Get must succeed.
func TestRotationUnderLoad(t *testing.T) {
	ctx := t.Context()
	ring := mustRing(t, testKey("k0"))
	e := mustEncrypted(t, credstore.NewMemory(), ring, nil)
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("caller-", w)
			for i := range 200 {
				want := credstore.Record{Credential: fmt.Sprint(id, "-", i), AudioRef: "ref"}
				if err := e.Put(ctx, id, want); err != nil {
					errc <- err
					return
				}
				got, err := e.Get(ctx, id)
				if err != nil {
					errc <- err
					return
				}
				if got.Credential != want.Credential {
					errc <- fmt.Errorf("%s: got %q want %q", id, got.Credential, want.Credential)
					return
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		if err := ring.Rotate(testKey(fmt.Sprint("k", i))); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// FuzzEncryptedGet feeds arbitrary stored bytes to the decryption path: it
// must never panic and never return a record.
func FuzzEncryptedGet(f *testing.F) {
	ring, err := credstore.NewKeyring(credstore.Key{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		f.Fatal(err)
	}
	inner := credstore.NewMemory()
	e, err := credstore.NewEncrypted(inner, ring, nil)
	if err != nil {
		f.Fatal(err)
	}
	if err := e.Put(context.Background(), "id", credstore.Record{Credential: "seed", AudioRef: "ref"}); err != nil {
		f.Fatal(err)
	}
	raw, _ := inner.Get(context.Background(), "id")
	f.Add([]byte(raw.Credential), []byte(raw.AudioRef))
	f.Add([]byte(raw.Credential[:20]), []byte(nil))
	f.Add([]byte("\x01\xffk1"), []byte(nil))
	f.Add([]byte("\x02\x02k1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), []byte("x"))
	f.Add([]byte("\x01\x00aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), []byte(nil))
	f.Add([]byte("\x01\x02k2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), []byte(raw.AudioRef))
	f.Fuzz(func(t *testing.T, cred, aref []byte) {
		if len(cred) == 0 || len(cred) > credstore.MaxCredentialSize || len(aref) > credstore.MaxAudioRefLen {
			return
		}
		if err := inner.Put(context.Background(), "fuzz", credstore.Record{Credential: string(cred), AudioRef: string(aref)}); err != nil {
			t.Fatal(err)
		}
		rec, err := e.Get(context.Background(), "fuzz")
		if err == nil {
			t.Fatalf("arbitrary bytes opened as %+v", rec)
		}
		if !errors.Is(err, credstore.ErrDecrypt) {
			t.Fatalf("error %v does not match ErrDecrypt", err)
		}
		if rec != (credstore.Record{}) {
			t.Fatalf("record returned with error: %+v", rec)
		}
	})
}

// withoutRemove hides credstore.Remover: a Store that cannot say whether
// a delete removed a record.
type withoutRemove struct{ credstore.Store }

// TestEncryptedRemoveFallback: an Encrypted over a store without
// credstore.Remover answers Remove with errors.ErrUnsupported and removes
// nothing, so its caller falls back to Delete, which works; over a store
// with it, Remove reports what it removed.
func TestEncryptedRemoveFallback(t *testing.T) {
	ctx := context.Background()
	rec := credstore.Record{Credential: "c", ModelHash: "m"}
	plain := encrypt(t, withoutRemove{credstore.NewMemory()})
	if err := plain.Put(ctx, "id-1", rec); err != nil {
		t.Fatal(err)
	}
	if removed, err := plain.Remove(ctx, "id-1"); !errors.Is(err, errors.ErrUnsupported) || removed {
		t.Fatalf("Remove over a store without it = %v, %v; want false, ErrUnsupported", removed, err)
	}
	if _, err := plain.Get(ctx, "id-1"); err != nil {
		t.Fatalf("the unsupported Remove removed the record: %v", err)
	}
	if _, err := plain.Remove(ctx, ""); !errors.Is(err, credstore.ErrInvalidID) {
		t.Fatalf("Remove of an empty id = %v, want ErrInvalidID", err)
	}
	if err := plain.Delete(ctx, "id-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Get(ctx, "id-1"); !errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("after the fallback Delete: %v", err)
	}

	with := encrypt(t, credstore.NewMemory())
	if err := with.Put(ctx, "id-1", rec); err != nil {
		t.Fatal(err)
	}
	if removed, err := with.Remove(ctx, "id-1"); err != nil || !removed {
		t.Fatalf("Remove over a Remover = %v, %v; want true, nil", removed, err)
	}
	if removed, err := with.Remove(ctx, "id-1"); err != nil || removed {
		t.Fatalf("second Remove = %v, %v; want false, nil", removed, err)
	}
}
