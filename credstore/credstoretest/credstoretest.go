// Package credstoretest is the conformance suite for credstore.Store
// implementations.
//
// Call [Run] from a test with a function that returns a fresh, empty store:
//
//	func TestConformance(t *testing.T) {
//		credstoretest.Run(t, func(t *testing.T) credstore.Store {
//			return credstore.NewMemory()
//		})
//	}
//
// Run it with -race: one of the checks drives concurrent writers and
// readers. The suite checks the contract written on credstore.Store: round
// trips that keep every byte, ErrNotFound, upsert with CreatedAt kept and
// UpdatedAt advanced, Delete semantics, atomic records under concurrency,
// context cancellation, size limits, and the id rules of
// credstore.ValidateID against hostile ids. It expects timestamps with at
// least millisecond precision and a store clock within a second of the test
// process's clock.
package credstoretest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/voicegate/voicegate/credstore"
)

// clockTolerance bounds how far a store's timestamps may be from the test
// process's clock, which covers stores whose database sets the time.
const clockTolerance = time.Second

// Run runs the conformance suite as subtests of t. newStore is called once
// per subtest and must return an empty store; it should register any
// cleanup (closing connections, dropping tables) with t.Cleanup on the t it
// is given. Run is RunWith with nil Options.
func Run(t *testing.T, newStore func(t *testing.T) credstore.Store) {
	t.Helper()
	RunWith(t, newStore, nil)
}

// Options are what a store claims beyond credstore.Store. The zero value
// claims nothing.
type Options struct {
	// Remover: the store implements credstore.Remover and supports it
	// (Remove never answers errors.ErrUnsupported). The built-in stores
	// (Memory, SQL, and an Encrypted over either) do. Without it, a
	// store's Remove is still checked when it supports it, and one that
	// answers errors.ErrUnsupported must remove nothing.
	Remover bool
}

// RunWith is Run for a store that claims what opts says (nil: nothing).
func RunWith(t *testing.T, newStore func(t *testing.T) credstore.Store, opts *Options) {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s credstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"NotFound", testNotFound},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"Remove", func(t *testing.T, s credstore.Store) { testRemove(t, s, o.Remover) }},
		{"Independent", testIndependent},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ContextCancelled", testContextCancelled},
		{"LargeValues", testLargeValues},
		{"InvalidRecord", testInvalidRecord},
		{"HostileIDs", testHostileIDs},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			tc.fn(t, s)
		})
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sample returns a record whose fields all derive from tag, so a record
// assembled from two different Puts is detectable.
func sample(tag string) credstore.Record {
	return credstore.Record{
		Credential: "cred\x00\xff:" + tag,
		ModelHash:  "model-" + tag,
		AudioRef:   "s3://bucket/enrol/" + tag + ".wav",
	}
}

// sameData reports a difference in the stored fields (not timestamps) of
// got and want, without printing large values in full.
func sameData(got, want credstore.Record) error {
	for _, f := range []struct{ name, got, want string }{
		{"Credential", got.Credential, want.Credential},
		{"ModelHash", got.ModelHash, want.ModelHash},
		{"AudioRef", got.AudioRef, want.AudioRef},
	} {
		if f.got != f.want {
			return fmt.Errorf("%s differs: %s", f.name, describeDiff(f.got, f.want))
		}
	}
	return nil
}

