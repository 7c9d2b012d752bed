package voicegate_test

import (
	"context"
	"io"
	"sync"
	"testing"

	"github.com/voicegate/voicegate"
)

// ConcurrentReaders checks the FrameReader contract's rule for concurrent
// callers: calls are serialised, every frame goes to exactly one caller,
// and every caller ends with io.EOF. Run it with -race.
func concurrentReaders(t *testing.T, r voicegate.FrameReader, want int) {
	t.Helper()
	var mu sync.Mutex
	seen := map[uint64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				f, err := r.ReadFrame(context.Background())
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[f.Seq]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != want {
		t.Fatalf("%d distinct frames, want %d", len(seen), want)
	}
	for s, n := range seen {
		if n != 1 {
			t.Fatalf("frame %d read %d times", s, n)
		}
	}
}

func TestSliceReaderConcurrentReaders(t *testing.T) {
	frames := make([]voicegate.Frame, 500)
	for i := range frames {
		frames[i] = voicegate.Frame{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1, Seq: uint64(i + 1), Payload: []byte{1}}
	}
	concurrentReaders(t, voicegate.NewSliceReader(frames), 500)
}
