package audiohook

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
)

// RecordSink creates the files of one recorded session: audio receives a
// WAV file in the negotiated format (stereo when stereo was negotiated) and
// sidecar a JSON document listing every protocol text message in both
// directions with its time. Both are closed by the recorder. If audio is an
// io.WriteSeeker the WAV sizes are patched on close.
//
// Create is called once per session, from the session's reader goroutine,
// when the open transaction completes (connection probes are not recorded);
// writes happen on that goroutine too, so a slow sink delays the session.
// Implementations must be safe for concurrent use by several sessions.
type RecordSink interface {
	Create(ctx context.Context, sessionID string) (audio, sidecar io.WriteCloser, err error)
}

// DirSink is a RecordSink writing <dir>/<session id>.wav and
// <dir>/<session id>.json. The directory must exist. The caller's voice is
// biometric data, so both files are readable and writable by their owner
// only (mode 0600, whatever the umask; an existing file of the same name
// is truncated and given that mode).
type DirSink string

// Create implements RecordSink.
func (d DirSink) Create(_ context.Context, sessionID string) (io.WriteCloser, io.WriteCloser, error) {
	if !IsUUID(sessionID) {
		return nil, nil, fmt.Errorf("audiohook: record: session id %q is not a UUID", sessionID)
	}
	a, err := createPrivate(filepath.Join(string(d), sessionID+".wav"))
	if err != nil {
		return nil, nil, err
	}
	s, err := createPrivate(filepath.Join(string(d), sessionID+".json"))
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, s, nil
}

// createPrivate creates or truncates the file at path with mode 0600. The
// mode given to open applies only to a new file, so an existing one is
// changed too.
func createPrivate(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("audiohook: record: %w", err)
	}
	return f, nil
}

// RecordEntry is one element of a sidecar's "messages" array.
type RecordEntry struct {
	Time      time.Time       `json:"time"`
	Direction string          `json:"direction"` // "in" (client to server) or "out"
	Message   json.RawMessage `json:"message"`
}

// Sidecar is the JSON document a recorder writes next to the WAV file.
type Sidecar struct {
	SessionID string          `json:"sessionId"`
	Media     *MediaParameter `json:"media"`
	Messages  []RecordEntry   `json:"messages"`
}

// recorder writes one session. Its methods are safe for concurrent use.
type recorder struct {
	mu       sync.Mutex
	pending  []RecordEntry // before start
	started  bool
	audio    io.WriteCloser
	side     io.WriteCloser
	sideBuf  *bufio.Writer
	wav      *codec.WAVWriter
	frameB   int   // bytes per sample frame (all channels)
	written  int64 // sample frames written
	silence  byte
	count    int
	err      error
	closed   bool
	maxGapSF int64
}

func (r *recorder) message(dir string, raw []byte) {
	if r == nil {
		return
	}
	e := RecordEntry{Time: time.Now().UTC(), Direction: dir, Message: append(json.RawMessage(nil), raw...)}
	if !json.Valid(raw) {
		b, _ := json.Marshal(string(raw))
		e.Message = b
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.err != nil {
		return
	}
	if !r.started {
		r.pending = append(r.pending, e)
		return
	}
	r.writeEntry(e)
}

func (r *recorder) writeEntry(e RecordEntry) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	if r.count > 0 {
		r.sideBuf.WriteString(",\n  ")
	} else {
		r.sideBuf.WriteString("\n  ")
	}
	r.count++
	r.sideBuf.Write(b)
}

// start creates the files once the media is known (media may be nil).
func (r *recorder) start(ctx context.Context, sink RecordSink, id string, media *MediaParameter) error {
	audio, side, err := sink.Create(ctx, id)
	if err != nil {
		return err
	}
	f := codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}
	if media != nil {
		f.Channels = len(media.Channels)
		if media.Format == FormatL16 {
			f.Encoding = voicegate.L16
		}
	}
	w, err := codec.NewWAVWriter(audio, f)
	if err != nil {
		audio.Close()
		side.Close()
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.audio, r.side, r.wav = audio, side, w
	r.frameB = f.Channels * f.Encoding.BytesPerSample()
	if f.Encoding == voicegate.PCMU {
		r.silence = codec.ULawSilence
	}
	r.maxGapSF = 8000 * 3600
	r.sideBuf = bufio.NewWriter(side)
	hdr, _ := json.Marshal(struct {
		SessionID string          `json:"sessionId"`
		Media     *MediaParameter `json:"media"`
	}{id, media})
	r.sideBuf.Write(hdr[:len(hdr)-1])
	r.sideBuf.WriteString(`,"messages":[`)
	r.started = true
	for _, e := range r.pending {
		r.writeEntry(e)
	}
	r.pending = nil
	return nil
}

// audioAt writes p, whose first sample is at media time ts, filling any gap
// before it with silence.
func (r *recorder) audioAt(ts time.Duration, p []byte) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started || r.closed || r.err != nil || r.frameB == 0 {
		return
	}
	at := int64(ts) * 8000 / int64(time.Second)
	if gap := at - r.written; gap > 0 && gap <= r.maxGapSF {
		var sil [512]byte
		if r.silence != 0 {
			for i := range sil {
				sil[i] = r.silence
			}
		}
		for rem := gap * int64(r.frameB); rem > 0; {
			n := min(rem, int64(len(sil)))
			if _, err := r.wav.Write(sil[:n]); err != nil {
				r.err = err
				return
			}
			rem -= n
		}
		r.written += gap
	}
	if _, err := r.wav.Write(p); err != nil {
		r.err = err
		return
	}
	r.written += int64(len(p) / r.frameB)
}

func (r *recorder) close() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || !r.started {
		r.closed = true
		return nil
	}
	r.closed = true
	r.sideBuf.WriteString("\n]}\n")
	err := errors.Join(r.err, r.sideBuf.Flush(), r.side.Close(), r.wav.Close(), r.audio.Close())
	return err
}
