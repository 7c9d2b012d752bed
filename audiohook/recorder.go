package audiohook

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/internal/streamcore"
)

// RecordSink creates the files of a session once opened (not probes): audio
// gets a WAV in the negotiated format (sizes patched on close if it is an
// io.WriteSeeker), sidecar a JSON Sidecar; the recorder closes both. Disk
// I/O runs on the recorder's goroutine, never the protocol's: entries beyond
// 256 waiting are dropped (Stats.RecordDropped); gaps up to
// voicegate.MaxGapFill become silence. Safe for concurrent use.
type RecordSink interface {
	Create(ctx context.Context, sessionID string) (audio, sidecar io.WriteCloser, err error)
}

// DirSink is a RecordSink writing <dir>/<session id>.wav and .json into an
// existing directory. The caller's voice is biometric data: both files get
// mode 0600 whatever the umask (an existing file is truncated first).
type DirSink string

// Create implements RecordSink.
func (d DirSink) Create(_ context.Context, sessionID string) (io.WriteCloser, io.WriteCloser, error) {
	if !wire.IsUUID(sessionID) {
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
	SessionID string               `json:"sessionId"`
	Media     *wire.MediaParameter `json:"media"`
	Messages  []RecordEntry        `json:"messages"`
}

const (
	// recordQueue bounds the entries waiting for the recorder's goroutine.
	recordQueue = 256
	// recordPending bounds the messages kept before open completes.
	recordPending = 32
)

type recItem struct {
	entry *RecordEntry
	audio *[]byte
	ts    time.Duration
}

var audioBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// recorder records one session. Its methods are called by the session's
// owner goroutine only; the files are written by the recorder's goroutine.
type recorder struct {
	log     *slog.Logger
	dropped *atomic.Uint64
	pending []RecordEntry // before start, at most recordPending
	started bool
	closed  bool
	waited  bool // the recorder's goroutine has ended
	ch      chan recItem
	done    chan struct{}
	err     error // the writer's, read after done
}

func newRecorder(log *slog.Logger, dropped *atomic.Uint64) *recorder {
	return &recorder{log: log, dropped: dropped}
}

func (r *recorder) message(dir string, raw []byte) {
	if r == nil || r.closed {
		return
	}
	e := RecordEntry{Time: time.Now().UTC(), Direction: dir, Message: append(json.RawMessage(nil), raw...)}
	if !json.Valid(raw) {
		b, _ := json.Marshal(string(raw))
		e.Message = b
	}
	if !r.started {
		if len(r.pending) >= recordPending {
			r.dropped.Add(1)
			return
		}
		r.pending = append(r.pending, e)
		return
	}
	r.enqueue(recItem{entry: &e})
}

func (r *recorder) enqueue(it recItem) {
	select {
	case r.ch <- it:
	default:
		r.dropped.Add(1)
		if it.audio != nil {
			audioBufs.Put(it.audio)
		}
	}
}

// start starts the recorder's goroutine, which creates the files once the
// media is known (media may be nil).
func (r *recorder) start(ctx context.Context, sink RecordSink, id string, media *wire.MediaParameter) error {
	if r == nil || r.started || r.closed {
		return nil
	}
	r.started = true
	r.ch = make(chan recItem, recordQueue)
	r.done = make(chan struct{})
	pending := r.pending
	r.pending = nil
	go func() {
		defer close(r.done)
		r.err = writeRecording(ctx, sink, id, media, pending, r.ch)
	}()
	return nil
}

// discard drops what was kept before a start that will not come.
func (r *recorder) discard() {
	if r != nil {
		r.pending = nil
	}
}

// audioAt records p, whose first sample is at media time ts.
func (r *recorder) audioAt(ts time.Duration, p []byte) {
	if r == nil || !r.started || r.closed {
		return
	}
	b := audioBufs.Get().(*[]byte)
	*b = append((*b)[:0], p...)
	r.enqueue(recItem{audio: b, ts: ts})
}

// close ends the recording and waits until the files are written, at
// most bound when bound > 0: past it, it returns errRecordSlow and a
// later close waits again.
func (r *recorder) close(bound time.Duration) error {
	if r == nil {
		return nil
	}
	if !r.closed {
		r.closed = true
		if r.started {
			close(r.ch)
		}
	}
	if !r.started || r.waited {
		return nil
	}
	if bound > 0 {
		t := time.NewTimer(bound)
		defer t.Stop()
		select {
		case <-r.done:
		case <-t.C:
			return errRecordSlow
		}
	}
	<-r.done
	r.waited = true
	return r.err
}

// errRecordSlow is what a bounded recorder.close returns when the sink
// had not finished.
var errRecordSlow = errors.New("audiohook: recorder: the sink has not finished")

// writeRecording is the recorder's goroutine.
func writeRecording(ctx context.Context, sink RecordSink, id string, media *wire.MediaParameter, pending []RecordEntry, ch <-chan recItem) (err error) {
	audio, side, cerr := sink.Create(ctx, id)
	if cerr != nil {
		for it := range ch {
			if it.audio != nil {
				audioBufs.Put(it.audio)
			}
		}
		return fmt.Errorf("audiohook: recorder: %w", cerr)
	}
	f := codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}
	if media != nil {
		f.Channels = len(media.Channels)
		if media.Format == wire.FormatL16 {
			f.Encoding = voicegate.L16
		}
	}
	wav, werr := codec.NewWAVWriter(audio, f)
	if werr != nil {
		audio.Close()
		side.Close()
		for it := range ch {
			if it.audio != nil {
				audioBufs.Put(it.audio)
			}
		}
		return werr
	}
	w := &recWriter{wav: wav, side: bufio.NewWriter(side), frameB: f.Channels * f.Encoding.BytesPerSample(), silence: streamcore.SilenceByte(f.Encoding)}
	hdr, _ := json.Marshal(struct {
		SessionID string               `json:"sessionId"`
		Media     *wire.MediaParameter `json:"media"`
	}{id, media})
	w.side.Write(hdr[:len(hdr)-1])
	w.side.WriteString(`,"messages":[`)
	for i := range pending {
		w.entry(&pending[i])
	}
	for it := range ch {
		switch {
		case it.entry != nil:
			w.entry(it.entry)
		case it.audio != nil:
			w.audioAt(it.ts, *it.audio)
			audioBufs.Put(it.audio)
		}
	}
	w.side.WriteString("\n]}\n")
	return errors.Join(w.err, w.side.Flush(), side.Close(), wav.Close(), audio.Close())
}

