package vad

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// ErrSampleRate reports a sample rate New cannot work with.
var ErrSampleRate = errors.New("vad: unsupported sample rate")

// Options tune an [Energy] detector. The zero value of every field selects
// the documented default.
type Options struct {
	// OnsetDB is how far above the noise floor a frame must be to count
	// towards opening a segment. Default 9 dB.
	OnsetDB float64
	// HoldDB is how far above the noise floor a frame must be to count as
	// speech inside an open segment. Default 3 dB. Values above OnsetDB are
	// clamped to OnsetDB.
	HoldDB float64
	// MinLevel is the level in dBFS below which a frame is never speech.
	// Default -50 dBFS.
	MinLevel float64
	// FloorRise is how fast the noise floor may rise, in dB per second; it
	// falls towards quieter frames at once. Default 2 dB/s.
	FloorRise float64
	// Hangover is how long a segment stays open after the last speech
	// frame. Hangover frames are not counted as net speech. Default 200 ms.
	Hangover time.Duration
	// FillGap is the longest run of quiet frames inside a segment that is
	// counted as speech when speech resumes after it (low-energy sounds
	// between syllables). Default 100 ms; negative disables it.
	FillGap time.Duration
	// MinSegment is the shortest speech a segment must hold to count.
	// Default 100 ms.
	MinSegment time.Duration
	// MaxSegments bounds how many segments Segments keeps; later segments
	// still count as net speech and are counted in Stats. Default 256.
	MaxSegments int
}

// Frame is the analysis frame length.
const Frame = 20 * time.Millisecond

// Segment is a stretch of speech in media time since the first sample given
// to Process. End excludes the hangover.
type Segment struct {
	Start, End time.Duration
	// Speech is the net speech inside the segment.
	Speech time.Duration
}

// Stats are counters of an [Energy] detector.
type Stats struct {
	// Frames is the number of 20 ms frames analysed.
	Frames int64
	// SpeechFrames is the number of frames counted as net speech.
	SpeechFrames int64
	// Segments is the number of segments kept or dropped by MaxSegments.
	Segments int
	// DroppedSegments is the number of segments Segments does not hold
	// because MaxSegments was reached.
	DroppedSegments int
	// ShortSegments is the number of segments discarded by MinSegment.
	ShortSegments int
}

// Energy is an adaptive energy voice activity detector for one stream. See
// the package documentation for the algorithm. It is not safe for concurrent
// use.
type Energy struct {
	rate  int
	n     int // samples per frame
	onset float64
	hold  float64
	min   float64
	rise  float64 // dB per frame
	hang  int     // frames
	gap   int     // frames
	minSg int64   // frames

	// high-pass biquad (direct form I)
	b0, b1, b2, a1, a2 float64
	x1, x2, y1, y2     float64

	acc  float64 // sum of squares of the current frame
	fill int     // samples in the current frame

	floor    float64
	hasFloor bool
	last     float64

	hist      [3]bool // onset decisions of the last 3 frames, hist[2] newest
	holdBits  uint32  // bit k set: frame idx-k was at least HoldDB above the floor
	lastEnd   int64   // first frame after the previous segment
	inSeg     bool
	quiet     int   // consecutive quiet frames in the open segment
	segStart  int64 // frame index
	segLast   int64 // last speech frame index
	segSpeech int64

	frames    int64
	committed int64 // speech frames of closed, kept segments
	segs      []Segment
	stats     Stats
}

