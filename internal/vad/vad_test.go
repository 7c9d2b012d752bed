package vad

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/internal/fixtures"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewRejectsRates(t *testing.T) {
	for _, r := range []int{0, -8000, 7999, 8001, 96000} {
		if _, err := New(r, nil); err == nil {
			t.Errorf("New(%d) succeeded", r)
		}
	}
	for _, r := range []int{8000, 16000, 48000} {
		e, err := New(r, nil)
		if err != nil || e.SampleRate() != r {
			t.Errorf("New(%d) = %v, %v", r, e, err)
		}
	}
}

// tone returns d of a sine at f Hz and amplitude a (of full scale).
func tone(rate int, f, a float64, d time.Duration) []int16 {
	n := int(d.Seconds() * float64(rate))
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(a * 32767 * math.Sin(2*math.Pi*f*float64(i)/float64(rate)))
	}
	return out
}

func noise(r *rand.Rand, n int, rms float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = clip16(r.NormFloat64() * rms)
	}
	return out
}

func clip16(v float64) int16 {
	return int16(max(-32768, min(32767, math.Round(v))))
}

func TestSynthetic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const rate = 8000
	cases := []struct {
		name       string
		build      func() []int16
		minS, maxS time.Duration
		segments   int
	}{
		{"digital silence", func() []int16 { return make([]int16, rate*3) }, 0, 0, 0},
		{"steady noise", func() []int16 { return noise(r, rate*3, 300) }, 0, 0, 0},
		{"hum and DC", func() []int16 {
			s := tone(rate, 50, 0.3, 3*time.Second)
			for i := range s {
				s[i] += 2000
			}
			return s
		}, 0, 0, 0},
		{"burst 1s in noise", func() []int16 {
			s := noise(r, rate*4, 100)
			b := tone(rate, 440, 0.3, time.Second)
			for i, v := range b {
				s[rate+i] = clip16(float64(s[rate+i]) + float64(v))
			}
			return s
		}, 940 * time.Millisecond, 1100 * time.Millisecond, 1},
		{"click too short", func() []int16 {
			s := noise(r, rate*2, 100)
			b := tone(rate, 440, 0.3, 60*time.Millisecond)
			copy(s[rate:], b)
			return s
		}, 0, 0, 0},
		{"two bursts", func() []int16 {
			s := noise(r, rate*5, 100)
			b := tone(rate, 300, 0.2, 500*time.Millisecond)
			copy(s[rate:], b)
			copy(s[3*rate:], b)
			return s
		}, 940 * time.Millisecond, 1100 * time.Millisecond, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e, err := New(rate, nil)
			if err != nil {
				t.Fatal(err)
			}
			pcm := c.build()
			// Odd chunk sizes: framing must not depend on them.
			for len(pcm) > 0 {
				n := min(len(pcm), 137)
				e.Process(pcm[:n])
				pcm = pcm[n:]
			}
			// Close any open segment with trailing silence.
			e.Process(make([]int16, rate))
			if ns := e.NetSpeech(); ns < c.minS || ns > c.maxS {
				t.Errorf("net speech %v, want [%v, %v]", ns, c.minS, c.maxS)
			}
			if got := len(e.Segments()); got != c.segments {
				t.Errorf("%d segments %v, want %d", got, e.Segments(), c.segments)
			}
		})
	}
}

func TestChunkInvariance(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	pcm := noise(r, 8000*3, 200)
	copy(pcm[8000:], tone(8000, 700, 0.25, 800*time.Millisecond))
	var want []Segment
	for _, chunk := range []int{1, 7, 160, 1000, len(pcm)} {
		e, _ := New(8000, nil)
		for p := pcm; len(p) > 0; {
			n := min(len(p), chunk)
			e.Process(p[:n])
			p = p[n:]
		}
		e.Process(make([]int16, 8000))
		got := slices.Clone(e.Segments())
		if want == nil {
			want = got
			if len(want) != 1 {
				t.Fatalf("segments %v, want 1", want)
			}
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("chunk %d: segments %v, want %v", chunk, got, want)
		}
	}
}

