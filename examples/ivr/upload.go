package main

import (
	"fmt"
	"math"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
)

// Channel choices for stereo uploads (query parameter channel).
const (
	channelFirst  = "1"   // left; the customer in voicegate's convention
	channelSecond = "2"   // right
	channelMix    = "mix" // average of both
	// defaultChannel is used when a stereo upload names none.
	defaultChannel = channelFirst
)

// inputInfo says what was done to an uploaded recording before the engine
// heard it; it is part of the result JSON.
type inputInfo struct {
	Format     string  `json:"format"`      // as stored: pcm16, float32, float64, ulaw or alaw
	SampleRate int     `json:"sample_rate"` // of the file, Hz
	Channels   int     `json:"channels"`    // of the file
	Channel    string  `json:"channel"`     // used: "1", "2" or "mix"
	EngineRate int     `json:"engine_sample_rate"`
	Duration   float64 `json:"duration"` // seconds of audio sent, millisecond precision
}

// engineRate is the rate the engine takes for a recording at rate Hz:
// das-Peak takes 8 and 16 kHz; anything else is resampled to the nearer
// of the two that keeps the band (16 kHz above 8 kHz).
func engineRate(rate int) int {
	if rate <= 8000 {
		return 8000
	}
	return 16000
}

// prepareUpload turns an uploaded WAV into mono audio at a rate the
// engine takes, using channel ch of a stereo file ("" for the default). A
// mono file at 8 or 16 kHz is passed on in its own encoding.
func prepareUpload(w *codec.WAV, ch string) (*codec.WAV, inputInfo, error) {
	info := inputInfo{Format: w.Source.String(), SampleRate: w.Format.SampleRate, Channels: w.Format.Channels}
	if ch == "" {
		ch = defaultChannel
	}
	var pcm []int16
	switch {
	case ch != channelFirst && ch != channelSecond && ch != channelMix:
		return nil, info, fmt.Errorf("channel must be 1, 2 or mix, not %q", ch)
	case w.Format.Channels == 1 && ch == channelSecond:
		return nil, info, fmt.Errorf("channel 2 requested but the recording is mono")
	case w.Format.Channels == 1:
		info.Channel = channelFirst
	case ch == channelMix:
		info.Channel = ch
		pcm = w.MonoMix()
	default:
		info.Channel = ch
		pcm = w.Mono(int(ch[0] - '1'))
	}
	info.EngineRate = engineRate(w.Format.SampleRate)
	out := w
	if pcm != nil || info.EngineRate != w.Format.SampleRate {
		if pcm == nil {
			pcm = w.PCM(nil)
		}
		if info.EngineRate != w.Format.SampleRate {
			var err error
			if pcm, err = resample(pcm, w.Format.SampleRate, info.EngineRate); err != nil {
				return nil, info, err
			}
		}
		data := make([]byte, 2*len(pcm))
		codec.Int16ToBytes(data, pcm)
		out = &codec.WAV{Format: codec.WAVFormat{Encoding: voicegate.L16, SampleRate: info.EngineRate, Channels: 1}, Data: data}
	}
	info.Duration = math.Round(out.Duration().Seconds()*1000) / 1000
	return out, info, nil
}

// resample converts mono samples from rate in to rate out, aligned: the
// filter delay is dropped and the tail flushed, so the output covers the
// input exactly.
func resample(pcm []int16, in, out int) ([]int16, error) {
	r, err := codec.NewResampler(in, out, codec.High)
	if err != nil {
		return nil, err
	}
	buf := make([]int16, r.MaxOut(len(pcm))+r.Latency())
	n := r.ProcessInt16(buf, pcm)
	tail := make([]float32, r.Latency())
	k := r.Flush(tail)
	n += codec.FloatToInt16(buf[n:], tail[:k])
	lat := min(r.Latency(), n)
	return buf[lat:n], nil
}
