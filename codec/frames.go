package codec

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/voicegate/voicegate"
)

// WAVFrameReader plays the audio of a WAV file as a voicegate.FrameReader, in
// frames of a fixed duration, as fast as the caller reads, and honours the
// voicegate.FrameReader contract: concurrent calls are serialised, io.EOF
// follows the last frame and every later call. Payloads alias the WAV's
// data, so they stay valid after the next call too.
type WAVFrameReader struct {
	mu        sync.Mutex
	w         *WAV
	frameSize int // bytes per frame
	parties   [voicegate.MaxChannels]voicegate.Party
	off       int
	seq       uint64
}

// NewWAVFrameReader returns a reader over w in frames of frame duration (0
// means 20 ms). parties names who speaks on each channel; by default channel
// 0 is the customer and channel 1 the agent. The last frame may be shorter.
func NewWAVFrameReader(w *WAV, frame time.Duration, parties ...voicegate.Party) *WAVFrameReader {
	if frame <= 0 {
		frame = 20 * time.Millisecond
	}
	samples := max(1, int(int64(frame)*int64(w.Format.SampleRate)/int64(time.Second)))
	r := &WAVFrameReader{w: w, frameSize: samples * w.Format.blockAlign()}
	r.parties = [voicegate.MaxChannels]voicegate.Party{voicegate.Customer, voicegate.Agent}
	copy(r.parties[:], parties)
	return r
}

// ReadFrame implements voicegate.FrameReader. It returns io.EOF after the
// last frame.
func (r *WAVFrameReader) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	if err := ctx.Err(); err != nil {
		return voicegate.Frame{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off >= len(r.w.Data) {
		return voicegate.Frame{}, io.EOF
	}
	end := min(r.off+r.frameSize, len(r.w.Data))
	f := voicegate.Frame{
		Encoding:   r.w.Format.Encoding,
		SampleRate: r.w.Format.SampleRate,
		Channels:   r.w.Format.Channels,
		Parties:    r.parties,
		Timestamp:  time.Duration(r.off/r.w.Format.blockAlign()) * time.Second / time.Duration(r.w.Format.SampleRate),
		Payload:    r.w.Data[r.off:end],
	}
	r.seq++
	f.Seq = r.seq
	r.off = end
	return f, nil
}
