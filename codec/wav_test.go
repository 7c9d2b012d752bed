package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/voicegate/voicegate"
	"github.com/voicegate/voicegate/codec"
	"github.com/voicegate/voicegate/internal/fixtures"
)

// riff builds a RIFF/WAVE file from chunks; the RIFF size is computed unless
// riffSize is non-zero.
type chunk struct {
	id   string
	size uint32 // declared size; len(body) when 0 and sizeSet is false
	body []byte
	set  bool // size is set explicitly
}

func riff(chunks ...chunk) []byte {
	var b []byte
	b = append(b, "RIFF\x00\x00\x00\x00WAVE"...)
	for _, c := range chunks {
		b = append(b, c.id...)
		size := uint32(len(c.body))
		if c.set {
			size = c.size
		}
		b = binary.LittleEndian.AppendUint32(b, size)
		b = append(b, c.body...)
		if len(c.body)&1 == 1 && !c.set {
			b = append(b, 0)
		}
	}
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

func fmtBody(tag, channels uint16, rate uint32, bits uint16, extra ...byte) []byte {
	le := binary.LittleEndian
	block := channels * bits / 8
	var b []byte
	b = le.AppendUint16(b, tag)
	b = le.AppendUint16(b, channels)
	b = le.AppendUint32(b, rate)
	b = le.AppendUint32(b, rate*uint32(block))
	b = le.AppendUint16(b, block)
	b = le.AppendUint16(b, bits)
	return append(b, extra...)
}

// extensible returns the 24 extra bytes of a WAVE_FORMAT_EXTENSIBLE fmt
// chunk (cbSize 22) for sub-format tag.
func extensible(bits, sub uint16) []byte {
	le := binary.LittleEndian
	var b []byte
	b = le.AppendUint16(b, 22)
	b = le.AppendUint16(b, bits)
	b = le.AppendUint32(b, 0) // channel mask
	b = le.AppendUint16(b, sub)
	return append(b, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71)
}

func TestParseWAVFormats(t *testing.T) {
	pcm := []byte{1, 0, 2, 0, 3, 0, 4, 0}
	info := append([]byte("INFOISFT"), 5, 0, 0, 0, 's', 'o', 'x', '!', 0, 0)
	tests := []struct {
		name string
		file []byte
		want codec.WAVFormat
		data []byte
	}{
		{"pcm fmt16 mono", riff(chunk{id: "fmt ", body: fmtBody(1, 1, 8000, 16)}, chunk{id: "data", body: pcm}),
			codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 1}, pcm},
		{"ulaw fmt18 fact", riff(chunk{id: "fmt ", body: fmtBody(7, 1, 8000, 8, 0, 0)}, chunk{id: "fact", body: []byte{3, 0, 0, 0}}, chunk{id: "data", body: []byte{0xFF, 0x7F, 0x00}}),
			codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, []byte{0xFF, 0x7F, 0x00}},
		{"alaw stereo fmt18", riff(chunk{id: "fmt ", body: fmtBody(6, 2, 8000, 8, 0, 0)}, chunk{id: "data", body: []byte{0xD5, 0x55, 1, 2}}),
			codec.WAVFormat{Encoding: voicegate.PCMA, SampleRate: 8000, Channels: 2}, []byte{0xD5, 0x55, 1, 2}},
		{"pcm fmt40 extensible stereo 16k", riff(chunk{id: "fmt ", body: fmtBody(0xFFFE, 2, 16000, 16, extensible(16, 1)...)}, chunk{id: "data", body: pcm}),
			codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 16000, Channels: 2}, pcm},
		{"ulaw fmt40 extensible", riff(chunk{id: "fmt ", body: fmtBody(0xFFFE, 1, 8000, 8, extensible(8, 7)...)}, chunk{id: "data", body: []byte{1, 2}}),
			codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, []byte{1, 2}},
		{"LIST and odd chunks before data", riff(chunk{id: "LIST", body: info}, chunk{id: "fmt ", body: fmtBody(1, 1, 8000, 16)}, chunk{id: "junk", body: []byte{9, 9, 9}}, chunk{id: "data", body: pcm}),
			codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 1}, pcm},
		{"chunks after data ignored", riff(chunk{id: "fmt ", body: fmtBody(7, 1, 8000, 8, 0, 0)}, chunk{id: "data", body: []byte{1}}, chunk{id: "LIST", body: info}),
			codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, []byte{1}},
		{"fmt larger than 40 bytes", riff(chunk{id: "fmt ", body: fmtBody(1, 1, 8000, 16, make([]byte, 30)...)}, chunk{id: "data", body: pcm}),
			codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 1}, pcm},
		{"partial sample frame dropped", riff(chunk{id: "fmt ", body: fmtBody(1, 2, 8000, 16)}, chunk{id: "data", body: pcm[:7]}),
			codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 2}, pcm[:4]},
		{"streaming size 0xFFFFFFFF", append(riff(chunk{id: "fmt ", body: fmtBody(7, 1, 8000, 8, 0, 0)}, chunk{id: "data", size: 0xFFFFFFFF, set: true}), 1, 2, 3),
			codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, []byte{1, 2, 3}},
		{"streaming size 0", append(riff(chunk{id: "fmt ", body: fmtBody(7, 1, 8000, 8, 0, 0)}, chunk{id: "data", size: 0, set: true}), 1, 2, 3),
			codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, []byte{1, 2, 3}},
		{"sox pipe size 0x7FFFF000", append(riff(chunk{id: "fmt ", body: fmtBody(7, 1, 8000, 8, 0, 0)}, chunk{id: "data", size: 0x7FFFF000, set: true}), 1, 2, 3),
			codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}, []byte{1, 2, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := codec.ParseWAV(tc.file)
			if err != nil {
				t.Fatalf("ParseWAV: %v", err)
			}
			if w.Format != tc.want || !bytes.Equal(w.Data, tc.data) {
				t.Fatalf("ParseWAV = %+v % x, want %+v % x", w.Format, w.Data, tc.want, tc.data)
			}
			r, err := codec.ReadWAV(bytes.NewReader(tc.file), 0)
			if err != nil {
				t.Fatalf("ReadWAV: %v", err)
			}
			if r.Format != tc.want || !bytes.Equal(r.Data, tc.data) {
				t.Fatalf("ReadWAV = %+v % x, want %+v % x", r.Format, r.Data, tc.want, tc.data)
			}
			// Through a reader that returns one byte at a time.
			r, err = codec.ReadWAV(&oneByteReader{bytes.NewReader(tc.file)}, 0)
			if err != nil || !bytes.Equal(r.Data, tc.data) {
				t.Fatalf("ReadWAV one byte at a time: %v", err)
			}
		})
	}
}