func describeDiff(got, want string) string {
	if len(got) <= 64 && len(want) <= 64 {
		return fmt.Sprintf("got %q, want %q", got, want)
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	return fmt.Sprintf("got %d bytes, want %d bytes, first difference at byte %d", len(got), len(want), i)
}

// checkTimes checks that rec's timestamps are UTC and lie within
// [before, after] give or take clockTolerance.
func checkTimes(t *testing.T, rec credstore.Record, before, after time.Time) {
	t.Helper()
	for _, f := range []struct {
		name string
		v    time.Time
	}{{"CreatedAt", rec.CreatedAt}, {"UpdatedAt", rec.UpdatedAt}} {
		if f.v.IsZero() {
			t.Errorf("%s is zero", f.name)
			continue
		}
		if f.v.Location() != time.UTC {
			t.Errorf("%s location = %v, want UTC", f.name, f.v.Location())
		}
		if f.v.Before(before.Add(-clockTolerance)) || f.v.After(after.Add(clockTolerance)) {
			t.Errorf("%s = %v, want within %v of [%v, %v]", f.name, f.v, clockTolerance, before, after)
		}
	}
	if rec.UpdatedAt.Before(rec.CreatedAt) {
		t.Errorf("UpdatedAt %v before CreatedAt %v", rec.UpdatedAt, rec.CreatedAt)
	}
}

func mustPut(t *testing.T, ctx context.Context, s credstore.Store, id string, rec credstore.Record) {
	t.Helper()
	if err := s.Put(ctx, id, rec); err != nil {
		t.Fatalf("Put(%q): %v", id, err)
	}
}

func mustGet(t *testing.T, ctx context.Context, s credstore.Store, id string) credstore.Record {
	t.Helper()
	rec, err := s.Get(ctx, id)
	if err != nil {
		t.Fatalf("Get(%q): %v", id, err)
	}
	return rec
}

func wantNotFound(t *testing.T, ctx context.Context, s credstore.Store, id string) {
	t.Helper()
	rec, err := s.Get(ctx, id)
	if !errors.Is(err, credstore.ErrNotFound) {
		t.Fatalf("Get(%q) = %+v, %v; want ErrNotFound", id, describeRecord(rec), err)
	}
}

func describeRecord(r credstore.Record) string {
	return fmt.Sprintf("{Credential: %d bytes, ModelHash: %q, AudioRef: %d bytes}", len(r.Credential), r.ModelHash, len(r.AudioRef))
}

func testRoundTrip(t *testing.T, s credstore.Store) {
	ctx := testCtx(t)
	want := sample("rt")
	before := time.Now()
	mustPut(t, ctx, s, "+34600000001", want)
	after := time.Now()
	got := mustGet(t, ctx, s, "+34600000001")
	if err := sameData(got, want); err != nil {
		t.Fatal(err)
	}
	checkTimes(t, got, before, after)
	if !got.CreatedAt.Equal(got.UpdatedAt) {
		t.Errorf("first Put: CreatedAt %v != UpdatedAt %v", got.CreatedAt, got.UpdatedAt)
	}
	// Timestamps on the input are ignored.
	in := sample("rt2")
	in.CreatedAt = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	in.UpdatedAt = in.CreatedAt
	mustPut(t, ctx, s, "+34600000002", in)
	got2 := mustGet(t, ctx, s, "+34600000002")
	if got2.CreatedAt.Year() == 2001 || got2.UpdatedAt.Year() == 2001 {
		t.Errorf("Put kept caller-supplied timestamps: %v / %v", got2.CreatedAt, got2.UpdatedAt)
	}
	// A record without an audio reference or model hash.
	bare := credstore.Record{Credential: "c"}
	mustPut(t, ctx, s, "bare", bare)
	if err := sameData(mustGet(t, ctx, s, "bare"), bare); err != nil {
		t.Fatal(err)
	}
}

func testNotFound(t *testing.T, s credstore.Store) {
	ctx := testCtx(t)
	wantNotFound(t, ctx, s, "+34600000000")
	mustPut(t, ctx, s, "+34600000000", sample("a"))
	for _, id := range []string{"+3460000000", "+346000000000", "+34600000000 ", " +34600000000"} {
		wantNotFound(t, ctx, s, id)
	}
}

func testOverwrite(t *testing.T, s credstore.Store) {
	ctx := testCtx(t)
	const id = "caller-overwrite"
	mustPut(t, ctx, s, id, sample("v1"))
	first := mustGet(t, ctx, s, id)

	time.Sleep(10 * time.Millisecond) // let a millisecond-precision clock move
	v2 := sample("v2")
	v2.AudioRef = "" // Put replaces the whole record, no merge
	before := time.Now()
	mustPut(t, ctx, s, id, v2)
	after := time.Now()
	second := mustGet(t, ctx, s, id)
	if err := sameData(second, v2); err != nil {
		t.Fatalf("after overwrite: %v", err)
	}
	if !second.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("CreatedAt changed on overwrite: %v -> %v", first.CreatedAt, second.CreatedAt)
	}
	if !second.UpdatedAt.After(first.UpdatedAt) {
		t.Errorf("UpdatedAt did not advance on overwrite: %v -> %v", first.UpdatedAt, second.UpdatedAt)
	}
	if second.UpdatedAt.Before(before.Add(-clockTolerance)) || second.UpdatedAt.After(after.Add(clockTolerance)) {
		t.Errorf("UpdatedAt = %v, want near [%v, %v]", second.UpdatedAt, before, after)
	}
	// Overwriting with identical data still succeeds and keeps CreatedAt.
	mustPut(t, ctx, s, id, v2)
	third := mustGet(t, ctx, s, id)
	if !third.CreatedAt.Equal(first.CreatedAt) {
		t.Errorf("CreatedAt changed on identical overwrite: %v -> %v", first.CreatedAt, third.CreatedAt)
	}
}