func TestResetAndMaxSegments(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	pcm := noise(r, 8000*10, 100)
	b := tone(8000, 500, 0.3, 300*time.Millisecond)
	for i := 1; i < 10; i++ {
		copy(pcm[i*8000:], b)
	}
	e, _ := New(8000, &Options{MaxSegments: 3})
	e.Process(pcm)
	st := e.Stats()
	if len(e.Segments()) != 3 || st.Segments != 9 || st.DroppedSegments != 6 {
		t.Fatalf("segments %d, stats %+v", len(e.Segments()), st)
	}
	ns := e.NetSpeech()
	e.Reset()
	if e.NetSpeech() != 0 || len(e.Segments()) != 0 || e.Stats() != (Stats{}) {
		t.Fatal("Reset left state")
	}
	e.Process(pcm)
	if e.NetSpeech() != ns {
		t.Fatalf("after Reset net speech %v, want %v", e.NetSpeech(), ns)
	}
}

func TestProcessZeroAlloc(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	pcm := noise(r, 8000*2, 300)
	copy(pcm[4000:], tone(8000, 440, 0.3, 500*time.Millisecond))
	e, _ := New(8000, &Options{MaxSegments: 1})
	i := 0
	allocs := testing.AllocsPerRun(2000, func() {
		e.Process(pcm[i : i+160])
		i = (i + 160) % len(pcm)
	})
	if allocs != 0 {
		t.Fatalf("Process allocates %.2f times per 20 ms frame", allocs)
	}
	if e.Stats().Segments < 2 {
		t.Fatalf("the run saw %d segments; it should have opened and closed some", e.Stats().Segments)
	}
}

// prompts returns up to n prompts (0.8–5 s) of each Asterisk speaker set
// but Allison's Spanish one.
func prompts(t testing.TB, n int) [][]int16 {
	t.Helper()
	sets := fixtures.Asterisk(t)
	var out [][]int16
	for _, key := range []string{"allison/en", "june/fr", "carlo/it", "menardi/it", "ivrvoice/ru", "armelle/fr"} {
		files := sets[key]
		got := 0
		for i := 0; i < len(files) && got < n; i += 7 {
			b, err := os.ReadFile(files[i])
			if err != nil {
				t.Fatal(err)
			}
			w, err := codec.ParseWAV(b)
			if err != nil || w.Format.SampleRate != 8000 {
				continue
			}
			d := w.Duration()
			if d < 800*time.Millisecond || d > 5*time.Second {
				continue
			}
			out = append(out, w.Mono(0))
			got++
		}
	}
	return out
}

// labelledStream concatenates utterances with pauses of 0.3–1.5 s (and 0.5 s
// at both ends) and returns the clean stream with its oracle net speech.
func labelledStream(r *rand.Rand, utts [][]int16) ([]int16, float64) {
	var s []int16
	pause := func(d float64) { s = append(s, make([]int16, int(d*8000))...) }
	pause(0.5)
	for _, u := range utts {
		s = append(s, u...)
		pause(0.3 + 1.2*r.Float64())
	}
	pause(0.5)
	return s, fixtures.SpeechSeconds(s, 8000)
}

// addNoise adds white noise at snr dB below the mean power of the labelled
// speech frames, then passes the result through μ-law and back.
func addNoise(r *rand.Rand, clean []int16, snr float64) []int16 {
	lab := fixtures.SpeechFrames(clean, 8000)
	var p float64
	var n int
	for i, sp := range lab {
		if !sp {
			continue
		}
		for _, v := range clean[i*160 : (i+1)*160] {
			p += float64(v) * float64(v)
		}
		n += 160
	}
	rms := math.Sqrt(p / float64(n) / math.Pow(10, snr/10))
	out := make([]int16, len(clean))
	for i, v := range clean {
		out[i] = clip16(float64(v) + r.NormFloat64()*rms)
	}
	mu := make([]byte, len(out))
	codec.EncodeULaw(mu, out)
	codec.DecodeULaw(out, mu)
	return out
}

