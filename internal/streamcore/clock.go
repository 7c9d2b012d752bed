package streamcore

import (
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
)

// GapCounters are a stream's gap and lateness counters.
type GapCounters struct {
	FramesLate uint64        // frames not after the previous one of their track, dropped
	Gaps       uint64        // jumps forward in a track's media time
	GapTime    time.Duration // media time the gaps skipped
}

// Track is the media clock of one track (one party, or the interleaved
// channels of one connection): it numbers frames, drops late ones and
// measures the media time a frame's timestamp skips. It is used by one
// goroutine.
type Track struct {
	// MinGap is the least skip counted as a gap; smaller ones are timing
	// jitter (Twilio's millisecond timestamps).
	MinGap time.Duration

	started bool
	last    time.Duration // timestamp of the last frame accepted
	next    time.Duration // media time right after it
	seq     uint64
}

// Started reports whether a frame was placed on the track.
func (t *Track) Started() bool { return t.started }

// StartAt starts the track at media time t, so that a first frame after t
// is a gap (AudioHook audio discarded before the first frame).
func (t *Track) StartAt(at time.Duration) {
	t.started = true
	t.next = at
	t.last = at - 1
}

// Next is the media time right after the last frame placed.
func (t *Track) Next() time.Duration { return t.next }

// Place checks a frame with timestamp ts and play time dur. late reports a
// frame whose timestamp is not after the previous frame's of the track (a
// duplicate or a frame out of order): drop it. Otherwise gap is the media
// time skipped before it (0 below MinGap, counted in c otherwise), and the
// frame is accepted: call Seq for its number after any Fill.
func (t *Track) Place(ts, dur time.Duration, c *GapCounters) (gap time.Duration, late bool) {
	if t.started && ts <= t.last {
		c.FramesLate++
		return 0, true
	}
	if t.started {
		if d := ts - t.next; d >= max(t.MinGap, 1) {
			gap = d
			c.Gaps++
			c.GapTime += d
		}
	}
	t.started = true
	t.last = ts
	t.next = ts + dur
	return gap, false
}

// Seq numbers the next frame of the track, from 1.
func (t *Track) Seq() uint64 {
	t.seq++
	return t.seq
}

// SilenceByte returns the byte whose repetition is silence in enc: 0xFF
// for μ-law, 0xD5 for A-law, 0 for L16.
func SilenceByte(enc voicegate.Encoding) byte {
	switch enc {
	case voicegate.PCMU:
		return codec.ULawSilence
	case voicegate.PCMA:
		return 0xD5
	}
	return 0
}

// FillGap handles the gap Place reported before a frame of duration dur.
// With fill set and gap at most voicegate.MaxGapFill, it queues silence
// frames of at most chunk each covering [ts-gap, ts) in the format of tmpl
// (whose Timestamp and Seq it sets). Otherwise the frames the gap would have
// held are skipped in the track's Seq, so a jump in Seq still tells of
// them.
func (t *Track) FillGap(q *Queue, tmpl voicegate.Frame, ts, gap, dur, chunk time.Duration, fill bool) {
	if gap <= 0 {
		return
	}
	if !fill || gap > voicegate.MaxGapFill || tmpl.SampleRate <= 0 || chunk <= 0 {
		if dur > 0 {
			t.seq += uint64((gap + dur/2) / dur)
		}
		return
	}
	bpf := tmpl.Encoding.BytesPerSample() * tmpl.Channels
	b := SilenceByte(tmpl.Encoding)
	rate := int64(tmpl.SampleRate)
	samples := int64(gap) * rate / int64(time.Second)
	per := max(int64(chunk)*rate/int64(time.Second), 1)
	pos := ts - gap
	for samples > 0 {
		k := min(samples, per)
		f := tmpl
		f.Payload = nil
		f.Timestamp = pos
		f.Seq = t.Seq()
		d := time.Duration(k) * time.Second / time.Duration(rate)
		q.PushSilence(f, int(k)*bpf, b, d)
		pos += d
		samples -= k
	}
}