func testDelete(t *testing.T, s credstore.Store) {
	ctx := testCtx(t)
	const id = "caller-delete"
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("Delete of a missing id = %v, want nil", err)
	}
	mustPut(t, ctx, s, id, sample("d"))
	first := mustGet(t, ctx, s, id)
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	wantNotFound(t, ctx, s, id)
	if err := s.Delete(ctx, id); err != nil {
		t.Fatalf("second Delete = %v, want nil", err)
	}
	// Storing again after a Delete starts a new record.
	time.Sleep(10 * time.Millisecond)
	mustPut(t, ctx, s, id, sample("d2"))
	again := mustGet(t, ctx, s, id)
	if err := sameData(again, sample("d2")); err != nil {
		t.Fatal(err)
	}
	if !again.CreatedAt.After(first.CreatedAt) {
		t.Errorf("CreatedAt after delete and re-put = %v, want after %v", again.CreatedAt, first.CreatedAt)
	}
}

// testRemove checks credstore.Remover: Remove reports whether it removed
// a record, and is Delete otherwise. A store that does not implement it,
// or answers errors.ErrUnsupported (an Encrypted over a store without it)
// and removes nothing, passes only when it does not claim it (required).
func testRemove(t *testing.T, s credstore.Store, required bool) {
	ctx := testCtx(t)
	const id = "caller-remove"
	r, ok := s.(credstore.Remover)
	if !ok {
		if required {
			t.Fatalf("%T does not implement credstore.Remover", s)
		}
		return
	}
	mustPut(t, ctx, s, id, sample("r"))
	removed, err := r.Remove(ctx, id)
	if errors.Is(err, errors.ErrUnsupported) {
		mustGet(t, ctx, s, id)
		if required {
			t.Fatalf("Remove = %v; the store claims to support it", err)
		}
		return
	}
	if err != nil || !removed {
		t.Fatalf("Remove of a stored id = %v, %v; want true, nil", removed, err)
	}
	wantNotFound(t, ctx, s, id)
	if removed, err := r.Remove(ctx, id); err != nil || removed {
		t.Fatalf("second Remove = %v, %v; want false, nil", removed, err)
	}
	if removed, err := r.Remove(ctx, "caller-never-stored"); err != nil || removed {
		t.Fatalf("Remove of a missing id = %v, %v; want false, nil", removed, err)
	}
	if _, err := r.Remove(ctx, ""); !errors.Is(err, credstore.ErrInvalidID) {
		t.Fatalf("Remove of an empty id = %v, want ErrInvalidID", err)
	}
	mustPut(t, ctx, s, id, sample("r2"))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.Remove(cctx, id); err == nil {
		t.Fatal("Remove with a cancelled context succeeded")
	}
	mustGet(t, ctx, s, id)
}

