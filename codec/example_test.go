package codec_test

import (
	"bytes"
	"fmt"
	"os"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
)

// Decode one 20 ms Twilio media payload (160 μ-law bytes) into a reused
// buffer.
func ExampleDecodeULaw() {
	payload := []byte{0xFF, 0x7F, 0x00, 0x80, 0xEF, 0x6F} // from a media message
	pcm := make([]int16, 160)                             // reuse across frames
	n := codec.DecodeULaw(pcm, payload)
	fmt.Println(pcm[:n])
	// Output: [0 0 -32124 32124 132 -132]
}

// Upsample 8 kHz call audio to 16 kHz for a wideband model, in 20 ms frames.
func ExampleNewResampler() {
	r, err := codec.NewResampler(8000, 16000, codec.Telephone)
	if err != nil {
		panic(err)
	}
	in := make([]float32, 160)                // one 20 ms frame at 8 kHz
	out := make([]float32, r.MaxOut(len(in))) // allocate once per stream
	total := 0
	for range 50 { // one second of frames
		total += r.Process(out, in)
	}
	tail := make([]float32, r.Latency())
	total += r.Flush(tail)
	fmt.Println("latency:", r.Latency(), "samples; output:", total-r.Latency(), "samples")
	// Output: latency: 31 samples; output: 16000 samples
}

// Parse a WAV file held in memory and decode its audio to 16-bit samples.
func ExampleParseWAV() {
	file, _ := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, []byte{0xFF, 0x80, 0x00})
	w, err := codec.ParseWAV(file)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(w.Format.Encoding, w.Format.SampleRate, "Hz", w.Format.Channels, "channel,", w.Samples(), "samples:", w.Mono(0))
	// Output: PCMU 8000 Hz 1 channel, 3 samples: [0 32124 -32124]
}

// Record a call's μ-law frames to a WAV file as they arrive. With a
// seekable destination such as an *os.File, Close writes the final sizes
// into the header; on a pipe the header keeps the streaming size, which
// readers take as "until the end of the file".
func ExampleNewWAVWriter() {
	f, err := os.CreateTemp("", "call-*.wav")
	if err != nil {
		panic(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	w, err := codec.NewWAVWriter(f, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1})
	if err != nil {
		panic(err)
	}
	frame := make([]byte, 160) // one 20 ms media payload
	for range 50 {
		if _, err := w.Write(frame); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil { // does not close f
		panic(err)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		panic(err)
	}
	rec, err := codec.ParseWAV(b)
	if err != nil {
		panic(err)
	}
	r, err := codec.NewWAVReader(bytes.NewReader(b))
	if err != nil {
		panic(err)
	}
	fmt.Println(rec.Format.Encoding, rec.Duration(), "declared data size:", r.DataSize())
	// Output: PCMU 1s declared data size: 8000
}
