package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/credstore/credstoretest"
	"github.com/voicegate/voicegate/daspeak"
)

var testAudioKey = []byte("0123456789abcdef0123456789abcdef")

func TestCredentialStore(t *testing.T) {
	ctx := context.Background()
	for _, spec := range []string{"memory", "sqlite:" + filepath.Join(t.TempDir(), "c.db")} {
		for _, key := range []string{"", base64.StdEncoding.EncodeToString(make([]byte, 32))} {
			t.Run(strings.SplitN(spec, ":", 2)[0]+"/encrypted="+map[bool]string{true: "yes", false: "no"}[key != ""], func(t *testing.T) {
				store, closeFn, err := OpenStore(ctx, spec, key)
				if err != nil {
					t.Fatal(err)
				}
				defer closeFn()
				dir := t.TempDir()
				cs := &CredentialStore{Store: store, AudioDir: dir, AudioKey: testAudioKey}
				var _ daspeak.CredentialStore = cs
				const id = "+34600000000"
				if err := cs.StoreCredential(ctx, id, "cred-1", "model-1", []byte("RIFF-audio")); err != nil {
					t.Fatal(err)
				}
				// Upsert: a retry after a failure overwrites.
				if err := cs.StoreCredential(ctx, id, "cred-2", "model-1", []byte("RIFF-audio-2")); err != nil {
					t.Fatal(err)
				}
				rec, err := cs.Get(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				// The name is the keyed HMAC, not the unkeyed hash.
				if rec.Credential != "cred-2" || rec.ModelHash != "model-1" || rec.AudioRef != cs.audioName(id) || rec.AudioRef == legacyAudioName(id) {
					t.Fatalf("record %+v", rec)
				}
				b, err := os.ReadFile(filepath.Join(dir, rec.AudioRef))
				if err != nil || string(b) != "RIFF-audio-2" {
					t.Fatalf("audio file: %q %v", b, err)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 1 {
					t.Fatalf("temporary files left: %v", ents)
				}
				if err := cs.StoreCredential(ctx, "", "c", "m", nil); !errors.Is(err, credstore.ErrInvalidID) {
					t.Fatalf("empty id: %v", err)
				}
				// Delete removes the record and every copy of the audio,
				// including a file under the old unkeyed name.
				legacy := filepath.Join(dir, legacyAudioName(id))
				if err := os.WriteFile(legacy, []byte("old"), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := cs.Delete(ctx, id); err != nil {
					t.Fatal(err)
				}
				if _, err := cs.Get(ctx, id); !errors.Is(err, credstore.ErrNotFound) {
					t.Fatalf("record after delete: %v", err)
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Fatalf("files after delete: %v", ents)
				}
				if err := cs.Delete(ctx, id); err != nil {
					t.Fatalf("second delete: %v", err)
				}
			})
		}
	}
	for _, c := range []struct{ spec, key string }{{"postgres:x", ""}, {"sqlite:", ""}, {"memory", "not base64!"}, {"memory", "AAAA"}} {
		if _, _, err := OpenStore(ctx, c.spec, c.key); err == nil {
			t.Errorf("OpenStore(%q, %q) succeeded", c.spec, c.key)
		}
	}
}

// TestOpenStoreFolder: a sqlite: store whose folder does not exist (or is
// a file) fails before SQLite is asked, with an error that names the
// folder and the fix instead of SQLite's "out of memory (14)"; nothing is
// created.
func TestOpenStoreFolder(t *testing.T) {
	ctx := context.Background()
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(base, "no-such-folder")
	for _, c := range []struct {
		name, spec string
		want       []string
	}{
		{"missing folder", "sqlite:" + filepath.Join(missing, "creds.db"),
			[]string{`folder "` + missing + `" does not exist`, "mkdir -p " + missing, "-store"}},
		{"missing nested folder", "sqlite:" + filepath.Join(missing, "a", "creds.db"),
			[]string{"does not exist", "mkdir -p " + filepath.Join(missing, "a")}},
		{"a file, not a folder", "sqlite:" + filepath.Join(file, "creds.db"),
			[]string{`"` + file + `" is not a folder`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := OpenStore(ctx, c.spec, "")
			if err == nil {
				t.Fatal("opened")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "out of memory") {
				t.Errorf("SQLite's error: %v", err)
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the folder was created: %v", err)
	}
	// A relative path in the working directory has the folder ".".
	t.Chdir(base)
	store, closeFn, err := OpenStore(ctx, "sqlite:creds.db", "")
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if _, err := store.Get(ctx, "+34600000000"); !errors.Is(err, credstore.ErrNotFound) {
		t.Fatal(err)
	}
}

// TestAudioNames checks that enrolment audio names are keyed: they are not
// the unkeyed hash of the number (which anyone could reverse by hashing
// every number), and another key gives other names.
func TestAudioNames(t *testing.T) {
	a := &CredentialStore{Store: credstore.NewMemory(), AudioDir: "x", AudioKey: testAudioKey}
	b := &CredentialStore{Store: credstore.NewMemory(), AudioDir: "x", AudioKey: []byte("another key of sixteen+ bytes")}
	id := "+34600000000"
	sum := sha256.Sum256([]byte(id))
	unkeyed := hex.EncodeToString(sum[:16]) + ".wav"
	if a.audioName(id) == unkeyed || a.audioName(id) == b.audioName(id) || a.audioName(id) == a.audioName("+34600000001") {
		t.Fatalf("names %s %s", a.audioName(id), b.audioName(id))
	}
	if len(a.audioName(id)) != 36 || !strings.HasSuffix(a.audioName(id), ".wav") {
		t.Fatalf("name %q", a.audioName(id))
	}
	if legacyAudioName(id) != unkeyed {
		t.Fatal("legacy name")
	}
	for _, c := range []*CredentialStore{
		nil,
		{},
		{Store: credstore.NewMemory(), AudioDir: "x"},
		{Store: credstore.NewMemory(), AudioDir: "x", AudioKey: []byte("short")},
	} {
		err := c.StoreCredential(context.Background(), id, "c", "m", []byte("a"))
		if err == nil {
			t.Errorf("%+v stored", c)
		}
		if c != nil && c.AudioDir != "" && !errors.Is(err, ErrAudioKey) {
			t.Errorf("%+v: %v", c, err)
		}
	}
	if k, err := base64.StdEncoding.DecodeString(NewAudioKey()); err != nil || len(k) != 32 {
		t.Fatalf("NewAudioKey: %d bytes, %v", len(k), err)
	}
	if a, b := NewAudioKey(), NewAudioKey(); a == b {
		t.Fatalf("NewAudioKey twice: %q", a)
	}
}

// TestCredentialStoreFailures checks that a failed audio write stores no
// record, that a failed record write leaves no credential, that Delete
// keeps the record when the audio cannot be removed, and that a record
// cannot make Delete remove files outside AudioDir.
func TestCredentialStoreFailures(t *testing.T) {
	ctx := context.Background()
	const id = "+34600000000"
	mem := credstore.NewMemory()
	cs := &CredentialStore{Store: mem, AudioDir: filepath.Join(t.TempDir(), "missing"), AudioKey: testAudioKey}
	if err := cs.StoreCredential(ctx, id, "c", "m", []byte("RIFF")); err == nil {
		t.Fatal("audio write into a missing directory succeeded")
	}
	if mem.Len() != 0 {
		t.Fatal("record stored without its audio")
	}

	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "keep.wav")
	if err := os.WriteFile(outside, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cs = &CredentialStore{Store: mem, AudioDir: dir, AudioKey: testAudioKey}
	for _, ref := range []string{outside, "../" + filepath.Base(filepath.Dir(outside)) + "/keep.wav", ".", ".."} {
		if err := mem.Put(ctx, id, credstore.Record{Credential: "c", AudioRef: ref}); err != nil {
			t.Fatal(err)
		}
		if err := cs.Delete(ctx, id); err != nil {
			t.Fatalf("delete with AudioRef %q: %v", ref, err)
		}
		if _, err := os.Stat(outside); err != nil {
			t.Fatalf("AudioRef %q removed a file outside AudioDir", ref)
		}
	}

	// A file that cannot be removed (a non-empty directory under the
	// caller's name) keeps the record so a retry finds it.
	if err := cs.StoreCredential(ctx, id, "c", "m", []byte("RIFF")); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, legacyAudioName(id))
	if err := os.MkdirAll(filepath.Join(p, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := cs.Delete(ctx, id); err == nil {
		t.Fatal("delete succeeded with a file it could not remove")
	}
	if _, err := mem.Get(ctx, id); err != nil {
		t.Fatalf("record gone after a failed delete: %v", err)
	}
}

func TestStoreConfig(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audio")
	t.Setenv("CREDSTORE", "sqlite:"+filepath.Join(t.TempDir(), "c.db"))
	t.Setenv("CREDSTORE_KEY", base64.StdEncoding.EncodeToString(make([]byte, 32)))
	t.Setenv("ENROLMENT_AUDIO_DIR", dir)
	t.Setenv("ENROLMENT_AUDIO_KEY", NewAudioKey())
	var c StoreConfig
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	c.Flags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if fs.Lookup("store-key") != nil || fs.Lookup("audio-key") != nil {
		t.Fatal("keys must not be flags")
	}
	cs, closeFn, err := c.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if err := cs.StoreCredential(context.Background(), "+34600000000", "c", "m", []byte("RIFF")); err != nil {
		t.Fatal(err)
	}
	if _, ok := cs.Store.(*credstore.Encrypted); !ok || len(cs.AudioKey) != 32 {
		t.Fatalf("store %T, key %d bytes", cs.Store, len(cs.AudioKey))
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("audio dir %v", ents)
	}
	for _, key := range []string{"", "c2hvcnQ=", "not base64"} {
		c := StoreConfig{Spec: "memory", AudioDir: dir, AudioKey: key}
		if _, _, err := c.Open(context.Background()); !errors.Is(err, ErrAudioKey) {
			t.Errorf("audio key %q: %v", key, err)
		}
	}
	if _, _, err := (StoreConfig{Spec: "nope"}).Open(context.Background()); err == nil {
		t.Error("bad spec accepted")
	}
}

// sqliteFiles returns the bytes of the SQLite database at path and of
// every journal file next to it, keyed by file name.
func sqliteFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, suf := range sqliteSuffixes {
		b, err := os.ReadFile(path + suf)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(path+suf)] = b
	}
	return out
}

// TestOpenStoreErases: after a delete, or a put that replaces a record,
// returns, no copy of the old record is left in the SQLite database file
// or its journals (in WAL mode the -wal file kept the deleted caller id
// and model hash until a checkpoint, and the database file kept deleted
// rows in free space). The store stays open while the files are read,
// as in a running server; it is checked again after closing. An existing
// WAL database is switched to the rollback journal.
func TestOpenStoreErases(t *testing.T) {
	ctx := context.Background()
	const (
		gone      = "+34600000000"
		kept      = "+34600000001"
		oldCred   = "OLD-CREDENTIAL-2f9c"
		goneCred  = "GONE-CREDENTIAL-7a1d"
		goneModel = "GONE-MODEL-HASH-51e0"
	)
	for _, existingWAL := range []bool{false, true} {
		t.Run(map[bool]string{false: "new", true: "existing-wal"}[existingWAL], func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "creds.db")
			if existingWAL {
				db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
				if err != nil {
					t.Fatal(err)
				}
				if err := credstore.Migrate(ctx, db, credstore.SQLite, nil); err != nil {
					t.Fatal(err)
				}
				db.Close()
			}
			store, closeFn, err := OpenStore(ctx, "sqlite:"+path, "")
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			cs := &CredentialStore{Store: store}
			for i := 0; i < 20; i++ {
				if err := cs.StoreCredential(ctx, fmt.Sprintf("+3461000%04d", i), "credential", "model", nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := cs.StoreCredential(ctx, gone, goneCred, goneModel, nil); err != nil {
				t.Fatal(err)
			}
			if err := cs.StoreCredential(ctx, kept, oldCred, "model", nil); err != nil {
				t.Fatal(err)
			}
			// Replaced by a shorter credential, so the cell moves.
			if err := cs.StoreCredential(ctx, kept, "NEW", "model", nil); err != nil {
				t.Fatal(err)
			}
			if err := cs.Delete(ctx, gone); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.Get(ctx, gone); !errors.Is(err, credstore.ErrNotFound) {
				t.Fatalf("Get after Delete: %v", err)
			}
			check := func(when string) {
				files := sqliteFiles(t, path)
				if _, ok := files["creds.db"]; !ok {
					t.Fatalf("%s: no database file", when)
				}
				for name, b := range files {
					for _, s := range []string{gone, goneCred, goneModel, oldCred} {
						if n := bytes.Count(b, []byte(s)); n > 0 {
							t.Errorf("%s: %s holds %q %d times", when, name, s, n)
						}
					}
				}
				if _, ok := files["creds.db-wal"]; ok {
					t.Errorf("%s: the database is in WAL mode", when)
				}
			}
			check("open")
			if err := closeFn(); err != nil {
				t.Fatal(err)
			}
			check("closed")
		})
	}
}

// TestOpenStoreConformance runs the credstore conformance suite (with its
// concurrent writers and readers) on the SQLite store OpenStore opens: the
// rollback journal must not turn concurrent use into SQLITE_BUSY errors.
func TestOpenStoreConformance(t *testing.T) {
	credstoretest.RunWith(t, func(t *testing.T) credstore.Store {
		store, closeFn, err := OpenStore(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "creds.db"), "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { closeFn() })
		return store
	}, &credstoretest.Options{Remover: true})
}