type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func TestParseWAVErrors(t *testing.T) {
	good := riff(chunk{id: "fmt ", body: fmtBody(1, 1, 8000, 16)}, chunk{id: "data", body: []byte{1, 0, 2, 0}})
	tests := []struct {
		name string
		file []byte
		want error
	}{
		{"empty", nil, codec.ErrNotWAV},
		{"short", []byte("RIFF\x00\x00"), codec.ErrNotWAV},
		{"RIFX", append([]byte("RIFX"), good[4:]...), codec.ErrNotWAV},
		{"not WAVE", append(append([]byte{}, good[:8]...), append([]byte("AVI "), good[12:]...)...), codec.ErrNotWAV},
		{"header only", good[:12], codec.ErrMalformedWAV},
		{"truncated chunk header", good[:16], codec.ErrMalformedWAV},
		{"truncated fmt", good[:30], codec.ErrMalformedWAV},
		{"no data chunk", good[:36], codec.ErrMalformedWAV},
		{"data before fmt", riff(chunk{id: "data", body: []byte{1, 2}}, chunk{id: "fmt ", body: fmtBody(1, 1, 8000, 16)}), codec.ErrMalformedWAV},
		{"fmt too small", riff(chunk{id: "fmt ", body: fmtBody(1, 1, 8000, 16)[:14]}, chunk{id: "data", body: []byte{1, 2}}), codec.ErrMalformedWAV},
		{"extensible too small", riff(chunk{id: "fmt ", body: fmtBody(0xFFFE, 1, 8000, 16, 0, 0)}, chunk{id: "data", body: []byte{1, 2}}), codec.ErrMalformedWAV},
		{"extensible unknown GUID", riff(chunk{id: "fmt ", body: fmtBody(0xFFFE, 1, 8000, 16, append(extensible(16, 1)[:23], 0)...)}, chunk{id: "data", body: []byte{1, 2}}), codec.ErrUnsupportedWAV},
		{"24-bit PCM", riff(chunk{id: "fmt ", body: fmtBody(1, 1, 8000, 24)}, chunk{id: "data", body: []byte{1, 2, 3}}), codec.ErrUnsupportedWAV},
		{"IMA ADPCM", riff(chunk{id: "fmt ", body: fmtBody(0x11, 1, 8000, 4, 2, 0, 0xF9, 1)}, chunk{id: "data", body: []byte{1, 2}}), codec.ErrUnsupportedWAV},
		{"24-bit float", riff(chunk{id: "fmt ", body: fmtBody(3, 1, 8000, 24)}, chunk{id: "data", body: []byte{1, 2, 3}}), codec.ErrUnsupportedWAV},
		{"16-bit float", riff(chunk{id: "fmt ", body: fmtBody(3, 1, 8000, 16)}, chunk{id: "data", body: []byte{1, 2}}), codec.ErrUnsupportedWAV},
		{"extensible 16-bit float", riff(chunk{id: "fmt ", body: fmtBody(0xFFFE, 1, 8000, 16, extensible(16, 3)...)}, chunk{id: "data", body: []byte{1, 2}}), codec.ErrUnsupportedWAV},
		{"float block align of 16-bit", riff(chunk{id: "fmt ", body: func() []byte { b := fmtBody(3, 1, 8000, 32); b[12] = 2; return b }()}, chunk{id: "data", body: []byte{1, 2, 3, 4}}), codec.ErrMalformedWAV},
		{"float 3 channels", riff(chunk{id: "fmt ", body: fmtBody(3, 3, 8000, 32)}, chunk{id: "data", body: make([]byte, 12)}), codec.ErrUnsupportedWAV},
		{"float rate 0", riff(chunk{id: "fmt ", body: fmtBody(3, 1, 0, 64)}, chunk{id: "data", body: make([]byte, 8)}), codec.ErrUnsupportedWAV},
		{"3 channels", riff(chunk{id: "fmt ", body: fmtBody(1, 3, 8000, 16)}, chunk{id: "data", body: []byte{1, 2}}), codec.ErrUnsupportedWAV},
		{"0 channels", riff(chunk{id: "fmt ", body: fmtBody(1, 0, 8000, 16)}, chunk{id: "data", body: []byte{1, 2}}), codec.ErrUnsupportedWAV},
		{"rate 0", riff(chunk{id: "fmt ", body: fmtBody(1, 1, 0, 16)}, chunk{id: "data", body: []byte{1, 2}}), codec.ErrUnsupportedWAV},
		{"rate 4 GHz", riff(chunk{id: "fmt ", body: fmtBody(1, 1, 0xFFFFFFFF, 16)}, chunk{id: "data", body: []byte{1, 2}}), codec.ErrUnsupportedWAV},
		{"bad block align", riff(chunk{id: "fmt ", body: func() []byte { b := fmtBody(1, 1, 8000, 16); b[12] = 3; return b }()}, chunk{id: "data", body: []byte{1, 2}}), codec.ErrMalformedWAV},
		{"LIST claims 4 GB", riff(chunk{id: "fmt ", body: fmtBody(1, 1, 8000, 16)}, chunk{id: "LIST", size: 0xFFFFFFF0, set: true, body: []byte("INFO")}), codec.ErrMalformedWAV},
		{"fmt claims 4 GB", riff(chunk{id: "fmt ", size: 0xFFFFFFF0, set: true, body: fmtBody(1, 1, 8000, 16)}), codec.ErrMalformedWAV},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := codec.ParseWAV(tc.file); !errors.Is(err, tc.want) {
				t.Errorf("ParseWAV: %v, want %v", err, tc.want)
			}
			if _, err := codec.ReadWAV(bytes.NewReader(tc.file), 0); !errors.Is(err, tc.want) {
				t.Errorf("ReadWAV: %v, want %v", err, tc.want)
			}
		})
	}
}

// floatFile returns a WAV file of IEEE float samples (bits 32 or 64); ext
// selects WAVE_FORMAT_EXTENSIBLE with the float sub-format.
func floatFile(bits uint16, channels uint16, rate uint32, ext bool, samples ...float64) []byte {
	var data []byte
	for _, v := range samples {
		if bits == 32 {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(v)))
		} else {
			data = binary.LittleEndian.AppendUint64(data, math.Float64bits(v))
		}
	}
	f := fmtBody(3, channels, rate, bits)
	if ext {
		f = fmtBody(0xFFFE, channels, rate, bits, extensible(bits, 3)...)
	}
	return riff(chunk{id: "fmt ", body: f}, chunk{id: "fact", body: []byte{byte(len(samples)), 0, 0, 0}}, chunk{id: "data", body: data})
}