// New returns a detector for mono 16-bit audio at sampleRate Hz (8000 to
// 48000, a multiple of 50 so frames hold whole samples).
func New(sampleRate int, opts *Options) (*Energy, error) {
	if sampleRate < 8000 || sampleRate > 48000 || sampleRate%50 != 0 {
		return nil, fmt.Errorf("%w: %d Hz", ErrSampleRate, sampleRate)
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.OnsetDB == 0 {
		o.OnsetDB = 9
	}
	if o.HoldDB == 0 {
		o.HoldDB = 3
	}
	o.HoldDB = min(o.HoldDB, o.OnsetDB)
	if o.MinLevel == 0 {
		o.MinLevel = -50
	}
	if o.FloorRise == 0 {
		o.FloorRise = 2
	}
	if o.Hangover == 0 {
		o.Hangover = 200 * time.Millisecond
	}
	if o.FillGap == 0 {
		o.FillGap = 100 * time.Millisecond
	}
	if o.MinSegment == 0 {
		o.MinSegment = 100 * time.Millisecond
	}
	if o.MaxSegments == 0 {
		o.MaxSegments = 256
	}
	e := &Energy{
		rate:  sampleRate,
		n:     sampleRate / 50,
		onset: o.OnsetDB,
		hold:  o.HoldDB,
		min:   o.MinLevel,
		rise:  o.FloorRise * Frame.Seconds(),
		hang:  int(max(o.Hangover/Frame, 0)),
		gap:   int(max(o.FillGap/Frame, 0)),
		minSg: int64(max((o.MinSegment+Frame-1)/Frame, 1)),
		segs:  make([]Segment, 0, max(o.MaxSegments, 1)),
	}
	// RBJ high-pass, f0 = 100 Hz, Q = 1/sqrt(2).
	w0 := 2 * math.Pi * 100 / float64(sampleRate)
	alpha := math.Sin(w0) / math.Sqrt2 // sin(w0)/(2Q) with Q = 1/√2
	cw := math.Cos(w0)
	a0 := 1 + alpha
	e.b0 = (1 + cw) / 2 / a0
	e.b1 = -(1 + cw) / a0
	e.b2 = (1 + cw) / 2 / a0
	e.a1 = -2 * cw / a0
	e.a2 = (1 - alpha) / a0
	return e, nil
}

// SampleRate returns the rate given to New.
func (e *Energy) SampleRate() int { return e.rate }

// Process analyses samples, which may be of any length: they are cut into
// 20 ms frames and a partial frame is kept for the next call. It reports
// whether a speech segment is open after the last complete frame (hangover
// included).
func (e *Energy) Process(samples []int16) bool {
	for _, s := range samples {
		x := float64(s) / 32768
		y := e.b0*x + e.b1*e.x1 + e.b2*e.x2 - e.a1*e.y1 - e.a2*e.y2
		e.x2, e.x1 = e.x1, x
		e.y2, e.y1 = e.y1, y
		e.acc += y * y
		e.fill++
		if e.fill == e.n {
			e.frame(e.acc / float64(e.n))
			e.acc, e.fill = 0, 0
		}
	}
	return e.inSeg
}

func (e *Energy) frame(power float64) {
	level := 10 * math.Log10(power+1e-12) // -120 dBFS for digital silence
	e.last = level
	idx := e.frames
	e.frames++
	e.stats.Frames++
	if !e.hasFloor {
		e.floor, e.hasFloor = level, true
	}
	loud := level > e.min
	onset := loud && level > e.floor+e.onset
	holdOK := loud && level > e.floor+e.hold
	e.holdBits <<= 1
	if holdOK {
		e.holdBits |= 1
	}

	e.hist[0], e.hist[1], e.hist[2] = e.hist[1], e.hist[2], onset

	if !e.inSeg {
		if onset && count(e.hist) >= 2 {
			e.inSeg = true
			e.quiet = 0
			// Open the segment at the speech that led up to the onset: walk
			// back over the frames that were at least HoldDB above the
			// floor (the onset window and up to lookback frames before it).
			start, sp := idx, int64(1)
			for k := int64(1); k <= lookback && idx-k >= e.lastEnd; k++ {
				if e.holdBits&(1<<k) != 0 {
					start = idx - k
					sp++
				} else if k > 2 {
					break
				}
			}
			e.segStart, e.segLast, e.segSpeech = start, idx, sp
		}
	} else {
		if holdOK {
			if e.quiet <= e.gap {
				e.segSpeech += int64(e.quiet)
			}
			e.quiet = 0
			e.segLast = idx
			e.segSpeech++
		} else {
			e.quiet++
			if e.quiet > e.hang {
				e.closeSegment()
			}
		}
	}

	// Track the noise floor: down at once (halfway), up slowly (FloorRise),
	// and up faster towards frames that are not speech.
	switch {
	case level < e.floor:
		e.floor += 0.5 * (level - e.floor)
	case !onset && !(e.inSeg && holdOK):
		e.floor = min(e.floor+max(e.rise, 0.05*(level-e.floor)), level)
	default:
		e.floor = min(e.floor+e.rise, level)
	}
}

// lookback is how many frames before an onset may join the segment.
const lookback = 10

func count(h [3]bool) int {
	n := 0
	for _, b := range h {
		if b {
			n++
		}
	}
	return n
}

func (e *Energy) closeSegment() {
	e.inSeg = false
	e.quiet = 0
	e.hist = [3]bool{}
	e.lastEnd = e.frames
	if e.segSpeech < e.minSg {
		e.stats.ShortSegments++
		return
	}
	e.committed += e.segSpeech
	e.stats.SpeechFrames += e.segSpeech
	e.stats.Segments++
	if len(e.segs) < cap(e.segs) {
		e.segs = append(e.segs, Segment{
			Start:  time.Duration(e.segStart) * Frame,
			End:    time.Duration(e.segLast+1) * Frame,
			Speech: time.Duration(e.segSpeech) * Frame,
		})
	} else {
		e.stats.DroppedSegments++
	}
}

// NetSpeech returns the net speech detected so far: the speech frames of
// all segments, including the open one once it holds MinSegment of speech,
// without hangover.
func (e *Energy) NetSpeech() time.Duration {
	n := e.committed
	if e.inSeg && e.segSpeech >= e.minSg {
		n += e.segSpeech
	}
	return time.Duration(n) * Frame
}

// Processed returns the media time analysed: the complete frames seen.
func (e *Energy) Processed() time.Duration { return time.Duration(e.frames) * Frame }

// InSpeech reports whether a segment is open.
func (e *Energy) InSpeech() bool { return e.inSeg }

// Level returns the level of the last frame in dBFS (after the high-pass).
func (e *Energy) Level() float64 { return e.last }

// Floor returns the tracked noise floor in dBFS.
func (e *Energy) Floor() float64 { return e.floor }

// Segments returns the closed segments kept so far (at most MaxSegments).
// The slice is shared with the detector: copy it to keep it across calls to
// Process.
func (e *Energy) Segments() []Segment { return e.segs }

// Stats returns the detector's counters.
func (e *Energy) Stats() Stats { return e.stats }

// Reset forgets all state, as if the detector were new.
func (e *Energy) Reset() {
	e.x1, e.x2, e.y1, e.y2 = 0, 0, 0, 0
	e.acc, e.fill = 0, 0
	e.floor, e.hasFloor, e.last = 0, false, 0
	e.hist = [3]bool{}
	e.holdBits, e.lastEnd = 0, 0
	e.inSeg, e.quiet = false, 0
	e.segStart, e.segLast, e.segSpeech = 0, 0, 0
	e.frames, e.committed = 0, 0
	e.segs = e.segs[:0]
	e.stats = Stats{}
}

// Flush ends the stream: it closes an open segment (keeping it if it holds
// MinSegment of speech) and drops a partial frame. Process may be called
// again afterwards; the next samples start a new frame.
func (e *Energy) Flush() {
	e.acc, e.fill = 0, 0
	if e.inSeg {
		e.closeSegment()
	}
}
