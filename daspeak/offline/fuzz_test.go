package offline

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/voicegate/voicegate/daspeak"
	"github.com/voicegate/voicegate/internal/fixtures"
)

// FuzzGenerateCredential feeds arbitrary request bodies to the engine, as
// the das-Peak emulator does with uploads: it must answer with a result or
// an *daspeak.APIError, never panic.
func FuzzGenerateCredential(f *testing.F) {
	if b, err := os.ReadFile(fixtures.Path(fixtures.Utterances("slt")[0])); err == nil {
		f.Add(b[:4000])
		f.Add(b)
	}
	f.Add([]byte("RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x00\x00\x00\x00"))
	f.Add([]byte{})
	e := New(nil)
	f.Fuzz(func(t *testing.T, audio []byte) {
		r, err := e.GenerateCredential(context.Background(), ModelHash, audio, nil)
		if err != nil {
			var ae *daspeak.APIError
			if !errors.As(err, &ae) || ae.Exception == "" {
				t.Fatalf("error %v is not an APIError with an exception", err)
			}
			return
		}
		if _, err := e.CompareCredentialToAudio(context.Background(), r.Credential, audio, nil); err != nil {
			t.Fatalf("compare with own audio: %v", err)
		}
	})
}

// BenchmarkGenerateCredential measures credential extraction on a 7 s
// fixture clip and reports it as a real-time factor.
func BenchmarkGenerateCredential(b *testing.B) {
	audio, err := os.ReadFile(fixtures.Path(fixtures.Utterances("slt")[0]))
	if err != nil {
		b.Fatal(err)
	}
	w := fixtures.LoadWAV(b, fixtures.Utterances("slt")[0])
	e := New(nil)
	b.ReportAllocs()
	b.SetBytes(int64(len(audio)))
	for b.Loop() {
		if _, err := e.GenerateCredential(context.Background(), ModelHash, audio, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(w.Duration()), "rtf")
}

// BenchmarkCompareCredentialToAudio measures a verification of a 7 s
// fixture clip against a credential, as a real-time factor.
func BenchmarkCompareCredentialToAudio(b *testing.B) {
	enrol, err := os.ReadFile(fixtures.Path(fixtures.Utterances("slt")[0]))
	if err != nil {
		b.Fatal(err)
	}
	audio, err := os.ReadFile(fixtures.Path(fixtures.Utterances("slt")[1]))
	if err != nil {
		b.Fatal(err)
	}
	w := fixtures.LoadWAV(b, fixtures.Utterances("slt")[1])
	e := New(nil)
	r, err := e.GenerateCredential(context.Background(), ModelHash, enrol, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(audio)))
	for b.Loop() {
		if _, err := e.CompareCredentialToAudio(context.Background(), r.Credential, audio, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(w.Duration()), "rtf")
}