// TestParseWAVFloat reads 32- and 64-bit IEEE float files (format tag 3 and
// EXTENSIBLE with the float sub-format) as 16-bit PCM: scaled by 32768,
// rounded to nearest with ties to even, clipped, NaN as 0.
func TestParseWAVFloat(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	in := []float64{0, 0.5, -0.5, 1, -1, 1.5, -1.5, nan, inf, -inf, 32767.0 / 32768, -32768.0 / 32768,
		0.5 / 32768, 1.5 / 32768, 2.5 / 32768, -0.5 / 32768, -1.5 / 32768, 0.49 / 32768, 32766.5 / 32768, 1e30, -1e30}
	want := []int16{0, 16384, -16384, 32767, -32768, 32767, -32768, 0, 32767, -32768, 32767, -32768,
		0, 2, 2, 0, -2, 0, 32766, 32767, -32768}
	wantBytes := make([]byte, 2*len(want))
	for i, v := range want {
		binary.LittleEndian.PutUint16(wantBytes[2*i:], uint16(v))
	}
	for _, tc := range []struct {
		name string
		bits uint16
		ext  bool
		src  string
	}{
		{"float32", 32, false, "float32"},
		{"float64", 64, false, "float64"},
		{"extensible float32", 32, true, "float32"},
		{"extensible float64", 64, true, "float64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := floatFile(tc.bits, 1, 48000, tc.ext, in...)
			wantFmt := codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 48000, Channels: 1}
			w, err := codec.ParseWAV(file)
			if err != nil {
				t.Fatalf("ParseWAV: %v", err)
			}
			if w.Format != wantFmt || !w.Source.Float() || int(w.Source.Bits) != int(tc.bits) || w.Source.String() != tc.src {
				t.Fatalf("format %+v source %+v (%s)", w.Format, w.Source, w.Source)
			}
			if !bytes.Equal(w.Data, wantBytes) {
				t.Fatalf("ParseWAV data\n got %v\nwant %v", w.PCM(nil), want)
			}
			for name, r := range map[string]io.Reader{"whole": bytes.NewReader(file), "one byte at a time": &oneByteReader{bytes.NewReader(file)}} {
				rw, err := codec.ReadWAV(r, 0)
				if err != nil || rw.Format != wantFmt || rw.Source != w.Source || !bytes.Equal(rw.Data, wantBytes) {
					t.Fatalf("ReadWAV %s: %v %+v %v", name, err, rw, rw.PCM(nil))
				}
			}
			wr, err := codec.NewWAVReader(bytes.NewReader(file))
			if err != nil || wr.DataSize() != int64(len(wantBytes)) || wr.Source() != w.Source || wr.Format() != wantFmt {
				t.Fatalf("NewWAVReader: %v size %d", err, wr.DataSize())
			}
			// Reads of one byte split converted samples and still give
			// the same bytes.
			var got []byte
			b := make([]byte, 1)
			for {
				n, err := wr.Read(b)
				got = append(got, b[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, wantBytes) {
				t.Fatalf("Read by single bytes = %v", got)
			}
		})
	}
	// Stereo: channels stay interleaved; a trailing partial sample frame
	// (one float of two) is dropped.
	file := floatFile(32, 2, 44100, false, 0.25, -0.25, 0.5, -0.5, 0.75)
	w, err := codec.ParseWAV(file)
	if err != nil {
		t.Fatal(err)
	}
	if got := w.PCM(nil); len(got) != 4 || got[0] != 8192 || got[1] != -8192 || got[2] != 16384 || got[3] != -16384 {
		t.Fatalf("stereo PCM %v", got)
	}
	r, err := codec.ReadWAV(&oneByteReader{bytes.NewReader(file)}, 0)
	if err != nil || !bytes.Equal(r.Data, w.Data) {
		t.Fatalf("stereo ReadWAV: %v %v", err, r.PCM(nil))
	}
	// A data chunk with an incomplete last float (6 bytes).
	odd := riff(chunk{id: "fmt ", body: fmtBody(3, 1, 8000, 32)}, chunk{id: "data", body: []byte{0, 0, 0, 0x3F, 0, 0}})
	if w, err := codec.ParseWAV(odd); err != nil || len(w.Data) != 2 || w.PCM(nil)[0] != 16384 {
		t.Fatalf("odd float data: %v %+v", err, w)
	}
	if w, err := codec.ReadWAV(bytes.NewReader(odd), 0); err != nil || len(w.Data) != 2 {
		t.Fatalf("odd float data, ReadWAV: %v %+v", err, w)
	}
}

// TestReadWAVFloatLong reads a float file larger than the reader's
// conversion buffer through readers that split it at every size.
func TestReadWAVFloatLong(t *testing.T) {
	samples := make([]float64, 5000)
	for i := range samples {
		samples[i] = math.Sin(float64(i)*0.01) * 1.2 // clips at the peaks
	}
	for _, bits := range []uint16{32, 64} {
		file := floatFile(bits, 2, 48000, true, samples...)
		w, err := codec.ParseWAV(file)
		if err != nil || len(w.Data) != len(samples)*2 {
			t.Fatalf("%d bits: ParseWAV %v, %d bytes", bits, err, len(w.Data))
		}
		for _, step := range []int{1, 3, 7, 4096, 5000} {
			r, err := codec.ReadWAV(&chunkReader{r: bytes.NewReader(file), n: step}, 0)
			if err != nil || !bytes.Equal(r.Data, w.Data) {
				t.Fatalf("%d bits, reads of %d: %v", bits, step, err)
			}
		}
		// A file cut short is an error; with a placeholder data size
		// (a streaming writer) it gives the whole sample frames it holds.
		short := file[:len(file)-100]
		if _, err := codec.ReadWAV(bytes.NewReader(short), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%d bits, truncated: %v", bits, err)
		}
		short = bytes.Clone(short)
		binary.LittleEndian.PutUint32(short[bytes.Index(short, []byte("data"))+4:], 0xFFFFFFFF)
		frames := (len(samples)*int(bits)/8 - 100) / (2 * int(bits) / 8) // stereo
		want := w.Data[:frames*4]
		if r, err := codec.ReadWAV(bytes.NewReader(short), 0); err != nil || !bytes.Equal(r.Data, want) {
			t.Fatalf("%d bits, placeholder size, file cut: %v", bits, err)
		}
		// The limit applies to the converted size.
		if _, err := codec.ReadWAV(bytes.NewReader(file), int64(len(samples)*2-1)); !errors.Is(err, codec.ErrWAVTooLarge) {
			t.Fatalf("%d bits, over limit: %v", bits, err)
		}
		if r, err := codec.ReadWAV(bytes.NewReader(file), int64(len(samples)*2)); err != nil || len(r.Data) != len(samples)*2 {
			t.Fatalf("%d bits, at limit: %v", bits, err)
		}
	}
	// A float header that claims 4 GB holds what the file holds: nothing.
	lying := riff(chunk{id: "fmt ", body: fmtBody(3, 1, 8000, 32)}, chunk{id: "data", size: 0xFFFFFFF0, set: true})
	if r, err := codec.ReadWAV(bytes.NewReader(lying), 0); err != nil || len(r.Data) != 0 {
		t.Fatalf("lying float size: %v", err)
	}
	if w, err := codec.ParseWAV(lying); err != nil || len(w.Data) != 0 {
		t.Fatalf("lying float size, ParseWAV: %v", err)
	}
}

type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.n)])
}

