package voicegate

import (
	"context"
	"io"
)

// SliceReader is a FrameReader over frames held in memory. It returns the
// frames in order, then io.EOF. It is useful in tests and to replay audio.
// It is not safe for concurrent use.
type SliceReader struct {
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
	if r.next >= len(r.frames) {
		return Frame{}, io.EOF
	}
	f := r.frames[r.next]
	r.next++
	return f, nil
}
