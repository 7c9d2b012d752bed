package voicegate

import (
	"context"
	"fmt"
	"time"
)

// Encoding is the sample encoding of a frame's payload.
type Encoding uint8

const (
	// EncodingUnknown is the zero value; no valid frame carries it.
	EncodingUnknown Encoding = iota
	// PCMU is G.711 μ-law, one byte per sample (Twilio "audio/x-mulaw",
	// AudioHook "PCMU").
	PCMU
	// PCMA is G.711 A-law, one byte per sample.
	PCMA
	// L16 is signed 16-bit linear PCM, little-endian, two bytes per sample
	// (AudioHook "L16").
	L16
)

// String returns the encoding's name as the protocols spell it.
func (e Encoding) String() string {
	switch e {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	case L16:
		return "L16"
	}
	return fmt.Sprintf("Encoding(%d)", uint8(e))
}

// BytesPerSample is the size of one sample of one channel, or 0 for an
// unknown encoding.
func (e Encoding) BytesPerSample() int {
	switch e {
	case PCMU, PCMA:
		return 1
	case L16:
		return 2
	}
	return 0
}

// Party tells who speaks on a channel.
type Party uint8

const (
	// PartyUnknown is the zero value: the protocol did not say.
	PartyUnknown Party = iota
	// Customer is the caller: Twilio's inbound track, AudioHook's external
	// channel.
	Customer
	// Agent is the contact center's side (agent or IVR): Twilio's outbound
	// track, AudioHook's internal channel.
	Agent
)

// String returns "customer", "agent" or "unknown".
func (p Party) String() string {
	switch p {
	case Customer:
		return "customer"
	case Agent:
		return "agent"
	}
	return "unknown"
}

// MarshalText implements encoding.TextMarshaler.
func (p Party) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler. It accepts "customer",
// "agent", "unknown" and the empty string.
func (p *Party) UnmarshalText(b []byte) error {
	switch string(b) {
	case "customer":
		*p = Customer
	case "agent":
		*p = Agent
	case "unknown", "":
		*p = PartyUnknown
	default:
		return fmt.Errorf("voicegate: unknown party %q", b)
	}
	return nil
}

// MaxChannels is the largest channel count a Frame carries (AudioHook stereo:
// external and internal).
const MaxChannels = 2

// Frame is a chunk of call audio, typically 20 ms (Twilio) or 20–200 ms
// (AudioHook).
//
// Multi-channel payloads are sample-interleaved: for two channels of PCMU,
// byte 0 is channel 0 sample 0, byte 1 is channel 1 sample 0, and so on.
type Frame struct {
	// Encoding of Payload.
	Encoding Encoding
	// SampleRate in Hz; 8000 for both providers today.
	SampleRate int
	// Channels is the number of interleaved channels, 1 or 2.
	Channels int
	// Parties[i] is who speaks on channel i; only the first Channels entries
	// are meaningful.
	Parties [MaxChannels]Party
	// Seq counts frames per stream and party from 1; a jump means frames
	// were lost or dropped.
	Seq uint64
	// Timestamp is the media time of the first sample since the stream
	// started, taken from the protocol (Twilio media.timestamp, AudioHook
	// position), not from arrival time.
	Timestamp time.Duration
	// Payload is the encoded audio. It is borrowed: valid until the next
	// ReadFrame call on the reader that returned it. Use Clone to keep it.
	Payload []byte
}

// Clone returns a copy of f whose Payload does not alias f's.
func (f Frame) Clone() Frame {
	if f.Payload != nil {
		f.Payload = append(make([]byte, 0, len(f.Payload)), f.Payload...)
	}
	return f
}

// Samples returns the number of samples per channel in the payload. It is 0
// when the format is incomplete.
func (f Frame) Samples() int {
	bps := f.Encoding.BytesPerSample()
	if bps == 0 || f.Channels <= 0 {
		return 0
	}
	return len(f.Payload) / (bps * f.Channels)
}

// Duration returns the play time of the payload.
func (f Frame) Duration() time.Duration {
	if f.SampleRate <= 0 {
		return 0
	}
	return time.Duration(f.Samples()) * time.Second / time.Duration(f.SampleRate)
}

// End returns Timestamp + Duration: the media time just after the frame.
func (f Frame) End() time.Duration { return f.Timestamp + f.Duration() }

