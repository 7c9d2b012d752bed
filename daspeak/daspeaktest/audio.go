package daspeaktest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/daspeak"
)

// Exact das-Peak error messages of the audio checks.
const (
	msgTooManyChannels = "The wav has more channels than are accepted by the system"
	msgSampleRate      = "The sample rate is not supported, must be 8 Khz or 16 Khz"
	// The das-Peak message ends with the list of codecs; the list text is
	// emulator-completed from the codecs das-Peak documents.
	msgCodec           = "Provided audio data uses an unsupported codec. Supported codecs are: PCM_16, ULAW, ALAW"
	msgTooLong         = "The wav duration is longer than 30 seconds"
	msgInvalidChannel  = "Invalid specified channel/s"
	msgNoAudio         = "No audio input"
	msgDecryption      = "Decryption error"
	msgInternal        = "An internal server error occured"
	msgUnsupportedType = "415 Unsupported Media Type: The server does not support the media type transmitted in the request"
	// msgNotWAV answers a file that is not a RIFF/WAVE file at all
	// (emulator-defined wording).
	msgNotWAV = "The audio could not be read as a wav file"
)

// speechRMS is the frame RMS (in 16-bit units, about -40 dBFS) above which
// the emulator's energy measure counts a 20 ms frame as speech.
const speechRMS = 330

// NetSpeech estimates the net speech in pcm (mono, rate Hz) in seconds with
// a simple energy measure: the total length of the 20 ms frames whose RMS
// exceeds about -40 dBFS. The emulator uses it when an engine does not
// report net speech itself; FakeEngine uses it always.
func NetSpeech(pcm []int16, rate int) float64 {
	if rate <= 0 {
		return 0
	}
	frame := rate / 50
	if frame == 0 {
		return 0
	}
	speech := 0
	for i := 0; i+frame <= len(pcm); i += frame {
		var sum int64
		for _, s := range pcm[i : i+frame] {
			sum += int64(s) * int64(s)
		}
		if math.Sqrt(float64(sum)/float64(frame)) >= speechRMS {
			speech += frame
		}
	}
	return float64(speech) / float64(rate)
}

// audio is a WAV file that passed the das-Peak checks, reduced to the
// selected channel.
type audio struct {
	pcm      []int16
	rate     int
	duration float64 // seconds
}

// parseChannel reads the das-Peak "channel" field: "" means 1; only 1 and 2
// are valid.
func parseChannel(v string) (int, *daspeak.APIError) {
	switch v {
	case "", "1":
		return 1, nil
	case "2":
		return 2, nil
	}
	return 0, apiError(daspeak.ExceptionInvalidChannel, msgInvalidChannel)
}

// checkAudio validates a WAV file as das-Peak does and returns the samples
// of the 1-based channel ch.
func (e *Emulator) checkAudio(b []byte, ch int) (*audio, *daspeak.APIError) {
	if len(b) == 0 {
		return nil, apiError(daspeak.ExceptionNoAudio, msgNoAudio)
	}
	w, err := codec.ParseWAV(b)
	if err != nil {
		if errors.Is(err, codec.ErrUnsupportedWAV) {
			return nil, classifyUnsupported(b)
		}
		return nil, apiError(daspeak.ExceptionAudioInput, msgNotWAV)
	}
	if w.Source.Float() {
		// codec converts float files; das-Peak takes PCM_16, ULAW and ALAW.
		return nil, classifyUnsupported(b)
	}
	f := w.Format
	if f.Channels > 2 {
		return nil, apiError(daspeak.ExceptionAudioInput, msgTooManyChannels)
	}
	if f.SampleRate != 8000 && f.SampleRate != 16000 {
		return nil, apiError(daspeak.ExceptionAudioInput, msgSampleRate)
	}
	d := w.Duration()
	if d >= e.opts.MaxAudioDuration {
		return nil, apiError(daspeak.ExceptionAudioInput, msgTooLong)
	}
	if ch > f.Channels {
		return nil, apiError(daspeak.ExceptionInvalidChannel, msgInvalidChannel)
	}
	pcm := w.Mono(ch - 1)
	if w.Samples() == 0 {
		return nil, apiError(daspeak.ExceptionNoAudio, msgNoAudio)
	}
	return &audio{pcm: pcm, rate: f.SampleRate, duration: d.Seconds()}, nil
}

// classifyUnsupported reads the fmt chunk of a WAV file that codec.ParseWAV
// rejected as unsupported, to give das-Peak's message for it: too many
// channels, then sample rate, then codec.
func classifyUnsupported(b []byte) *daspeak.APIError {
	channels, rate, ok := fmtFields(b)
	switch {
	case ok && channels > 2:
		return apiError(daspeak.ExceptionAudioInput, msgTooManyChannels)
	case ok && rate != 8000 && rate != 16000:
		return apiError(daspeak.ExceptionAudioInput, msgSampleRate)
	}
	return apiError(daspeak.ExceptionAudioInput, msgCodec)
}

// fmtFields finds the fmt chunk of a RIFF/WAVE file and returns its channel
// count and sample rate.
func fmtFields(b []byte) (channels, rate int, ok bool) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return 0, 0, false
	}
	for off := 12; off+8 <= len(b); {
		id := string(b[off : off+4])
		size := int(binary.LittleEndian.Uint32(b[off+4:]))
		body := off + 8
		if id == "fmt " {
			if size < 16 || body+16 > len(b) {
				return 0, 0, false
			}
			return int(binary.LittleEndian.Uint16(b[body+2:])), int(binary.LittleEndian.Uint32(b[body+4:])), true
		}
		if size < 0 || size > len(b) {
			return 0, 0, false
		}
		off = body + size + size&1
	}
	return 0, 0, false
}

// checkNetSpeech applies das-Peak's minimum net speech to the value the
// engine reported, or to the emulator's own estimate when the engine
// reported none. It returns the net speech to report.
func (e *Emulator) checkNetSpeech(reported float64, a *audio) (float64, *daspeak.APIError) {
	net := reported
	if net <= 0 {
		net = NetSpeech(a.pcm, a.rate)
	}
	if net < e.opts.MinNetSpeech {
		return net, apiError(daspeak.ExceptionVoiceDurationIsNotEnough,
			fmt.Sprintf("Voice duration is not enough %.2fs < %.2fs", net, e.opts.MinNetSpeech))
	}
	return net, nil
}

func orDuration(reported float64, a *audio) float64 {
	if reported > 0 {
		return reported
	}
	return a.duration
}

// wavDuration is the play time of w in seconds.
func wavDuration(w *codec.WAV) float64 { return float64(w.Duration()) / float64(time.Second) }