// TestParseWAVFloatSox reads float files written by sox and compares them
// with sox's own conversion to 16 bits (without dither), within one step:
// sox rounds through a 32-bit intermediate.
func TestParseWAVFloatSox(t *testing.T) {
	if _, err := exec.LookPath("sox"); err != nil {
		t.Skip("sox not installed (Debian: apt-get install -y --no-install-recommends sox)")
	}
	dir := t.TempDir()
	for _, bits := range []string{"32", "64"} {
		fl := filepath.Join(dir, "f"+bits+".wav")
		i16 := filepath.Join(dir, "i"+bits+".wav")
		if b, err := exec.Command("sox", "-D", "-n", "-r", "44100", "-c", "2", "-e", "floating-point", "-b", bits, fl, "synth", "0.2", "sine", "440", "sine", "1000", "vol", "0.9").CombinedOutput(); err != nil {
			t.Fatalf("sox: %v %s", err, b)
		}
		if b, err := exec.Command("sox", "-D", fl, "-e", "signed-integer", "-b", "16", i16).CombinedOutput(); err != nil {
			t.Fatalf("sox: %v %s", err, b)
		}
		fb, _ := os.ReadFile(fl)
		ib, _ := os.ReadFile(i16)
		fw, err := codec.ParseWAV(fb)
		if err != nil {
			t.Fatalf("%s-bit sox float: %v", bits, err)
		}
		iw, err := codec.ParseWAV(ib)
		if err != nil {
			t.Fatal(err)
		}
		if fw.Format != iw.Format || !fw.Source.Float() {
			t.Fatalf("format %+v %+v, want %+v", fw.Format, fw.Source, iw.Format)
		}
		got, want := fw.PCM(nil), iw.PCM(nil)
		if len(got) != len(want) || len(got) != 2*8820 {
			t.Fatalf("%d samples, sox %d", len(got), len(want))
		}
		for i := range got {
			if d := int(got[i]) - int(want[i]); d < -1 || d > 1 {
				t.Fatalf("%s-bit sample %d: %d, sox %d", bits, i, got[i], want[i])
			}
		}
	}
}

func TestWAVMonoMix(t *testing.T) {
	w := codec.WAV{Format: codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 2}}
	for _, v := range []int16{100, 100, 32767, 32767, -32768, -32768, 3, 0, -3, 0, 32767, -32768} {
		w.Data = binary.LittleEndian.AppendUint16(w.Data, uint16(v))
	}
	want := []int16{100, 32767, -32768, 2, -2, -1} // -0.5 rounds away from zero
	if got := w.MonoMix(); len(got) != len(want) || !equal16(got, want) {
		t.Fatalf("MonoMix = %v, want %v", got, want)
	}
	mono := codec.WAV{Format: codec.WAVFormat{Encoding: voicegate.PCMA, SampleRate: 8000, Channels: 1}, Data: []byte{0xD5}}
	if got := mono.MonoMix(); len(got) != 1 || got[0] != 8 {
		t.Fatalf("mono MonoMix = %v", got)
	}
}

func equal16(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestReadWAVLyingSize: a 44-byte file that claims 4 GB of data, or a
// header-consistent 2 GB, reads as the empty file it is or, for the
// header-consistent claim, as a file cut short (io.ErrUnexpectedEOF),
// without allocating anything near the claim.
func TestReadWAVLyingSize(t *testing.T) {
	file := riff(chunk{id: "fmt ", body: fmtBody(1, 1, 8000, 16)}, chunk{id: "data", size: 0xFFFFFFFE, set: true})
	if len(file) != 44 {
		t.Fatalf("header is %d bytes", len(file))
	}
	// RIFF and data sizes agree on 0x7FFFFF00 bytes of audio.
	consistent := riff(chunk{id: "fmt ", body: fmtBody(1, 1, 8000, 16)}, chunk{id: "data", size: 0x7FFFFF00, set: true})
	binary.LittleEndian.PutUint32(consistent[4:], 36+0x7FFFFF00)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const runs = 10
	for range runs {
		if w, err := codec.ParseWAV(file); err != nil || len(w.Data) != 0 {
			t.Fatalf("ParseWAV: %v", err)
		}
		if w, err := codec.ReadWAV(bytes.NewReader(file), 0); err != nil || len(w.Data) != 0 {
			t.Fatalf("ReadWAV: %v", err)
		}
		if _, err := codec.ParseWAV(consistent); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("ParseWAV, consistent: %v", err)
		}
		if _, err := codec.ReadWAV(bytes.NewReader(consistent), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("ReadWAV, consistent: %v", err)
		}
		// 0xFFFFFFFE bytes do not fit a RIFF file after this header: no size.
		r, err := codec.NewWAVReader(bytes.NewReader(file))
		if err != nil || r.DataSize() != -1 {
			t.Fatalf("NewWAVReader: %v, size %d", err, r.DataSize())
		}
		r, err = codec.NewWAVReader(bytes.NewReader(consistent))
		if err != nil || r.DataSize() != 0x7FFFFF00 {
			t.Fatalf("NewWAVReader, consistent: %v, size %d", err, r.DataSize())
		}
	}
	runtime.ReadMemStats(&after)
	// Four parses per run. The race detector makes sync.Pool drop buffers, so
	// allow for io.Discard's 8 KiB skip buffer now and then.
	if per := (after.TotalAlloc - before.TotalAlloc) / (4 * runs); per > 8<<10 {
		t.Fatalf("%d bytes allocated per parse of a lying 44-byte file", per)
	} else {
		t.Logf("%d bytes allocated per parse", per)
	}
}

func TestReadWAVLimit(t *testing.T) {
	file := riff(chunk{id: "fmt ", body: fmtBody(7, 1, 8000, 8, 0, 0)}, chunk{id: "data", body: make([]byte, 100)})
	if _, err := codec.ReadWAV(bytes.NewReader(file), 99); !errors.Is(err, codec.ErrWAVTooLarge) {
		t.Errorf("declared size over limit: %v", err)
	}
	if w, err := codec.ReadWAV(bytes.NewReader(file), 100); err != nil || len(w.Data) != 100 {
		t.Errorf("at limit: %v", err)
	}
	stream := append(riff(chunk{id: "fmt ", body: fmtBody(7, 1, 8000, 8, 0, 0)}, chunk{id: "data", size: 0xFFFFFFFF, set: true}), make([]byte, 100)...)
	if _, err := codec.ReadWAV(bytes.NewReader(stream), 99); !errors.Is(err, codec.ErrWAVTooLarge) {
		t.Errorf("streaming data over limit: %v", err)
	}
}

func TestWAVReaderStream(t *testing.T) {
	data := []byte("0123456789")
	file := riff(chunk{id: "fmt ", body: fmtBody(6, 1, 8000, 8, 0, 0)}, chunk{id: "data", body: data}, chunk{id: "LIST", body: []byte("INFOtrailing")})
	r, err := codec.NewWAVReader(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	if r.DataSize() != 10 || r.Format().Encoding != voicegate.PCMA {
		t.Fatalf("size %d format %+v", r.DataSize(), r.Format())
	}
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll = %q, %v", got, err)
	}
	// A file cut in the data chunk: the audio it holds, then
	// io.ErrUnexpectedEOF, again on the next read.
	r, _ = codec.NewWAVReader(bytes.NewReader(file[:len(file)-25])) // LIST is 20 bytes
	if got, err := io.ReadAll(r); !errors.Is(err, io.ErrUnexpectedEOF) || !bytes.Equal(got, data[:5]) {
		t.Fatalf("truncated: %q, %v", got, err)
	}
	if n, err := r.Read(make([]byte, 4)); n != 0 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("read after the truncation: %d, %v", n, err)
	}
}

