package codec_test

import (
	"bytes"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/voicegate/voicegate/codec"
)

func loadWAVFile(t *testing.T, name string) *codec.WAV {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	w, err := codec.ParseWAV(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return w
}

// snrAgainst resamples the 16-bit mono input with q and returns the SNR in
// dB of the result against ref, skipping edge seconds at both ends (the
// sweep starts and stops abruptly and the two filters ring differently).
func snrAgainst(t *testing.T, in *codec.WAV, ref *codec.WAV, q codec.Quality, edge float64) float64 {
	t.Helper()
	x := in.Mono(0)
	src := make([]float32, len(x))
	codec.Int16ToFloat(src, x)
	out := resampleAll(t, in.Format.SampleRate, ref.Format.SampleRate, q, src)
	r16 := ref.Mono(0)
	refF := make([]float32, len(r16))
	codec.Int16ToFloat(refF, r16)
	n := min(len(out), len(refF))
	skip := int(edge * float64(ref.Format.SampleRate))
	var sig, noise float64
	for i := skip; i < n-skip; i++ {
		d := float64(refF[i]) - float64(out[i])
		sig += float64(refF[i]) * float64(refF[i])
		noise += d * d
	}
	return 10 * math.Log10(sig/noise)
}

// TestResamplerVsSoxGolden compares the resampler with sox `rate -v` on the
// committed 300–3400 Hz sweeps (testdata/gen.sh).
func TestResamplerVsSoxGolden(t *testing.T) {
	tests := []struct{ in, ref string }{
		{"testdata/sweep8k.wav", "testdata/sweep8k_to16k_sox.wav"},
		{"testdata/sweep16k.wav", "testdata/sweep16k_to8k_sox.wav"},
	}
	for _, tc := range tests {
		in, ref := loadWAVFile(t, tc.in), loadWAVFile(t, tc.ref)
		for _, q := range []codec.Quality{codec.Telephone, codec.High} {
			snr := snrAgainst(t, in, ref, q, 0.1)
			t.Logf("%s → %d Hz %v: SNR %.1f dB against sox rate -v", tc.in, ref.Format.SampleRate, q, snr)
			if snr < 60 {
				t.Errorf("%s → %d Hz %v: SNR %.1f dB against sox rate -v, want ≥ 60 dB", tc.in, ref.Format.SampleRate, q, snr)
			}
		}
	}
}

// TestResamplerVsSoxLive regenerates the sweeps with the installed sox,
// checks them against the committed files, and compares more rate pairs.
func TestResamplerVsSoxLive(t *testing.T) {
	if _, err := exec.LookPath("sox"); err != nil {
		t.Skip("sox not installed (Debian: apt-get install -y --no-install-recommends sox); live comparison skipped")
	}
	dir := t.TempDir()
	sox := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("sox", args...).CombinedOutput(); err != nil {
			t.Fatalf("sox %v: %v: %s", args, err, out)
		}
	}
	sweep8 := filepath.Join(dir, "sweep8k.wav")
	sweep16 := filepath.Join(dir, "sweep16k.wav")
	sox("-D", "-n", "-r", "8000", "-b", "16", "-c", "1", sweep8, "synth", "2", "sine", "300:3400", "vol", "0.5")
	sox("-D", "-n", "-r", "16000", "-b", "16", "-c", "1", sweep16, "synth", "2", "sine", "300:3400", "vol", "0.5")
	for _, f := range []string{"sweep8k.wav", "sweep16k.wav"} {
		got, _ := os.ReadFile(filepath.Join(dir, f))
		want, _ := os.ReadFile(filepath.Join("testdata", f))
		if !bytes.Equal(got, want) {
			t.Logf("sox now writes a different %s than the committed one; testdata/gen.sh regenerates it", f)
		}
	}
	tests := []struct {
		in   string
		rate int
	}{
		{sweep8, 16000}, {sweep8, 48000}, {sweep8, 44100}, {sweep16, 8000},
	}
	for _, tc := range tests {
		ref := filepath.Join(dir, "ref.wav")
		sox("-D", tc.in, ref, "rate", "-v", strconv.Itoa(tc.rate))
		in, rw := loadWAVFile(t, tc.in), loadWAVFile(t, ref)
		for _, q := range []codec.Quality{codec.Telephone, codec.High} {
			snr := snrAgainst(t, in, rw, q, 0.1)
			t.Logf("%d → %d Hz %v: SNR %.1f dB against sox rate -v", in.Format.SampleRate, tc.rate, q, snr)
			if snr < 60 {
				t.Errorf("%d → %d Hz %v: SNR %.1f dB against sox rate -v, want ≥ 60 dB", in.Format.SampleRate, tc.rate, q, snr)
			}
		}
	}
}