func netSpeech(t testing.TB, pcm []int16) float64 {
	e, err := New(8000, nil)
	if err != nil {
		t.Fatal(err)
	}
	for p := pcm; len(p) > 0; {
		n := min(len(p), 160)
		e.Process(p[:n])
		p = p[n:]
	}
	return e.NetSpeech().Seconds()
}

// TestNetSpeechOnRealSpeech checks the net-speech estimate on speech with
// inserted pauses, white noise and G.711 against labels from the clean
// signal: Asterisk prompts of six speakers, and the committed clips.
func TestNetSpeechOnRealSpeech(t *testing.T) {
	t.Run("committed clips", func(t *testing.T) {
		var clips [][]int16
		for _, v := range fixtures.Voices() {
			for _, name := range fixtures.Utterances(v) {
				clips = append(clips, fixtures.LoadWAV(t, name).Mono(0))
			}
		}
		checkNetSpeech(t, clips, 3)
	})
	t.Run("asterisk prompts", func(t *testing.T) {
		checkNetSpeech(t, prompts(t, 8), 8)
	})
}

func checkNetSpeech(t *testing.T, utts [][]int16, per int) {
	r := rand.New(rand.NewPCG(11, 12))
	r.Shuffle(len(utts), func(i, j int) { utts[i], utts[j] = utts[j], utts[i] })
	for _, snr := range []float64{math.Inf(1), 30, 20} {
		var sumErr float64
		var streams int
		for i := 0; i+per <= len(utts); i += per {
			clean, want := labelledStream(r, utts[i:i+per])
			in := clean
			if !math.IsInf(snr, 1) {
				in = addNoise(r, clean, snr)
			}
			got := netSpeech(t, in)
			rel := (got - want) / want
			t.Logf("SNR %v dB stream %d: net speech %.2f s, labels %.2f s, error %+.1f%%", snr, streams, got, want, 100*rel)
			// Without noise the pauses are digital silence, and the detector
			// also counts quiet word tails between -50 dBFS and the labels'
			// peak-35 dB; only noisy streams are held to 10%.
			if !math.IsInf(snr, 1) && math.Abs(rel) > 0.10 {
				t.Errorf("SNR %v dB stream %d: net speech %.2f s, labels %.2f s: error %+.1f%% > 10%%", snr, streams, got, want, 100*rel)
			}
			sumErr += math.Abs(rel)
			streams++
		}
		t.Logf("SNR %v dB: mean |error| %.1f%% over %d streams", snr, 100*sumErr/float64(streams), streams)
	}
}

func BenchmarkProcess(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	pcm := noise(r, 8000, 300)
	copy(pcm[2000:], tone(8000, 440, 0.3, 300*time.Millisecond))
	e, _ := New(8000, nil)
	b.ReportAllocs()
	b.SetBytes(320)
	i := 0
	for b.Loop() {
		e.Process(pcm[i : i+160])
		i = (i + 160) % len(pcm)
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(20*time.Millisecond), "rtf")
}

func TestFlush(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	pcm := noise(r, 8000*2, 100)
	copy(pcm[8000:], tone(8000, 440, 0.3, time.Second))
	e, _ := New(8000, nil)
	if !e.Process(pcm) {
		t.Fatal("segment not open at the end of a tone")
	}
	ns := e.NetSpeech()
	e.Flush()
	if e.InSpeech() || len(e.Segments()) != 1 || e.NetSpeech() != ns {
		t.Fatalf("after Flush: in speech %v, segments %v, net speech %v (was %v)", e.InSpeech(), e.Segments(), e.NetSpeech(), ns)
	}
	if ns < 950*time.Millisecond || ns > 1050*time.Millisecond {
		t.Fatalf("net speech %v, want about 1s", ns)
	}
}
