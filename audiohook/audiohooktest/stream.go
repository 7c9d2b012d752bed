package audiohooktest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sync"
	"time"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/audiohook/wire"
	"github.com/voicegate/voicegate/codec"
)

// StreamOptions configures Client.Stream. A nil *StreamOptions sends 200 ms
// chunks in real time, as the Genesys client does.
type StreamOptions struct {
	// Chunk is the audio per binary message, 20 to 200 ms; 0 means 200 ms.
	Chunk time.Duration
	// Fast sends as fast as the connection allows instead of in real time
	// (for tests).
	Fast bool
}

// Stream sends the audio of src in the negotiated format until src returns
// io.EOF (nil is returned; the session stays open for Close), ctx ends, or
// the session stops: it returns a *DisconnectError after disconnect, a
// *ProtocolError after a server violation. When opened carried discardTo,
// the first discardTo of src is skipped (the media position starts
// there), as the Genesys client skips its backlog.
//
// Frames of any encoding (PCMU, PCMA, L16) are converted. Each negotiated
// channel takes the src channel of the same party (external =
// voicegate.Customer, internal = voicegate.Agent); a mono src whose party
// is unknown feeds every channel; a missing party is sent as silence. While
// the server has paused the stream the audio is dropped and the media
// position keeps running, so resumed reports the gap. For a probe, Stream
// sends one empty binary message.
func (c *Client) Stream(ctx context.Context, src voicegate.FrameReader, opts *StreamOptions) error {
	var o StreamOptions
	if opts != nil {
		o = *opts
	}
	if o.Chunk <= 0 {
		o.Chunk = 200 * time.Millisecond
	}
	o.Chunk = min(max(o.Chunk, 20*time.Millisecond), 200*time.Millisecond)
	if err := c.terminal(); err != nil {
		return err
	}
	if c.opts.Probe {
		if err := c.sendBinary(ctx, []byte{}); err != nil {
			select {
			case <-c.streamStop:
				return c.stopErr()
			default:
			}
			return err
		}
		return nil
	}
	media := c.Media()
	if media == nil {
		return nil
	}
	chunk := int(o.Chunk / (time.Second / 8000))
	nch := len(media.Channels)
	parties := make([]voicegate.Party, nch)
	for i, ch := range media.Channels {
		parties[i] = voicegate.Agent
		if ch == wire.ChannelExternal {
			parties[i] = voicegate.Customer
		}
	}
	l16 := media.Format == wire.FormatL16
	bps := 1
	if l16 {
		bps = 2
	}
	pcm := make([][]int16, nch)
	for i := range pcm {
		pcm[i] = make([]int16, chunk)
	}
	out := make([]byte, chunk*nch*bps)
	srcCh := make([]int, nch)
	fill := 0
	skip := c.skipSamples.Swap(0)
	start := time.Now()
	var sent time.Duration

	emit := func(n int) error {
		if n == 0 {
			return nil
		}
		d := time.Duration(n) * time.Second / 8000
		if !o.Fast {
			if wait := time.Until(start.Add(sent)); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-c.streamStop:
					t.Stop()
					return c.stopErr()
				}
			}
		}
		sent += d
		if c.Paused() {
			c.posNs.Add(int64(d))
			return nil
		}
		b := out[:n*nch*bps]
		for i := 0; i < n; i++ {
			for k := 0; k < nch; k++ {
				s := pcm[k][i]
				if l16 {
					binary.LittleEndian.PutUint16(b[(i*nch+k)*2:], uint16(s))
				} else {
					b[i*nch+k] = codec.EncodeULawSample(s)
				}
			}
		}
		// Paused is checked again under the write lock: a pause that
		// arrived meanwhile drops this chunk too.
		if _, err := c.sendAudio(ctx, b, true); err != nil {
			select {
			case <-c.streamStop:
				return c.stopErr()
			default:
			}
			return err
		}
		c.posNs.Add(int64(d))
		return nil
	}

	for {
		select {
		case <-c.streamStop:
			return c.stopErr()
		default:
		}
		f, err := src.ReadFrame(ctx)
		if errors.Is(err, io.EOF) {
			return emit(fill)
		}
		if err != nil {
			return err
		}
		if err := f.Validate(); err != nil {
			return fmt.Errorf("audiohook: stream: %w", err)
		}
		if f.SampleRate != 8000 {
			return fmt.Errorf("audiohook: stream: sample rate %d, want 8000", f.SampleRate)
		}
		for k, p := range parties {
			srcCh[k] = f.Channel(p)
			if srcCh[k] < 0 && f.Channels == 1 && f.Parties[0] == voicegate.PartyUnknown {
				srcCh[k] = 0
			}
		}
		ns := f.Samples()
		for i := 0; i < ns; i++ {
			if skip > 0 {
				skip--
				continue
			}
			for k := 0; k < nch; k++ {
				var s int16
				if ch := srcCh[k]; ch >= 0 {
					idx := i*f.Channels + ch
					switch f.Encoding {
					case voicegate.PCMU:
						s = codec.DecodeULawSample(f.Payload[idx])
					case voicegate.PCMA:
						s = codec.DecodeALawSample(f.Payload[idx])
					case voicegate.L16:
						s = int16(binary.LittleEndian.Uint16(f.Payload[idx*2:]))
					}
				}
				pcm[k][fill] = s
			}
			fill++
			if fill == chunk {
				if err := emit(fill); err != nil {
					return err
				}
				fill = 0
			}
		}
	}
}

