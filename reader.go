package voicegate

import (
	"context"
	"io"
	"sync"
)

// SliceReader is a FrameReader over frames held in memory. It returns the
// frames in order, then io.EOF, and honours the FrameReader contract
// (concurrent calls are serialised). It is useful in tests and to replay
// audio.
type SliceReader struct {
	mu     sync.Mutex
	frames []Frame
	next   int
}

// NewSliceReader returns a reader over frames. The frames are not copied.
func NewSliceReader(frames []Frame) *SliceReader { return &SliceReader{frames: frames} }

// ReadFrame implements FrameReader.
func (r *SliceReader) ReadFrame(ctx context.Context) (Frame, error) {
	if err := ctx.Err(); err != nil {
		return Frame{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next >= len(r.frames) {
		return Frame{}, io.EOF
	}
	f := r.frames[r.next]
	r.next++
	return f, nil
}