func TestEncodeWAV(t *testing.T) {
	for _, f := range []codec.WAVFormat{
		{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1},
		{Encoding: voicegate.PCMA, SampleRate: 8000, Channels: 2},
		{Encoding: voicegate.L16, SampleRate: 16000, Channels: 1},
		{Encoding: voicegate.L16, SampleRate: 8000, Channels: 2},
	} {
		for _, n := range []int{0, 1, 7, 8, 161} {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(i * 7)
			}
			b, err := codec.EncodeWAV(nil, f, data)
			if err != nil {
				t.Fatal(err)
			}
			if len(b)%2 != 0 {
				t.Errorf("%+v %d bytes: odd file size %d", f, n, len(b))
			}
			w, err := codec.ParseWAV(b)
			if err != nil {
				t.Fatalf("%+v %d bytes: %v", f, n, err)
			}
			whole := n - n%(f.Channels*f.Encoding.BytesPerSample())
			if w.Format != f || !bytes.Equal(w.Data, data[:whole]) {
				t.Errorf("%+v %d bytes: round trip gave %+v %d bytes", f, n, w.Format, len(w.Data))
			}
			if got := binary.LittleEndian.Uint32(b[4:]); int(got) != len(b)-8 {
				t.Errorf("%+v %d bytes: RIFF size %d, file %d", f, n, got, len(b))
			}
		}
	}
	if _, err := codec.EncodeWAV(nil, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 3}, nil); !errors.Is(err, codec.ErrUnsupportedWAV) {
		t.Errorf("3 channels: %v", err)
	}
}

// TestEncodeWAVMatchesSoxFixtures byte-compares EncodeWAV with the committed
// sox-written μ-law clips.
func TestEncodeWAVMatchesSoxFixtures(t *testing.T) {
	for _, v := range fixtures.Voices() {
		for _, name := range fixtures.Utterances(v) {
			file, err := os.ReadFile(fixtures.Path(name))
			if err != nil {
				t.Fatal(err)
			}
			w, err := codec.ParseWAV(file)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := codec.EncodeWAV(nil, w.Format, w.Data)
			if !bytes.Equal(b, file) {
				t.Errorf("%s: EncodeWAV output differs from the sox-written file", name)
			}
		}
	}
}

// TestEncodeWAVMatchesSox has sox write each supported format and checks
// that EncodeWAV produces the same bytes.
func TestEncodeWAVMatchesSox(t *testing.T) {
	if _, err := exec.LookPath("sox"); err != nil {
		t.Skip("sox not installed (Debian: apt-get install -y --no-install-recommends sox)")
	}
	dir := t.TempDir()
	tests := []struct {
		args []string
		want codec.WAVFormat
	}{
		{[]string{"-r", "8000", "-c", "1", "-e", "u-law"}, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}},
		{[]string{"-r", "8000", "-c", "2", "-e", "u-law"}, codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 2}},
		{[]string{"-r", "8000", "-c", "1", "-e", "a-law"}, codec.WAVFormat{Encoding: voicegate.PCMA, SampleRate: 8000, Channels: 1}},
		{[]string{"-r", "16000", "-c", "2", "-e", "a-law"}, codec.WAVFormat{Encoding: voicegate.PCMA, SampleRate: 16000, Channels: 2}},
		{[]string{"-r", "8000", "-c", "1", "-b", "16"}, codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 8000, Channels: 1}},
		{[]string{"-r", "16000", "-c", "2", "-b", "16"}, codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 16000, Channels: 2}},
	}
	for i, tc := range tests {
		for _, dur := range []string{"0.1", "0.100125"} { // even and odd sample counts
			out := filepath.Join(dir, "out.wav")
			args := append(append([]string{"-D", "-n"}, tc.args...), out, "synth", dur, "sine", "440", "vol", "0.5")
			if b, err := exec.Command("sox", args...).CombinedOutput(); err != nil {
				t.Fatalf("sox %v: %v: %s", args, err, b)
			}
			file, _ := os.ReadFile(out)
			w, err := codec.ParseWAV(file)
			if err != nil {
				t.Fatalf("case %d: ParseWAV: %v", i, err)
			}
			if w.Format != tc.want {
				t.Errorf("case %d: format %+v, want %+v", i, w.Format, tc.want)
			}
			b, _ := codec.EncodeWAV(nil, w.Format, w.Data)
			if !bytes.Equal(b, file) {
				t.Errorf("case %d (%s s): EncodeWAV differs from sox\n got % x\nwant % x", i, dur, head(b), head(file))
			}
		}
	}
	// sox writing into a pipe puts 0x7FFFF000 in the size fields.
	cmd := exec.Command("sox", "-D", "-n", "-t", "wav", "-r", "8000", "-e", "u-law", "-", "synth", "0.05", "sine", "440")
	piped, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	w, err := codec.ReadWAV(bytes.NewReader(piped), 0)
	if err != nil || len(w.Data) != 400 {
		t.Fatalf("sox pipe output: %v", err)
	}
}

func head(b []byte) []byte { return b[:min(len(b), 64)] }

type seekBuffer struct {
	buf []byte
	off int
}

func (s *seekBuffer) Write(p []byte) (int, error) {
	if need := s.off + len(p); need > len(s.buf) {
		s.buf = append(s.buf, make([]byte, need-len(s.buf))...)
	}
	copy(s.buf[s.off:], p)
	s.off += len(p)
	return len(p), nil
}

func (s *seekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		s.off = int(off)
	case io.SeekCurrent:
		s.off += int(off)
	case io.SeekEnd:
		s.off = len(s.buf) + int(off)
	}
	return int64(s.off), nil
}