// toneReader generates a sine tone. Concurrent calls are serialised, as
// the voicegate.FrameReader contract says.
type toneReader struct {
	mu      sync.Mutex
	freq    [voicegate.MaxChannels]float64
	parties [voicegate.MaxChannels]voicegate.Party
	nch     int
	total   int
	pos     int
	buf     []byte
}

// ToneSource returns a FrameReader of L16 8 kHz audio in 20 ms frames
// lasting d: a sine of freqHz on the customer channel. With a second
// frequency it is stereo, customer then agent.
func ToneSource(d time.Duration, freqHz ...float64) voicegate.FrameReader {
	t := &toneReader{total: int(d / (time.Second / 8000)), nch: 1}
	if len(freqHz) == 0 {
		freqHz = []float64{440}
	}
	t.freq[0] = freqHz[0]
	t.parties[0] = voicegate.Customer
	if len(freqHz) > 1 {
		t.nch = 2
		t.freq[1] = freqHz[1]
		t.parties[1] = voicegate.Agent
	}
	t.buf = make([]byte, 160*2*t.nch)
	return t
}

// ReadFrame implements voicegate.FrameReader.
func (t *toneReader) ReadFrame(ctx context.Context) (voicegate.Frame, error) {
	if err := ctx.Err(); err != nil {
		return voicegate.Frame{}, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pos >= t.total {
		return voicegate.Frame{}, io.EOF
	}
	n := min(160, t.total-t.pos)
	for i := 0; i < n; i++ {
		for k := 0; k < t.nch; k++ {
			v := 8000 * math.Sin(2*math.Pi*t.freq[k]*float64(t.pos+i)/8000)
			binary.LittleEndian.PutUint16(t.buf[(i*t.nch+k)*2:], uint16(int16(v)))
		}
	}
	f := voicegate.Frame{
		Encoding: voicegate.L16, SampleRate: 8000, Channels: t.nch, Parties: t.parties,
		Seq: uint64(t.pos/160 + 1), Timestamp: time.Duration(t.pos) * time.Second / 8000,
		Payload: t.buf[:n*2*t.nch],
	}
	t.pos += n
	return f, nil
}

// WAVSource reads an 8 kHz WAV file (PCM16, μ-law or A-law, mono or
// stereo) and returns it as a FrameReader of 20 ms frames. Channel 0 is the
// customer, channel 1 the agent.
func WAVSource(path string) (voicegate.FrameReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	w, err := codec.ReadWAV(f, codec.DefaultMaxWAVData)
	if err != nil {
		return nil, fmt.Errorf("audiohook: %s: %w", path, err)
	}
	if w.Format.SampleRate != 8000 {
		return nil, fmt.Errorf("audiohook: %s: sample rate %d, want 8000", path, w.Format.SampleRate)
	}
	return codec.NewWAVFrameReader(w, 20*time.Millisecond), nil
}