// Channel returns the index of the channel on which p speaks, or -1.
func (f Frame) Channel(p Party) int {
	for i := 0; i < f.Channels && i < MaxChannels; i++ {
		if f.Parties[i] == p {
			return i
		}
	}
	return -1
}

// Validate reports whether the frame's format fields are consistent with its
// payload: a known encoding, a positive sample rate, 1 or 2 channels and a
// payload that holds a whole number of samples for every channel.
func (f Frame) Validate() error {
	bps := f.Encoding.BytesPerSample()
	switch {
	case bps == 0:
		return fmt.Errorf("%w: encoding %v", ErrFormat, f.Encoding)
	case f.SampleRate <= 0:
		return fmt.Errorf("%w: sample rate %d", ErrFormat, f.SampleRate)
	case f.Channels < 1 || f.Channels > MaxChannels:
		return fmt.Errorf("%w: %d channels", ErrFormat, f.Channels)
	case len(f.Payload)%(bps*f.Channels) != 0:
		return fmt.Errorf("%w: payload %d bytes is not a multiple of %d", ErrFormat, len(f.Payload), bps*f.Channels)
	}
	return nil
}

// MaxGapFill is the longest gap in media time that any reader of this
// module fills with silence when asked to (twilio.AcceptOptions.FillGaps,
// audiohook.ServerOptions.FillGaps, the AudioHook recorder, daspeak's
// Config.FillGaps). A longer gap is counted but not filled: two seconds of
// made-up silence still keep a speech timeline, an hour of it would only
// hide a broken stream.
const MaxGapFill = 2 * time.Second

// FrameReader is a source of frames that the caller pulls. Every reader in
// this module (twilio.Stream, audiohook.Session, codec.WAVFrameReader,
// SliceReader and the simulators' sources) honours this contract.
//
// ReadFrame blocks until a frame is available, the stream ends, or ctx is
// done:
//
//   - The frame's Payload is borrowed: it is valid until the next ReadFrame
//     call on the same reader, by any goroutine. Use Frame.Clone to keep it.
//   - ReadFrame may be called from several goroutines; calls are
//     serialised and each frame goes to exactly one caller. Since a payload
//     is reused by the next call, concurrent callers that keep payloads
//     must coordinate; one consumer per reader is the normal use.
//   - Cancelling ctx returns ctx.Err() and leaves the stream usable: a later
//     call reads on, nothing was lost.
//   - At a clean end of the stream (a file's last frame; Twilio's stop
//     event; AudioHook's close transaction) ReadFrame returns the frames
//     still queued, then io.EOF, and io.EOF again on every later call.
//   - At an abnormal end (connection lost, peer protocol violation, idle
//     timeout, WebSocket closed without the protocol's goodbye) it returns
//     the frames still queued, then a *StreamError wrapping the cause.
//   - After Close or CloseNow of a live stream it returns, at once and
//     without the queued frames, an error satisfying
//     errors.Is(err, net.ErrClosed) (ErrClosed).
//
// Timestamp is media time from the protocol, never arrival time. Frames of
// one party have strictly increasing Timestamps; a frame that is not after
// the previous one of its party is dropped and counted. A forward jump is a
// gap: counted in the reader's Stats (Gaps, GapTime), optionally filled
// with silence up to MaxGapFill, and a jump in Seq when not filled.
//
// Live readers (see Stream) queue frames in a bounded queue that drops the
// oldest frame when the consumer falls behind, counted in
// Stats().FramesDropped; the protocol keeps working whether or not anyone
// reads.
type FrameReader interface {
	ReadFrame(ctx context.Context) (Frame, error)
}

// Stream is a FrameReader fed by a live connection, read by a goroutine the
// stream owns (twilio.Stream, audiohook.Session). Besides the FrameReader
// contract:
//
//   - Done is closed when the stream has ended and the goroutines it owns
//     have exited: the connection is gone, no more frames will be queued
//     and Stats are final.
//   - Err is nil before the end and after a clean end; after an abnormal
//     end it is the *StreamError that ReadFrame returns; ErrClosed
//     (net.ErrClosed) when Close or CloseNow came first.
//   - Close runs the protocol's goodbye (bounded by a timeout), closes the
//     connection and waits for the reader goroutine; CloseNow does the same
//     without the goodbye. Both are idempotent: the first call returns nil,
//     or the error of a goodbye that could not be completed (the connection
//     is closed all the same); later calls return ErrClosed.
type Stream interface {
	FrameReader
	Done() <-chan struct{}
	Err() error
	Close() error
	CloseNow() error
}