func testIndependent(t *testing.T, s credstore.Store) {
	ctx := testCtx(t)
	ids := []string{"alice", "bob", "carol", "Alice", "ALICE"}
	for _, id := range ids {
		mustPut(t, ctx, s, id, sample(id))
	}
	if err := s.Delete(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	mustPut(t, ctx, s, "carol", sample("carol-2"))
	for _, id := range ids {
		switch id {
		case "bob":
			wantNotFound(t, ctx, s, id)
		case "carol":
			if err := sameData(mustGet(t, ctx, s, id), sample("carol-2")); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		default:
			if err := sameData(mustGet(t, ctx, s, id), sample(id)); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}
	}
}

// testConcurrentWriters runs writers on private and shared ids together
// with readers that check every record they see is whole.
func testConcurrentWriters(t *testing.T, s credstore.Store) {
	ctx := testCtx(t)
	const (
		writers = 8
		rounds  = 20
		shared  = "shared-caller"
	)
	var wg sync.WaitGroup
	errc := make(chan error, 4*writers)
	report := func(err error) {
		select {
		case errc <- err:
		default:
		}
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := fmt.Sprintf("writer-%d", w)
			for r := range rounds {
				tag := fmt.Sprintf("w%d-r%d", w, r)
				if err := s.Put(ctx, own, sample(tag)); err != nil {
					report(fmt.Errorf("Put(%s): %w", own, err))
					return
				}
				if err := s.Put(ctx, shared, sample(tag)); err != nil {
					report(fmt.Errorf("Put(%s): %w", shared, err))
					return
				}
				got, err := s.Get(ctx, own)
				if err != nil {
					report(fmt.Errorf("Get(%s): %w", own, err))
					return
				}
				if err := sameData(got, sample(tag)); err != nil {
					report(fmt.Errorf("Get(%s) after own Put: %w", own, err))
					return
				}
				if r%5 == 4 {
					if err := s.Delete(ctx, own); err != nil {
						report(fmt.Errorf("Delete(%s): %w", own, err))
						return
					}
				}
			}
			if err := s.Put(ctx, own, sample(own+"-final")); err != nil {
				report(fmt.Errorf("final Put(%s): %w", own, err))
			}
		}()
	}
	// Readers: every record seen under the shared id must come whole from
	// one Put.
	done := make(chan struct{})
	var rg sync.WaitGroup
	for range 2 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				got, err := s.Get(ctx, shared)
				if errors.Is(err, credstore.ErrNotFound) {
					continue
				}
				if err != nil {
					report(fmt.Errorf("reader Get: %w", err))
					return
				}
				tag := strings.TrimPrefix(got.ModelHash, "model-")
				if err := sameData(got, sample(tag)); err != nil {
					report(fmt.Errorf("reader saw a torn record: %w", err))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	rg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	for w := range writers {
		own := fmt.Sprintf("writer-%d", w)
		if err := sameData(mustGet(t, ctx, s, own), sample(own+"-final")); err != nil {
			t.Errorf("%s: %v", own, err)
		}
	}
	got := mustGet(t, ctx, s, shared)
	tag := strings.TrimPrefix(got.ModelHash, "model-")
	if err := sameData(got, sample(tag)); err != nil {
		t.Errorf("shared record is torn: %v", err)
	}
	if !strings.HasSuffix(tag, fmt.Sprintf("-r%d", rounds-1)) {
		t.Errorf("shared record %q is not from any writer's last round", tag)
	}
}

func testContextCancelled(t *testing.T, s credstore.Store) {
	ctx := testCtx(t)
	mustPut(t, ctx, s, "kept", sample("kept"))

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel2()

	for _, c := range []struct {
		name string
		ctx  context.Context
		want error
	}{{"cancelled", cancelled, context.Canceled}, {"deadline", expired, context.DeadlineExceeded}} {
		t.Run(c.name, func(t *testing.T) {
			if err := s.Put(c.ctx, "new", sample("new")); !errors.Is(err, c.want) {
				t.Errorf("Put = %v, want %v", err, c.want)
			}
			if err := s.Put(c.ctx, "kept", sample("changed")); !errors.Is(err, c.want) {
				t.Errorf("Put over existing = %v, want %v", err, c.want)
			}
			if _, err := s.Get(c.ctx, "kept"); !errors.Is(err, c.want) {
				t.Errorf("Get = %v, want %v", err, c.want)
			}
			if err := s.Delete(c.ctx, "kept"); !errors.Is(err, c.want) {
				t.Errorf("Delete = %v, want %v", err, c.want)
			}
			// Nothing changed.
			wantNotFound(t, ctx, s, "new")
			if err := sameData(mustGet(t, ctx, s, "kept"), sample("kept")); err != nil {
				t.Errorf("record changed by calls with a done ctx: %v", err)
			}
		})
	}
	// The store still works after cancelled calls.
	mustPut(t, ctx, s, "after", sample("after"))
	if err := sameData(mustGet(t, ctx, s, "after"), sample("after")); err != nil {
		t.Error(err)
	}
}

// binary returns n bytes cycling through all 256 byte values, shuffled by
// seed, so NUL, invalid UTF-8 and high bytes all appear.
func binary(n int, seed uint64) string {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	r.Shuffle(n, func(i, j int) { b[i], b[j] = b[j], b[i] })
	return string(b)
}

func testLargeValues(t *testing.T, s credstore.Store) {
	ctx := testCtx(t)
	// A model hash of MaxModelHashLen bytes of 4-byte runes.
	hash := strings.Repeat("😀", credstore.MaxModelHashLen/4)
	if len(hash) != credstore.MaxModelHashLen || !utf8.ValidString(hash) {
		t.Fatalf("test bug: hash %d bytes", len(hash))
	}
	big := credstore.Record{
		Credential: binary(credstore.MaxCredentialSize, 1),
		ModelHash:  hash,
		AudioRef:   binary(credstore.MaxAudioRefLen, 2),
	}
	mustPut(t, ctx, s, "big", big)
	if err := sameData(mustGet(t, ctx, s, "big"), big); err != nil {
		t.Fatalf("max-size record: %v", err)
	}
	// Overwrite a large value with a small one and back.
	small := credstore.Record{Credential: "\x00"}
	mustPut(t, ctx, s, "big", small)
	if err := sameData(mustGet(t, ctx, s, "big"), small); err != nil {
		t.Fatalf("small over large: %v", err)
	}
	mustPut(t, ctx, s, "big", big)
	if err := sameData(mustGet(t, ctx, s, "big"), big); err != nil {
		t.Fatalf("large over small: %v", err)
	}

	// Over every store's limit.
	over := []struct {
		name string
		rec  credstore.Record
	}{
		{"credential", credstore.Record{Credential: strings.Repeat("x", credstore.MaxCredentialSize+credstore.EnvelopeHeadroom+1)}},
		{"audio ref", credstore.Record{Credential: "c", AudioRef: strings.Repeat("x", credstore.MaxAudioRefLen+credstore.EnvelopeHeadroom+1)}},
		{"model hash", credstore.Record{Credential: "c", ModelHash: strings.Repeat("h", credstore.MaxModelHashLen+1)}},
	}
	for _, o := range over {
		if err := s.Put(ctx, "too-big", o.rec); !errors.Is(err, credstore.ErrInvalidRecord) {
			t.Errorf("Put with oversized %s = %v, want ErrInvalidRecord", o.name, err)
		}
		if err := s.Put(ctx, "big", o.rec); !errors.Is(err, credstore.ErrInvalidRecord) {
			t.Errorf("Put over existing with oversized %s = %v, want ErrInvalidRecord", o.name, err)
		}
	}
	wantNotFound(t, ctx, s, "too-big")
	if err := sameData(mustGet(t, ctx, s, "big"), big); err != nil {
		t.Fatalf("rejected Put changed the record: %v", err)
	}
}

func testInvalidRecord(t *testing.T, s credstore.Store) {
	ctx := testCtx(t)
	mustPut(t, ctx, s, "victim", sample("victim"))
	bad := []struct {
		name string
		rec  credstore.Record
	}{
		{"empty credential", credstore.Record{ModelHash: "m"}},
		{"model hash not UTF-8", credstore.Record{Credential: "c", ModelHash: "m\xff"}},
		{"model hash with NUL", credstore.Record{Credential: "c", ModelHash: "m\x00"}},
	}
	for _, b := range bad {
		for _, id := range []string{"fresh", "victim"} {
			if err := s.Put(ctx, id, b.rec); !errors.Is(err, credstore.ErrInvalidRecord) {
				t.Errorf("Put(%q) with %s = %v, want ErrInvalidRecord", id, b.name, err)
			}
		}
	}
	wantNotFound(t, ctx, s, "fresh")
	if err := sameData(mustGet(t, ctx, s, "victim"), sample("victim")); err != nil {
		t.Errorf("rejected Put changed the record: %v", err)
	}
}

// validHostileIDs are ids that every Store must keep distinct and return
// byte for byte.
var validHostileIDs = []string{
	"+34600000000",
	"' OR '1'='1",
	"'; DROP TABLE credentials; --",
	`"; DROP TABLE "credentials"; --`,
	"`id`",
	`\`, `\\`, `\'`, `\"`, `\x00`,
	"%", "_", "%%", "a%", "a_", "*", "?", "$1", ":id", "@id",
	"../../etc/passwd", "..\\..\\boot.ini", "/", ".",
	" ", "  ", "\t", "\n", "\r\n", "a ", " a", "a  ", "A", "a",
	"\x01\x02\x1f\x7f",
	"ß", "SS", "ss", "ﬀ", "ff",
	"é",       // U+00E9 (NFC)
	"e\u0301", // e + combining acute (NFD)
	"İ", "i̇", "ı", "I", "i",
	"\u202eevil\u202c", // right-to-left override
	"a\u200db",         // zero-width joiner
	"\ufeffbom",        // byte order mark
	"\U0010FFFF",       // highest code point
	"\uFFFD",           // replacement character
	"🎙️📞☎",             // emoji with variation selector
	"主叫号码",             // CJK
	"رقم المتصل",       // Arabic
	"номер",            // Cyrillic
	"<script>alert(1)</script>",
	"{\"$gt\": \"\"}",
	"null", "NULL", "undefined", "0", "-1",
	strings.Repeat("x", credstore.MaxIDLen),
	strings.Repeat("€", credstore.MaxIDLen/3), // 255 bytes of 3-byte runes
	strings.Repeat("😀", credstore.MaxIDLen/4), // 256 bytes of 4-byte runes
	strings.Repeat("'", credstore.MaxIDLen),
}

// invalidHostileIDs are ids that every Store must reject with ErrInvalidID
// on Put, Get and Delete.
var invalidHostileIDs = []string{
	"",
	"\x00",
	"a\x00b",
	"a\x00",
	"\xff",
	"\xc3",             // truncated 2-byte sequence
	"\xed\xa0\x80",     // UTF-16 surrogate half
	"\xc0\xaf",         // overlong '/'
	"\xf4\x90\x80\x80", // beyond U+10FFFF
	"valid\xfe",
	strings.Repeat("x", credstore.MaxIDLen+1),
	strings.Repeat("😀", credstore.MaxIDLen/4) + "x",
	strings.Repeat("€", credstore.MaxIDLen/3+1),
}

func testHostileIDs(t *testing.T, s credstore.Store) {
	ctx := testCtx(t)
	seen := map[string]bool{}
	for i, id := range validHostileIDs {
		if seen[id] {
			t.Fatalf("test bug: duplicate id %q", id)
		}
		seen[id] = true
		if err := credstore.ValidateID(id); err != nil {
			t.Fatalf("test bug: ValidateID(%q) = %v", id, err)
		}
		mustPut(t, ctx, s, id, sample(fmt.Sprint(i)))
	}
	for i, id := range validHostileIDs {
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Errorf("Get(%q): %v", id, err)
			continue
		}
		if err := sameData(got, sample(fmt.Sprint(i))); err != nil {
			t.Errorf("id %q (index %d) returned another id's record: %v", id, i, err)
		}
	}
	// Deleting one id touches no look-alike.
	if err := s.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	wantNotFound(t, ctx, s, "a")
	for _, id := range []string{"A", "a ", " a", "a%", "a_"} {
		if _, err := s.Get(ctx, id); err != nil {
			t.Errorf("after Delete(\"a\"), Get(%q) = %v", id, err)
		}
	}

	mustPut(t, ctx, s, "a", sample("a"))
	for _, id := range invalidHostileIDs {
		if credstore.ValidateID(id) == nil {
			t.Fatalf("test bug: ValidateID(%q) = nil", id)
		}
		if err := s.Put(ctx, id, sample("invalid")); !errors.Is(err, credstore.ErrInvalidID) {
			t.Errorf("Put(%q) = %v, want ErrInvalidID", id, err)
		}
		if _, err := s.Get(ctx, id); !errors.Is(err, credstore.ErrInvalidID) {
			t.Errorf("Get(%q) = %v, want ErrInvalidID", id, err)
		}
		if err := s.Delete(ctx, id); !errors.Is(err, credstore.ErrInvalidID) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidID", id, err)
		}
	}
	// An invalid id whose valid prefix is stored ("a\x00") must not reach
	// that record.
	if err := sameData(mustGet(t, ctx, s, "a"), sample("a")); err != nil {
		t.Errorf("record changed by calls with invalid ids: %v", err)
	}
}
