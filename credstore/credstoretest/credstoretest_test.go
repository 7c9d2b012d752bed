package credstoretest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/credstore"
	"github.com/voicegate/voicegate/credstore/credstoretest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestMemory(t *testing.T) {
	credstoretest.RunWith(t, func(t *testing.T) credstore.Store { return credstore.NewMemory() }, &credstoretest.Options{Remover: true})
}

// TestEncryptedMemory runs the code shown in ExampleRun.
func TestEncryptedMemory(t *testing.T) { testEncryptedMemory(t) }

// flawed is a map store with one deliberate flaw, used to prove that the
// suite notices it.
type flawed struct {
	flaw string
	mu   sync.Mutex
	recs map[string]credstore.Record
}

func (f *flawed) Put(ctx context.Context, id string, rec credstore.Record) error {
	if f.flaw != "lax-id" {
		if err := credstore.ValidateID(id); err != nil {
			return err
		}
	}
	if f.flaw != "no-limits" {
		if err := credstore.ValidateRecord(rec); err != nil {
			return err
		}
	}
	if f.flaw != "ignore-ctx" {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if f.flaw == "fold-case" {
		id = strings.ToLower(id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := time.Now().UTC()
	if f.flaw == "local-time" {
		t = t.Local()
	}
	rec.CreatedAt, rec.UpdatedAt = t, t
	if old, ok := f.recs[id]; ok {
		if f.flaw != "reset-created" {
			rec.CreatedAt = old.CreatedAt
		}
		if f.flaw == "merge" && rec.AudioRef == "" {
			rec.AudioRef = old.AudioRef
		}
	}
	f.recs[id] = rec
	return nil
}

func (f *flawed) Get(ctx context.Context, id string) (credstore.Record, error) {
	if f.flaw != "lax-id" {
		if err := credstore.ValidateID(id); err != nil {
			return credstore.Record{}, err
		}
	}
	if f.flaw != "ignore-ctx" {
		if err := ctx.Err(); err != nil {
			return credstore.Record{}, err
		}
	}
	if f.flaw == "fold-case" {
		id = strings.ToLower(id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.recs[id]
	if !ok {
		return credstore.Record{}, credstore.ErrNotFound
	}
	return rec, nil
}

// Remove implements credstore.Remover: flaw remove-unsupported answers
// errors.ErrUnsupported (while claiming Remover), remove-says-false
// removes but reports nothing removed.
func (f *flawed) Remove(ctx context.Context, id string) (bool, error) {
	if f.flaw == "remove-unsupported" {
		return false, errors.ErrUnsupported
	}
	f.mu.Lock()
	_, had := f.recs[id]
	f.mu.Unlock()
	if err := f.Delete(ctx, id); err != nil {
		return false, err
	}
	return had && f.flaw != "remove-says-false", nil
}

func (f *flawed) Delete(ctx context.Context, id string) error {
	if f.flaw != "lax-id" {
		if err := credstore.ValidateID(id); err != nil {
			return err
		}
	}
	if f.flaw != "ignore-ctx" {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if f.flaw == "fold-case" {
		id = strings.ToLower(id)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.recs[id]; !ok && f.flaw == "delete-not-found" {
		return credstore.ErrNotFound
	}
	delete(f.recs, id)
	return nil
}

const flawEnv = "CREDSTORETEST_FLAW"

// TestFlawedChild runs the suite against a flawed store; it only runs in a
// child process started by TestSuiteCatchesFlaws.
func TestFlawedChild(t *testing.T) {
	flaw := os.Getenv(flawEnv)
	if flaw == "" {
		t.Skip("runs only as a child of TestSuiteCatchesFlaws")
	}
	credstoretest.RunWith(t, func(t *testing.T) credstore.Store {
		return &flawed{flaw: flaw, recs: map[string]credstore.Record{}}
	}, &credstoretest.Options{Remover: true})
}

// TestSuiteCatchesFlaws checks that the suite fails, in the expected
// subtest, for each kind of broken store, and passes for the same store
// without a flaw.
func TestSuiteCatchesFlaws(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	cases := []struct {
		flaw     string
		wantFail []string // subtests that must fail; empty: the run must pass
	}{
		{"none", nil},
		{"fold-case", []string{"Independent", "HostileIDs"}},
		{"lax-id", []string{"HostileIDs"}},
		{"no-limits", []string{"LargeValues", "InvalidRecord"}},
		{"ignore-ctx", []string{"ContextCancelled"}},
		{"reset-created", []string{"Overwrite"}},
		{"merge", []string{"Overwrite"}},
		{"delete-not-found", []string{"Delete"}},
		{"local-time", []string{"RoundTrip"}},
		{"remove-unsupported", []string{"Remove"}},
		{"remove-says-false", []string{"Remove"}},
	}
	for _, c := range cases {
		t.Run(c.flaw, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestFlawedChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), flawEnv+"="+c.flaw)
			out, err := cmd.CombinedOutput()
			if len(c.wantFail) == 0 {
				if err != nil {
					t.Fatalf("suite failed on a correct store: %v\n%s", err, out)
				}
				if !strings.Contains(string(out), "--- PASS: TestFlawedChild/HostileIDs") {
					t.Fatalf("child did not run the suite:\n%s", out)
				}
				return
			}
			if err == nil {
				t.Fatalf("suite passed a store with flaw %q:\n%s", c.flaw, out)
			}
			for _, sub := range c.wantFail {
				if !strings.Contains(string(out), "--- FAIL: TestFlawedChild/"+sub) {
					t.Errorf("flaw %q: subtest %s did not fail:\n%s", c.flaw, sub, out)
				}
			}
		})
	}
}