func TestWAVWriter(t *testing.T) {
	f := codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 1}
	data := []byte{1, 2, 3, 4, 5}
	want, _ := codec.EncodeWAV(nil, f, data)

	var sb seekBuffer
	w, err := codec.NewWAVWriter(&sb, f)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:2])
	w.Write(data[2:])
	if w.Written() != 5 {
		t.Fatalf("Written = %d", w.Written())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := w.Write([]byte{1}); !errors.Is(err, codec.ErrWriterClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
	if !bytes.Equal(sb.buf, want) {
		t.Fatalf("seekable writer:\n got % x\nwant % x", sb.buf, want)
	}

	// Not seekable: sizes stay 0xFFFFFFFF and readers read to the end.
	var buf bytes.Buffer
	w, _ = codec.NewWAVWriter(&buf, f)
	w.Write(data)
	w.Close()
	got, err := codec.ParseWAV(buf.Bytes())
	if err != nil || !bytes.Equal(got.Data, append(data, 0)) && !bytes.Equal(got.Data, data) {
		t.Fatalf("streamed file: %v % x", err, got.Data)
	}
	if binary.LittleEndian.Uint32(buf.Bytes()[54:]) != 0xFFFFFFFF {
		t.Fatalf("streamed header data size % x", buf.Bytes()[54:58])
	}
	if _, err := codec.NewWAVWriter(&buf, codec.WAVFormat{}); !errors.Is(err, codec.ErrUnsupportedWAV) {
		t.Fatalf("bad format: %v", err)
	}
}

func TestWAVSamples(t *testing.T) {
	stereo := codec.WAV{Format: codec.WAVFormat{Encoding: voicegate.PCMU, SampleRate: 8000, Channels: 2}, Data: []byte{0x00, 0xFF, 0x80, 0x7F}}
	if stereo.Samples() != 2 || stereo.Duration().Microseconds() != 250 {
		t.Fatalf("Samples %d Duration %v", stereo.Samples(), stereo.Duration())
	}
	if got := stereo.PCM(nil); len(got) != 4 || got[0] != -32124 || got[1] != 0 || got[2] != 32124 {
		t.Fatalf("PCM = %v", got)
	}
	if got := stereo.Mono(1); len(got) != 2 || got[0] != 0 || got[1] != 0 {
		t.Fatalf("Mono(1) = %v", got)
	}
	if got := stereo.Mono(2); got != nil {
		t.Fatalf("Mono(2) = %v", got)
	}
	pre := []int16{7}
	if got := stereo.PCM(pre); len(got) != 5 || got[0] != 7 {
		t.Fatalf("PCM append = %v", got)
	}
	l16 := codec.WAV{Format: codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 16000, Channels: 1}, Data: []byte{0xFF, 0x7F, 0x00, 0x80}}
	if got := l16.Mono(0); len(got) != 2 || got[0] != 32767 || got[1] != -32768 {
		t.Fatalf("L16 Mono = %v", got)
	}
	alaw := codec.WAV{Format: codec.WAVFormat{Encoding: voicegate.PCMA, SampleRate: 8000, Channels: 1}, Data: []byte{0xD5}}
	if got := alaw.Mono(0); len(got) != 1 || got[0] != 8 {
		t.Fatalf("A-law Mono = %v", got)
	}
}

func FuzzParseWAV(f *testing.F) {
	f.Add(riff(chunk{id: "fmt ", body: fmtBody(7, 1, 8000, 8, 0, 0)}, chunk{id: "fact", body: []byte{3, 0, 0, 0}}, chunk{id: "data", body: []byte{0xFF, 0x7F, 0x00}}))
	f.Add(riff(chunk{id: "fmt ", body: fmtBody(0xFFFE, 2, 16000, 16, extensible(16, 1)...)}, chunk{id: "data", body: []byte{1, 0, 2, 0, 3, 0, 4, 0}}))
	f.Add(append(riff(chunk{id: "LIST", body: []byte("INFOx")}, chunk{id: "fmt ", body: fmtBody(6, 2, 8000, 8, 0, 0)}, chunk{id: "data", size: 0xFFFFFFFF, set: true}), 1, 2, 3))
	f.Add(riff(chunk{id: "fmt ", body: fmtBody(1, 1, 8000, 16)}, chunk{id: "data", size: 0xFFFFFFFE, set: true}))
	f.Add(floatFile(32, 2, 44100, false, 0.5, -0.5, math.NaN(), math.Inf(-1), 2))
	f.Add(floatFile(64, 1, 48000, true, 0.25, 1e300, -1e-300))
	f.Add(append(riff(chunk{id: "fmt ", body: fmtBody(3, 1, 48000, 32)}, chunk{id: "data", size: 0xFFFFFFFF, set: true}), 0, 0, 0x80, 0x7F, 0, 0, 0xC0))
	f.Add(streamingTTSFile(2_000_000_036, 2_000_000_000))
	f.Add(missingPadFile([]byte("data\x02\x00\x00\x00\xFF\xFF")...))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := codec.ParseWAV(b)
		r, rerr := codec.ReadWAV(bytes.NewReader(b), 1<<20)
		if err != nil {
			if rerr == nil && len(b) <= 1<<20 {
				t.Fatalf("ParseWAV failed (%v) but ReadWAV did not", err)
			}
			return
		}
		if rerr != nil {
			t.Fatalf("ReadWAV failed (%v) but ParseWAV did not", rerr)
		}
		if r.Format != w.Format || r.Source != w.Source || !bytes.Equal(r.Data, w.Data) {
			t.Fatal("ParseWAV and ReadWAV disagree")
		}
		block := w.Format.Channels * w.Format.Encoding.BytesPerSample()
		if block == 0 || len(w.Data)%block != 0 || len(w.Data) > len(b) {
			t.Fatalf("bad data length %d for %+v", len(w.Data), w.Format)
		}
		enc, err := codec.EncodeWAV(nil, w.Format, w.Data)
		if err != nil {
			t.Fatalf("EncodeWAV of a parsed file: %v", err)
		}
		w2, err := codec.ParseWAV(enc)
		if err != nil || w2.Format != w.Format || !bytes.Equal(w2.Data, w.Data) {
			t.Fatalf("re-encoded file does not parse back: %v", err)
		}
		// PCM and frame reading never panic and cover the data.
		if pcm := w.PCM(nil); len(pcm) != len(w.Data)/w.Format.Encoding.BytesPerSample() {
			t.Fatalf("PCM gave %d samples", len(pcm))
		}
		var all []byte
		fr := codec.NewWAVFrameReader(w, 0)
		for {
			fm, err := fr.ReadFrame(t.Context())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := fm.Validate(); err != nil {
				t.Fatal(err)
			}
			all = append(all, fm.Payload...)
		}
		if !bytes.Equal(all, w.Data) {
			t.Fatal("frames do not cover the data")
		}
	})
}

// BenchmarkParseWAVFloat32 converts 10 s of 48 kHz stereo float32 (what a
// browser exports) to 16-bit PCM.
func BenchmarkParseWAVFloat32(b *testing.B) {
	samples := make([]float64, 2*48000*10)
	for i := range samples {
		samples[i] = math.Sin(float64(i) * 0.001)
	}
	file := floatFile(32, 2, 48000, false, samples...)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := codec.ParseWAV(file); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(10/(float64(b.Elapsed().Seconds())/float64(b.N)), "x_realtime")
}

// BenchmarkReadWAVFloat32 is BenchmarkParseWAVFloat32 through the
// streaming reader.
func BenchmarkReadWAVFloat32(b *testing.B) {
	samples := make([]float64, 2*48000*10)
	for i := range samples {
		samples[i] = math.Sin(float64(i) * 0.001)
	}
	file := floatFile(32, 2, 48000, false, samples...)
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := codec.ReadWAV(bytes.NewReader(file), 0); err != nil {
			b.Fatal(err)
		}
	}
}

// streamingTTSFile is a 48-byte WAV file as streaming TTS engines and
// recorders write it: 16-bit PCM mono at 24 kHz, 4 bytes of audio, and
// the given RIFF and data sizes in place of the real ones (40 and 4).
func streamingTTSFile(riffSize, dataSize uint32) []byte {
	le := binary.LittleEndian
	b := []byte("RIFF")
	b = le.AppendUint32(b, riffSize)
	b = append(b, "WAVEfmt "...)
	b = append(b, 0x10, 0x00, 0x00, 0x00, // fmt size 16
		0x01, 0x00, 0x01, 0x00, // PCM, 1 channel
		0xC0, 0x5D, 0x00, 0x00, // 24000 Hz
		0x80, 0xBB, 0x00, 0x00, // 48000 bytes/s
		0x02, 0x00, 0x10, 0x00) // block align 2, 16 bits
	b = append(b, "data"...)
	b = le.AppendUint32(b, dataSize)
	return append(b, 0x34, 0x12, 0xCC, 0xED) // samples 0x1234, -0x1234
}

