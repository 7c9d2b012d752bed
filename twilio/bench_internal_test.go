package twilio

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkHandleMedia measures parsing, base64-decoding and queueing one
// 160-byte media message, and reading it back.
func BenchmarkHandleMedia(b *testing.B) {
	s := testStream(nil)
	payload := bytes.Repeat([]byte{0x55}, 160)
	msgs := make([][]byte, 4096)
	for i := range msgs {
		msgs[i] = mediaLine("inbound", 155+int64(i)*20, payload)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(160)
	for i := 0; b.Loop(); i++ {
		if i%len(msgs) == 0 && i > 0 {
			s = testStream(nil) // timestamps restart
		}
		s.handle(msgs[i%len(msgs)])
		if _, err := s.ReadFrame(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
