package offline

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/internal/fixtures"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden.txt from the engine's current results")

// goldenRequest is one engine call of the golden set.
type goldenRequest struct {
	name  string
	audio []byte
	opts  *daspeak.AudioOptions
	ref   string // credential request name for a comparison; "" enrols
}

// goldenRequests builds the golden set: every committed clip enrolled,
// every first clip's credential compared with every other clip, and the
// encodings, rates, channels and lengths the front end treats apart
// (µ-law, 16 kHz, the second channel of a stereo file, audio cut at and
// below the net speech minimum).
func goldenRequests(t *testing.T) []goldenRequest {
	t.Helper()
	var rs []goldenRequest
	for _, v := range fixtures.Voices() {
		for _, u := range fixtures.Utterances(v) {
			rs = append(rs, goldenRequest{name: "enrol " + u, audio: readFixture(t, u)})
		}
	}
	for _, ref := range fixtures.Voices() {
		for _, v := range fixtures.Voices() {
			for _, u := range fixtures.Utterances(v)[1:] {
				rs = append(rs, goldenRequest{name: "compare " + ref + " " + u, audio: readFixture(t, u), ref: "enrol " + fixtures.Utterances(ref)[0]})
			}
		}
	}
	kal := fixtures.LoadWAV(t, fixtures.Utterances("kal")[0]).Mono(0)
	slt := fixtures.LoadWAV(t, fixtures.Utterances("slt")[1]).Mono(0)
	up := make([]int16, 2*len(kal))
	for i, s := range kal {
		up[2*i], up[2*i+1] = s, s
	}
	stereo := make([]int16, 2*min(len(kal), len(slt)))
	for i := range len(stereo) / 2 {
		stereo[2*i], stereo[2*i+1] = kal[i], slt[i]
	}
	mono8k := codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 1}
	rs = append(rs,
		goldenRequest{name: "enrol kal 16 kHz", audio: wavOf(t, codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 16000, Channels: 1}, up)},
		goldenRequest{name: "enrol kal µ-law", audio: wavOf(t, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, kal)},
		goldenRequest{name: "enrol stereo channel 1", audio: wavOf(t, codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 2}, stereo)},
		goldenRequest{name: "enrol stereo channel 2", audio: wavOf(t, codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 2}, stereo), opts: &daspeak.AudioOptions{Channel: 2}},
		goldenRequest{name: "compare kal 16 kHz", audio: readFixture(t, fixtures.Utterances("kal")[1]), ref: "enrol kal 16 kHz"},
		goldenRequest{name: "compare stereo channel 2", audio: readFixture(t, fixtures.Utterances("slt")[0]), ref: "enrol stereo channel 2"},
	)
	for _, sec := range []float64{3.5, 4, 4.5, 5, 6} {
		rs = append(rs, goldenRequest{name: fmt.Sprintf("enrol kal cut at %g s", sec), audio: wavOf(t, mono8k, kal[:int(sec*8000)])})
	}
	return rs
}

// runGolden makes the golden set's calls in order (enrolments before the
// comparisons that use them) and returns one line a call: the result's
// fields, with scores as exact bits and credentials as SHA-256.
func runGolden(t *testing.T, e *Engine, rs []goldenRequest) []string {
	ctx := context.Background()
	creds := map[string]string{}
	lines := make([]string, len(rs))
	for i, r := range rs {
		var line string
		if r.ref == "" {
			res, err := e.GenerateCredential(ctx, ModelHash, r.audio, r.opts)
			switch {
			case err != nil:
				line = goldenError(err)
			default:
				creds[r.name] = res.Credential
				line = fmt.Sprintf("credential %x input %v net %v", sha256.Sum256([]byte(res.Credential)), res.InputAudioDuration, res.NetSpeechDuration)
			}
		} else {
			res, err := e.CompareCredentialToAudio(ctx, creds[r.ref], r.audio, r.opts)
			switch {
			case err != nil:
				line = goldenError(err)
			default:
				line = fmt.Sprintf("score %016x (%.6f) input %v net %v", math.Float64bits(res.Score), res.Score, res.InputAudioDuration, res.NetSpeechDuration)
			}
		}
		lines[i] = r.name + ": " + line
	}
	return lines
}

func goldenError(err error) string {
	var ae *daspeak.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("error %s %q detected %v", ae.Exception, ae.Message, ae.Detected)
	}
	return "error " + err.Error()
}

// TestGolden compares every result of the golden set, bit for bit, with
// testdata/golden.txt, written by the engine of offline-mfcc-v4 before its
// front end reused buffers between calls. Refresh it with -update-golden
// only for a change that is meant to change results (and ModelHash). The
// set also runs on four goroutines at once, sharing one Engine, which must
// give the same results.
func TestGolden(t *testing.T) {
	rs := goldenRequests(t)
	e := New(nil)
	got := strings.Join(runGolden(t, e, rs), "\n") + "\n"
	const path = "testdata/golden.txt"
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Errorf("line %d:\n got %s\nwant %s", i+1, gl[i], wl[i])
			}
		}
		if len(gl) != len(wl) {
			t.Errorf("%d lines, want %d", len(gl), len(wl))
		}
		t.FailNow()
	}
	var wg sync.WaitGroup
	out := make([]string, 4)
	for g := range out {
		wg.Go(func() { out[g] = strings.Join(runGolden(t, e, rs), "\n") + "\n" })
	}
	wg.Wait()
	for g, o := range out {
		if o != got {
			t.Errorf("goroutine %d: results differ from the sequential run", g)
		}
	}
}