// recWriter writes the files; used by the recorder's goroutine only.
type recWriter struct {
	wav     *codec.WAVWriter
	side    *bufio.Writer
	frameB  int
	silence byte
	count   int
	track   streamcore.Track
	gaps    streamcore.GapCounters
	err     error
}

func (w *recWriter) entry(e *RecordEntry) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	if w.count > 0 {
		w.side.WriteString(",\n  ")
	} else {
		w.side.WriteString("\n  ")
	}
	w.count++
	w.side.Write(b)
}

// audioAt writes p, whose first sample is at media time ts, filling a gap
// before it (discarded or paused audio, or entries dropped) with silence
// when it is at most voicegate.MaxGapFill; a longer gap is not filled, and
// the sidecar's positions tell where the audio belongs.
func (w *recWriter) audioAt(ts time.Duration, p []byte) {
	if w.err != nil || w.frameB == 0 || len(p) == 0 {
		return
	}
	if !w.track.Started() {
		w.track.StartAt(0)
	}
	dur := time.Duration(len(p)/w.frameB) * time.Second / 8000
	gap, late := w.track.Place(ts, dur, &w.gaps)
	if late {
		return
	}
	if gap > 0 && gap <= voicegate.MaxGapFill {
		var sil [512]byte
		for i := range sil {
			sil[i] = w.silence
		}
		for rem := int64(gap) * 8000 / int64(time.Second) * int64(w.frameB); rem > 0; {
			n := min(rem, int64(len(sil)))
			if _, err := w.wav.Write(sil[:n]); err != nil {
				w.err = err
				return
			}
			rem -= n
		}
	}
	if _, err := w.wav.Write(p); err != nil {
		w.err = err
	}
}