// unsized hides every method of r but Read, as a pipe or socket would.
type unsized struct{ r io.Reader }

func (u unsized) Read(p []byte) (int, error) { return u.r.Read(p) }

// TestWAVPlaceholderSizes: the RIFF and data sizes that streaming writers
// leave in the header (0x7FFFFFFF; 2,000,000,000 with RIFF 2,000,000,036,
// as a TTS server streams; sox's 0x7FFFF000; 0xFFFFFFFF; 0) and sizes no
// RIFF file can hold mean "until the end of the file", in memory, from a
// reader and from an unsized stream. They used to fail with "declares
// 2147483647 bytes, file holds 4" (ParseWAV) and "exceeds limit"
// (ReadWAV).
func TestWAVPlaceholderSizes(t *testing.T) {
	audio := []byte{0x34, 0x12, 0xCC, 0xED}
	for _, c := range []struct {
		name           string
		riff, data     uint32
		wantDataSizeIs int64 // DataSize: -1 for no usable size
	}{
		{name: "0x7FFFFFFF in both", riff: 0x7FFFFFFF, data: 0x7FFFFFFF, wantDataSizeIs: -1},
		{name: "0x7FFFFFFF data, real RIFF", riff: 40, data: 0x7FFFFFFF, wantDataSizeIs: -1},
		{name: "2,000,000,000 with RIFF 2,000,000,036", riff: 2_000_000_036, data: 2_000_000_000, wantDataSizeIs: -1},
		{name: "2,000,000,000, real RIFF", riff: 40, data: 2_000_000_000, wantDataSizeIs: -1},
		{name: "sox pipe 0x7FFFF000", riff: 0x7FFFF024, data: 0x7FFFF000, wantDataSizeIs: -1},
		{name: "0xFFFFFFFF", riff: 0xFFFFFFFF, data: 0xFFFFFFFF, wantDataSizeIs: -1},
		{name: "0", riff: 0, data: 0, wantDataSizeIs: -1},
		{name: "beyond the RIFF size", riff: 40, data: 1_000_000, wantDataSizeIs: -1},
		{name: "beyond any RIFF file", riff: 0xFFFFFFFF, data: 0xFFFFFFF0, wantDataSizeIs: -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := streamingTTSFile(c.riff, c.data)
			if len(file) != 48 {
				t.Fatalf("file is %d bytes", len(file))
			}
			w, err := codec.ParseWAV(file)
			if err != nil || !bytes.Equal(w.Data, audio) || w.Format != (codec.WAVFormat{Encoding: voicegate.L16, SampleRate: 24000, Channels: 1}) {
				t.Fatalf("ParseWAV: %v", err)
			}
			for name, r := range map[string]func() io.Reader{
				"bytes.Reader": func() io.Reader { return bytes.NewReader(file) },
				"one byte":     func() io.Reader { return &oneByteReader{bytes.NewReader(file)} },
				"unsized":      func() io.Reader { return unsized{bytes.NewReader(file)} },
				"pipe": func() io.Reader {
					pr, pw := io.Pipe()
					go func() {
						for i := 0; i < len(file); i += 5 {
							pw.Write(file[i:min(i+5, len(file))])
						}
						pw.Close()
					}()
					return pr
				},
			} {
				if w, err := codec.ReadWAV(r(), 0); err != nil || !bytes.Equal(w.Data, audio) {
					t.Errorf("ReadWAV, %s: %v", name, err)
				}
				if w, err := codec.ReadWAV(r(), 4); err != nil || !bytes.Equal(w.Data, audio) {
					t.Errorf("ReadWAV with a 4-byte limit, %s: %v", name, err)
				}
				if _, err := codec.ReadWAV(r(), 3); !errors.Is(err, codec.ErrWAVTooLarge) {
					t.Errorf("ReadWAV with a 3-byte limit, %s: %v", name, err)
				}
				wr, err := codec.NewWAVReader(r())
				if err != nil {
					t.Fatal(err)
				}
				if wr.DataSize() != c.wantDataSizeIs {
					t.Errorf("DataSize = %d, want %d", wr.DataSize(), c.wantDataSizeIs)
				}
				got, err := io.ReadAll(wr)
				if err != nil || !bytes.Equal(got, audio) {
					t.Errorf("WAVReader, %s: % x, %v", name, got, err)
				}
			}
		})
	}
	// A declared size smaller than the file still ends the audio there:
	// what follows is not audio.
	file := append(streamingTTSFile(40, 2), "LIST"...)
	if w, err := codec.ParseWAV(file); err != nil || !bytes.Equal(w.Data, audio[:2]) {
		t.Fatalf("ParseWAV, short data chunk: % x, %v", w.Data, err)
	}
}

// TestWAVTruncated: a file that ends before the size its data chunk
// declares, when that size is usable (not a placeholder, and one the file
// could hold: RIFF-consistent), was cut short (a truncated upload). It is
// an error wrapping io.ErrUnexpectedEOF and ErrMalformedWAV naming the
// chunk, its offset and the sizes, in memory, from a reader and from an
// unsized stream, never the shorter audio. It used to read as the audio
// held.
func TestWAVTruncated(t *testing.T) {
	// 16-bit PCM, 8 kHz mono; the data chunk (header at offset 36)
	// declares 8 bytes and RIFF 44, but the file holds 4 of them.
	file := []byte("RIFF\x2c\x00\x00\x00WAVEfmt \x10\x00\x00\x00" +
		"\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00" +
		"data\x08\x00\x00\x00" + "\x34\x12\xcc\xed")
	const msg = `codec: malformed WAV file: unexpected EOF: "data" chunk at offset 36 declares 8 bytes, the file ends after 4`
	check := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, codec.ErrMalformedWAV) || err.Error() != msg {
			t.Errorf("%s: %v", what, err)
		}
	}
	_, err := codec.ParseWAV(file)
	check("ParseWAV", err)
	for name, r := range map[string]func() io.Reader{
		"bytes.Reader": func() io.Reader { return bytes.NewReader(file) },
		"one byte":     func() io.Reader { return &oneByteReader{bytes.NewReader(file)} },
		"unsized":      func() io.Reader { return unsized{bytes.NewReader(file)} },
	} {
		_, err := codec.ReadWAV(r(), 0)
		check("ReadWAV, "+name, err)
		wr, err := codec.NewWAVReader(r())
		if err != nil || wr.DataSize() != 8 {
			t.Fatalf("NewWAVReader, %s: %v", name, err)
		}
		got, err := io.ReadAll(wr)
		check("WAVReader, "+name, err)
		if !bytes.Equal(got, file[44:]) {
			t.Errorf("WAVReader, %s: audio before the error % x", name, got)
		}
	}
	// One byte short is short too.
	_, err = codec.ParseWAV(append(bytes.Clone(file), 0x01, 0x02, 0x03))
	if !errors.Is(err, io.ErrUnexpectedEOF) || !strings.HasSuffix(err.Error(), "declares 8 bytes, the file ends after 7") {
		t.Errorf("ParseWAV, 7 of 8 bytes: %v", err)
	}
	// Whole: no error.
	whole := append(bytes.Clone(file), 0x01, 0x02, 0x03, 0x04)
	if w, err := codec.ParseWAV(whole); err != nil || !bytes.Equal(w.Data, whole[44:]) {
		t.Errorf("ParseWAV, whole: %v", err)
	}
	if w, err := codec.ReadWAV(unsized{bytes.NewReader(whole)}, 0); err != nil || !bytes.Equal(w.Data, whole[44:]) {
		t.Errorf("ReadWAV, whole: %v", err)
	}
	// A 32-bit float file cut inside its data chunk (header at offset
	// 36, 16 bytes declared, 6 held).
	float := []byte("RIFF\x34\x00\x00\x00WAVEfmt \x10\x00\x00\x00" +
		"\x03\x00\x01\x00\x40\x1f\x00\x00\x00\x7d\x00\x00\x04\x00\x20\x00" +
		"data\x10\x00\x00\x00" + "\x00\x00\x00\x3f\x00\x00")
	const fmsg = `codec: malformed WAV file: unexpected EOF: "data" chunk at offset 36 declares 16 bytes, the file ends after 6`
	for _, f := range []func() error{
		func() error { _, err := codec.ParseWAV(float); return err },
		func() error { _, err := codec.ReadWAV(&oneByteReader{bytes.NewReader(float)}, 0); return err },
	} {
		if err := f(); !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != fmsg {
			t.Errorf("float: %v", err)
		}
	}
	// The same cut with a placeholder data size reads to the end.
	for _, size := range []string{"\x00\x00\x00\x00", "\xff\xff\xff\xff", "\xff\xff\xff\x7f"} {
		f := bytes.Clone(file)
		copy(f[40:], size)
		if w, err := codec.ParseWAV(f); err != nil || !bytes.Equal(w.Data, file[44:]) {
			t.Errorf("placeholder % x: %v", size, err)
		}
	}
}

