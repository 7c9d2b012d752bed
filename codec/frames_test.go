package codec_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/internal/fixtures"
)

func TestWAVFrameReader(t *testing.T) {
	w := &codec.WAV{Format: codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 2}, Data: make([]byte, 2*(160*3+40))}
	for i := range w.Data {
		w.Data[i] = byte(i)
	}
	r := codec.NewWAVFrameReader(w, 0)
	ctx := context.Background()
	var got []byte
	for i := 0; ; i++ {
		f, err := r.ReadFrame(ctx)
		if err == io.EOF {
			if i != 4 {
				t.Fatalf("%d frames, want 4", i)
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		wantLen := 320
		if i == 3 {
			wantLen = 80
		}
		if len(f.Payload) != wantLen || f.Seq != uint64(i+1) || f.Timestamp != time.Duration(i)*20*time.Millisecond {
			t.Fatalf("frame %d: %d bytes, seq %d, ts %v", i, len(f.Payload), f.Seq, f.Timestamp)
		}
		if f.Channels != 2 || f.SampleRate != 8000 || f.Encoding != voicegate.PCMU || f.Channel(voicegate.Customer) != 0 || f.Channel(voicegate.Agent) != 1 {
			t.Fatalf("frame %d: %+v", i, f)
		}
		if err := f.Validate(); err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Payload...)
	}
	if string(got) != string(w.Data) {
		t.Fatal("frames do not reproduce the data")
	}
	if _, err := r.ReadFrame(ctx); err != io.EOF {
		t.Fatalf("after EOF: %v", err)
	}

	// Custom duration and parties, cancelled context.
	r = codec.NewWAVFrameReader(w, 50*time.Millisecond, voicegate.Agent, voicegate.Customer)
	f, err := r.ReadFrame(ctx)
	if err != nil || len(f.Payload) != 800 || f.Parties[0] != voicegate.Agent {
		t.Fatalf("50 ms frame: %v %d %v", err, len(f.Payload), f.Parties)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := r.ReadFrame(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if f, err := r.ReadFrame(ctx); err != nil || f.Seq != 2 || f.Timestamp != 50*time.Millisecond {
		t.Fatalf("after cancel: %v seq %d ts %v", err, f.Seq, f.Timestamp)
	}
}

func TestWAVFrameReaderFixture(t *testing.T) {
	w := fixtures.LoadWAV(t, fixtures.Utterances("slt")[0])
	r := codec.NewWAVFrameReader(w, 20*time.Millisecond)
	var n int
	var end time.Duration
	for {
		f, err := r.ReadFrame(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n += f.Samples()
		end = f.End()
	}
	if n != w.Samples() || end != w.Duration() {
		t.Fatalf("frames cover %d samples ending at %v, file has %d (%v)", n, end, w.Samples(), w.Duration())
	}
}

// The FrameReader contract: concurrent calls are serialised, each frame
// goes to one caller, every caller ends with io.EOF. Run with -race.
func TestWAVFrameReaderConcurrentReaders(t *testing.T) {
	w := &codec.WAV{Format: codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, Data: make([]byte, 160*300)}
	r := codec.NewWAVFrameReader(w, 20*time.Millisecond)
	seen := make(chan uint64, 400)
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				f, err := r.ReadFrame(context.Background())
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				seen <- f.Seq
			}
		}()
	}
	for range 4 {
		<-done
	}
	close(seen)
	got := map[uint64]bool{}
	for s := range seen {
		if got[s] {
			t.Fatalf("frame %d read twice", s)
		}
		got[s] = true
	}
	if len(got) != 300 {
		t.Fatalf("%d frames read, want 300", len(got))
	}
}
