package daspeak_test

import (
	"context"
	"testing"
)

// BenchmarkClientGenerateCredential measures one credential request of a
// 6 s μ-law call through the client and the emulator on loopback.
func BenchmarkClientGenerateCredential(b *testing.B) {
	srv := restServer(b, nil)
	c := restClient(b, srv, nil)
	audio := restVoice(b, 300)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(audio)))
	for b.Loop() {
		if _, err := c.GenerateCredential(ctx, restModel, audio, nil); err != nil {
			b.Fatal(err)
		}
	}
}