// failingReader returns its bytes, then err.
type failingReader struct {
	b   []byte
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, f.err
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// TestWAVReaderStreamErrors: an unsized stream that fails mid-audio (a
// connection cut: io.ErrUnexpectedEOF, a reset) gives its error, never a
// clean end, whatever the declared size.
func TestWAVReaderStreamErrors(t *testing.T) {
	reset := errors.New("connection reset by peer")
	for _, size := range []uint32{4, 0xFFFFFFFF, 1_000_000} {
		for _, cause := range []error{io.ErrUnexpectedEOF, reset} {
			file := streamingTTSFile(40, size)
			if _, err := codec.ReadWAV(&failingReader{b: file[:46], err: cause}, 0); !errors.Is(err, cause) {
				t.Errorf("size %d, %v: ReadWAV %v", size, cause, err)
			}
		}
	}
	// The header itself cut by a failing stream keeps the stream's error.
	if _, err := codec.NewWAVReader(&failingReader{b: []byte("RIFF"), err: reset}); !errors.Is(err, reset) {
		t.Errorf("header: %v", err)
	}
}

// missingPadFile is a μ-law file whose 13-byte LIST chunk (odd) lacks its
// pad byte, followed by next; the file's sizes are right otherwise.
func missingPadFile(next ...byte) []byte {
	b := []byte("RIFF\x00\x00\x00\x00WAVE")
	b = append(b, "fmt \x10\x00\x00\x00"...)
	b = append(b, 0x07, 0x00, 0x01, 0x00, 0x40, 0x1F, 0x00, 0x00, 0x40, 0x1F, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00) // μ-law, 8 kHz mono
	b = append(b, "LIST\x0D\x00\x00\x00INFOISFT\x01\x00\x00\x00x"...)                                             // 13 bytes, no pad
	b = append(b, next...)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(b)-8))
	return b
}

// TestWAVMissingPadByte: a writer that leaves out the pad byte of an
// odd-sized chunk shifts the next chunk one byte earlier. The reader used
// to fail with `"ata\x02" chunk of 4278190080 bytes truncated`; it now
// takes the data chunk where its id starts, and names the real chunk and
// its offset when it cannot.
func TestWAVMissingPadByte(t *testing.T) {
	file := missingPadFile([]byte("data\x02\x00\x00\x00\xFF\xFF")...)
	if len(file) != 67 || string(file[57:61]) != "data" {
		t.Fatalf("file of %d bytes: % x", len(file), file)
	}
	w, err := codec.ParseWAV(file)
	if err != nil || !bytes.Equal(w.Data, []byte{0xFF, 0xFF}) || w.Format.Encoding != voicegate.PCMU {
		t.Fatalf("ParseWAV: %+v, %v", w, err)
	}
	for name, r := range map[string]io.Reader{"one byte": &oneByteReader{bytes.NewReader(file)}, "unsized": unsized{bytes.NewReader(file)}} {
		if w, err := codec.ReadWAV(r, 0); err != nil || !bytes.Equal(w.Data, []byte{0xFF, 0xFF}) {
			t.Errorf("ReadWAV, %s: %v", name, err)
		}
	}
	// A fact chunk after the LIST, then data: both found, the data's size
	// kept.
	file = missingPadFile([]byte("fact\x04\x00\x00\x00\x03\x00\x00\x00data\x03\x00\x00\x00\x01\x02\x03\x00LIST")...)
	if w, err := codec.ParseWAV(file); err != nil || !bytes.Equal(w.Data, []byte{1, 2, 3}) {
		t.Fatalf("ParseWAV with fact: %+v, %v", w, err)
	}
	// A pad byte that is present but not zero is still padding when the
	// chunk id after it is a chunk id.
	file = missingPadFile([]byte("xdata\x02\x00\x00\x00\x11\x22")...)
	if w, err := codec.ParseWAV(file); err != nil || !bytes.Equal(w.Data, []byte{0x11, 0x22}) {
		t.Fatalf("ParseWAV with a non-zero pad byte: %+v, %v", w, err)
	}
	// Not recoverable: the error names the chunk read, its offset, and the
	// odd-sized chunk before it.
	file = missingPadFile([]byte("Xq\x00\x00\xFF\xFF\xFF\x7F\x01\x02")...)
	_, err = codec.ParseWAV(file)
	if !errors.Is(err, codec.ErrMalformedWAV) ||
		!strings.Contains(err.Error(), `"q\x00\x00\xff" chunk at offset 58 declares 25165823 bytes, the file ends after 1`) ||
		!strings.Contains(err.Error(), `the 13-byte "LIST" chunk at offset 36 before it may lack its pad byte`) {
		t.Fatalf("ParseWAV: %v", err)
	}
	// A truncated chunk names itself and its offset.
	file = missingPadFile([]byte("\x00fact\x10\x00\x00\x00\x03")...)
	if _, err := codec.ParseWAV(file); !errors.Is(err, codec.ErrMalformedWAV) || !strings.Contains(err.Error(), `"fact" chunk at offset 58 declares 16 bytes, the file ends after 1`) {
		t.Fatalf("ParseWAV, truncated fact: %v", err)
	}
}
