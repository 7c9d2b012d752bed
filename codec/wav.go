package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/voicegate/voicegate"
)

// WAV format tags.
const (
	wavFormatPCM        = 0x0001
	wavFormatFloat      = 0x0003
	wavFormatALaw       = 0x0006
	wavFormatULaw       = 0x0007
	wavFormatExtensible = 0xFFFE
)

// DefaultMaxWAVData is the data size limit ReadWAV applies when given 0:
// 64 MiB, more than an hour of 8 kHz 16-bit stereo.
const DefaultMaxWAVData = 64 << 20

// streamingSize is the data size a streaming writer puts in the header
// before it knows the real one.
const streamingSize = 0xFFFFFFFF

// placeholderSize reports whether a data chunk size is one that writers
// put in the header when they cannot know or patch the real size, read as
// "until the end of the file":
//
//   - 0 and 0xFFFFFFFF: streaming writers (ffmpeg into a pipe, browsers'
//     and recorders' streamed WAV);
//   - 0x7FFFF000: sox writing into a pipe (its MS_UNSPEC);
//   - 0x7FFFFFFF: the largest signed 32-bit size, written by streaming TTS
//     engines and recorders;
//   - 2,000,000,000: written by TTS servers that stream their WAV output
//     (with a RIFF size of 2,000,000,036, so header-consistent).
func placeholderSize(size int64) bool {
	switch size {
	case 0, streamingSize, 0x7FFFF000, 0x7FFFFFFF, 2_000_000_000:
		return true
	}
	return false
}

// maxRIFFEnd is the offset just past the largest RIFF file: an 8-byte
// chunk header and a 32-bit size.
const maxRIFFEnd = 8 + 0xFFFFFFFF

// maxFmtRead is how much of a fmt chunk the reader looks at; the rest of a
// larger chunk is skipped without being buffered.
const maxFmtRead = 40

// WAVFormat describes the audio in a WAV file.
type WAVFormat struct {
	Encoding   voicegate.Encoding // PCMU (format 7), PCMA (format 6) or L16 (16-bit PCM)
	SampleRate int                // in Hz, 1000 to 192000
	Channels   int                // 1 or 2
}

func (f WAVFormat) validate() error {
	if f.Encoding.BytesPerSample() == 0 {
		return fmt.Errorf("%w: encoding %v", ErrUnsupportedWAV, f.Encoding)
	}
	if f.Channels < 1 || f.Channels > voicegate.MaxChannels {
		return fmt.Errorf("%w: %d channels", ErrUnsupportedWAV, f.Channels)
	}
	if f.SampleRate < 1000 || f.SampleRate > 192000 {
		return fmt.Errorf("%w: sample rate %d", ErrUnsupportedWAV, f.SampleRate)
	}
	return nil
}

// blockAlign is the size of one sample frame (all channels).
func (f WAVFormat) blockAlign() int { return f.Encoding.BytesPerSample() * f.Channels }

// WAVSource describes the samples as the file stores them, before any
// conversion by the reader.
type WAVSource struct {
	// Tag is the format tag, with WAVE_FORMAT_EXTENSIBLE resolved to its
	// sub-format: 1 (PCM), 3 (IEEE float), 6 (A-law) or 7 (μ-law).
	Tag uint16
	// Bits is the number of bits per sample: 8, 16, 32 or 64.
	Bits int
}

// Float reports whether the file holds IEEE float samples, which the reader
// converts to 16-bit PCM.
func (s WAVSource) Float() bool { return s.Tag == wavFormatFloat }

// String returns "pcm16", "float32", "float64", "ulaw" or "alaw".
func (s WAVSource) String() string {
	switch s.Tag {
	case wavFormatPCM:
		return "pcm" + strconv.Itoa(s.Bits)
	case wavFormatFloat:
		return "float" + strconv.Itoa(s.Bits)
	case wavFormatULaw:
		return "ulaw"
	case wavFormatALaw:
		return "alaw"
	}
	return fmt.Sprintf("tag%#04x/%d", s.Tag, s.Bits)
}

// bytesPerSample is the size of one stored sample of one channel.
func (s WAVSource) bytesPerSample() int { return s.Bits / 8 }

// WAV is a decoded WAV file: its format and its raw (still encoded) data.
type WAV struct {
	// Format describes Data.
	Format WAVFormat
	// Data holds whole sample frames in Format's encoding, interleaved.
	Data []byte
	// Source describes the samples as stored in the file. For IEEE float
	// files (Source.Float()) Data holds the samples converted to 16-bit PCM
	// (Format.Encoding is L16); otherwise Data is the file's own bytes.
	Source WAVSource
}

// Samples returns the number of sample frames (samples per channel).
func (w *WAV) Samples() int { return len(w.Data) / w.Format.blockAlign() }

// Duration returns the play time of the data.
func (w *WAV) Duration() time.Duration {
	return time.Duration(w.Samples()) * time.Second / time.Duration(w.Format.SampleRate)
}

// PCM decodes the data to interleaved 16-bit samples, appended to dst.
func (w *WAV) PCM(dst []int16) []int16 {
	n := len(w.Data) / w.Format.Encoding.BytesPerSample()
	dst = growInt16(dst, n)
	out := dst[len(dst)-n:]
	switch w.Format.Encoding {
	case voicegate.PCMU:
		DecodeULaw(out, w.Data)
	case voicegate.PCMA:
		DecodeALaw(out, w.Data)
	case voicegate.L16:
		BytesToInt16(out, w.Data)
	}
	return dst
}

// Mono returns the data as 16-bit mono samples: channel ch for stereo files
// (ch is ignored for mono files). ch out of range gives nil.
func (w *WAV) Mono(ch int) []int16 {
	pcm := w.PCM(nil)
	if w.Format.Channels == 1 {
		return pcm
	}
	out := make([]int16, len(pcm)/w.Format.Channels)
	if ExtractChannel(out, pcm, w.Format.Channels, ch) == 0 && len(out) > 0 {
		return nil
	}
	return out
}

// MonoMix returns the data as 16-bit mono samples, each the average of the
// channels of its sample frame (summed in int32, rounded half away from
// zero), so two identical channels give the same level as one and two
// loud talkers cannot overflow. For mono files it equals PCM.
func (w *WAV) MonoMix() []int16 {
	pcm := w.PCM(nil)
	c := w.Format.Channels
	if c <= 1 {
		return pcm
	}
	out := make([]int16, len(pcm)/c)
	for i := range out {
		var sum int32
		for _, v := range pcm[i*c : i*c+c] {
			sum += int32(v)
		}
		// Round half away from zero; the average of int16 values always
		// fits an int16.
		if sum >= 0 {
			out[i] = int16((sum + int32(c)/2) / int32(c))
		} else {
			out[i] = int16((sum - int32(c)/2) / int32(c))
		}
	}
	return out
}

func growInt16(dst []int16, n int) []int16 {
	if cap(dst)-len(dst) < n {
		nd := make([]int16, len(dst), len(dst)+n)
		copy(nd, dst)
		dst = nd
	}
	return dst[:len(dst)+n]
}

// ParseWAV parses a WAV file held in memory. The returned Data aliases b,
// except for IEEE float files, whose samples are converted to 16-bit PCM
// in a new buffer (see NewWAVReader).
//
// The audio ends where the data chunk's declared size says, or, when the
// header gives no usable size (a placeholder written by a streaming
// writer, or a size no file could hold: see WAVReader.DataSize), at the
// end of b. A file that ends before a usable declared size was cut short
// (a truncated upload): that is an error wrapping io.ErrUnexpectedEOF and
// ErrMalformedWAV that names the data chunk's offset, the size declared
// and the bytes held, never the shorter audio. A trailing partial sample
// frame within the declared size is dropped.
func ParseWAV(b []byte) (*WAV, error) {
	wr, err := NewWAVReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	off := int(wr.start)
	n := len(b) - off
	if wr.declared >= 0 && int64(n) < wr.declared {
		return nil, wr.truncated(int64(n))
	}
	if wr.remaining >= 0 && wr.remaining < int64(n) {
		n = int(wr.remaining)
	}
	n -= n % wr.rawBlock()
	data := b[off : off+n]
	if wr.source.Float() {
		out := make([]byte, n/wr.source.bytesPerSample()*2)
		floatToL16(out, data, wr.source.bytesPerSample())
		data = out
	}
	return &WAV{Format: wr.format, Data: data, Source: wr.source}, nil
}

// ReadWAV reads a whole WAV file from r, holding at most maxData bytes of
// audio (0 means DefaultMaxWAVData) in Format's encoding (16-bit PCM for
// float files); more audio is ErrWAVTooLarge. Memory grows with the bytes
// actually read, never with the sizes the header claims, and the audio
// ends as ParseWAV says: a file cut short before its declared data size is
// an error wrapping io.ErrUnexpectedEOF.
func ReadWAV(r io.Reader, maxData int64) (*WAV, error) {
	if maxData <= 0 {
		maxData = DefaultMaxWAVData
	}
	wr, err := NewWAVReader(r)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(wr, maxData+1))
	if err != nil {
		return nil, err
	}
	if n > maxData {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrWAVTooLarge, maxData)
	}
	data := buf.Bytes()
	data = data[:len(data)-len(data)%wr.format.blockAlign()]
	return &WAV{Format: wr.format, Data: data, Source: wr.source}, nil
}

// floatChunk is the size of the buffer a WAVReader converts float samples
// through: a multiple of both float sizes.
const floatChunk = 4096

// WAVReader streams the data chunk of a WAV file. It is not safe for
// concurrent use.
type WAVReader struct {
	r         io.Reader
	format    WAVFormat
	source    WAVSource
	dataAt    int64 // offset of the data chunk's header in the file
	start     int64 // offset of the first audio byte in the file
	remaining int64 // stored bytes left in the data chunk, or -1 for "until EOF"
	declared  int64 // stored bytes, or -1 when the header gives no usable size

	// Float conversion state (source.Float() only).
	raw   []byte // stored bytes read, raw[:carry] an incomplete sample
	carry int
	cvt   []byte // converted 16-bit samples
	out   []byte // cvt bytes not yet returned
	err   error  // error of the underlying reader, returned after out

	short error // the file ended before the declared size (truncated)
}

// rawBlock is the size of one stored sample frame.
func (w *WAVReader) rawBlock() int { return w.source.bytesPerSample() * w.format.Channels }

// NewWAVReader reads the RIFF header, the fmt chunk and any chunks before
// data (fact, LIST, …) from r, and returns a reader positioned at the start
// of the audio. It accepts fmt chunk sizes 16, 18 and 40
// (WAVE_FORMAT_EXTENSIBLE) and formats PCM 16-bit, A-law, μ-law and IEEE
// float (format tag 3, or EXTENSIBLE with the KSDATAFORMAT_SUBTYPE_IEEE_FLOAT
// sub-format) of 32 or 64 bits. Float samples are converted to 16-bit PCM as
// they are read: scaled by 32768, rounded to nearest (ties to even) and
// clipped to [-32768, 32767]; NaN becomes 0 and ±Inf clip. Format then says
// L16 and Source says what the file holds.
//
// RIFF pads a chunk of odd size with one byte. Some writers leave the pad
// byte out; when the chunk id after an odd-sized chunk is not a chunk id
// but the one starting a byte earlier is ("ata\x02" where "data" starts
// one byte before), the reader takes the chunk from there. Errors about a
// chunk name it and its offset in the file.
func NewWAVReader(r io.Reader) (*WAVReader, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: file is shorter than the 12-byte RIFF header", ErrNotWAV)
		}
		return nil, err
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: header %q", ErrNotWAV, hdr[:])
	}
	riffSize := int64(binary.LittleEndian.Uint32(hdr[4:8]))
	var (
		format  WAVFormat
		source  WAVSource
		haveFmt bool
		ch      [8]byte
		off     int64    = 12 // offset of the next chunk header
		odd     oddChunk      // the chunk before, when its size was odd
	)
	for {
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if haveFmt {
				return nil, fmt.Errorf("%w: no data chunk", ErrMalformedWAV)
			}
			return nil, fmt.Errorf("%w: no fmt chunk", ErrMalformedWAV)
		}
		if odd.id != "" && padMissing(odd.pad, ch) {
			// The byte read as padding starts this chunk's id: the
			// header is one byte earlier, and its last byte read is the
			// first of the chunk's body.
			first := ch[7]
			copy(ch[1:], ch[:7])
			ch[0] = odd.pad
			off--
			r = io.MultiReader(bytes.NewReader([]byte{first}), r)
		}
		at := off
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		off += 8
		if id == "data" {
			if !haveFmt {
				return nil, fmt.Errorf("%w: data chunk at offset %d before fmt chunk", ErrMalformedWAV, at)
			}
			wr := &WAVReader{r: r, format: format, source: source, dataAt: at, start: off, remaining: size, declared: size}
			switch {
			case placeholderSize(size):
				wr.remaining, wr.declared = -1, -1
			case off+size > maxRIFFEnd || (riffSize+8 >= off && off+size > riffSize+8):
				// More than a RIFF file, or this one by its own header,
				// can hold: not a size. Reading stops at the end of the
				// file, or at the declared size.
				wr.declared = -1
			}
			return wr, nil
		}
		var k int64
		if id == "fmt " {
			if size < 16 {
				return nil, fmt.Errorf("%w: fmt chunk at offset %d: %d bytes < 16", ErrMalformedWAV, at, size)
			}
			var buf [maxFmtRead]byte
			k = min(size, maxFmtRead)
			if n, err := io.ReadFull(r, buf[:k]); err != nil {
				return nil, chunkTruncated(at, id, size, int64(n), odd)
			}
			f, src, err := parseFmt(buf[:k])
			if err != nil {
				return nil, err
			}
			format, source, haveFmt = f, src, true
		}
		// Skipping reads through a small pooled buffer, so a lying size
		// costs reading, never memory.
		if n, err := io.CopyN(io.Discard, r, size-k); err != nil {
			return nil, chunkTruncated(at, id, size, k+n, odd)
		}
		off += size
		odd = oddChunk{}
		if size&1 == 1 {
			var pad [1]byte
			if _, err := io.ReadFull(r, pad[:]); err != nil {
				continue // the next header read fails at the end
			}
			odd = oddChunk{id: id, at: at, size: size, pad: pad[0]}
			off++
		}
	}
}

// oddChunk is an odd-sized chunk and the byte read as its padding.
type oddChunk struct {
	id   string
	at   int64
	size int64
	pad  byte
}

// chunkTruncated is the error for chunk id at offset at, of size bytes,
// of which the file holds only got; after an odd-sized chunk it says that
// chunk's pad byte may be missing.
func chunkTruncated(at int64, id string, size, got int64, odd oddChunk) error {
	err := fmt.Errorf("%w: %q chunk at offset %d declares %d bytes, the file ends after %d", ErrMalformedWAV, id, at, size, got)
	if odd.id != "" && !fourCC(id) {
		err = fmt.Errorf("%w (the %d-byte %q chunk at offset %d before it may lack its pad byte)", err, odd.size, odd.id, odd.at)
	}
	return err
}

// fourCC reports whether id is a plausible RIFF chunk id: four printable
// ASCII characters.
func fourCC(id string) bool {
	for i := range len(id) {
		if id[i] < 0x20 || id[i] > 0x7E {
			return false
		}
	}
	return len(id) == 4
}

// knownChunk reports whether id is a chunk id WAV writers use.
func knownChunk(id string) bool {
	switch id {
	case "fmt ", "data", "fact", "LIST", "JUNK", "junk", "PAD ", "FLLR", "bext", "iXML", "cue ", "smpl", "inst", "id3 ", "ID3 ", "PEAK", "acid", "cart", "plst", "ds64", "_PMX":
		return true
	}
	return false
}

// padMissing reports whether the chunk header ch, read after an odd-sized
// chunk whose pad byte read pad, starts one byte earlier: pad and ch[:3]
// form a chunk id while ch[:4] does not (or is an unknown id where the
// other is a known one).
func padMissing(pad byte, ch [8]byte) bool {
	shifted := string([]byte{pad, ch[0], ch[1], ch[2]})
	if !fourCC(shifted) {
		return false
	}
	normal := string(ch[:4])
	return !fourCC(normal) || (knownChunk(shifted) && !knownChunk(normal))
}

var (
	guidTail = []byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}
)

func parseFmt(b []byte) (WAVFormat, WAVSource, error) {
	tag := binary.LittleEndian.Uint16(b[0:])
	channels := int(binary.LittleEndian.Uint16(b[2:]))
	rate := int(binary.LittleEndian.Uint32(b[4:]))
	blockAlign := int(binary.LittleEndian.Uint16(b[12:]))
	bits := int(binary.LittleEndian.Uint16(b[14:]))
	if tag == wavFormatExtensible {
		if len(b) < 40 {
			return WAVFormat{}, WAVSource{}, fmt.Errorf("%w: extensible fmt chunk %d bytes < 40", ErrMalformedWAV, len(b))
		}
		sub := b[24:40]
		if !bytes.Equal(sub[2:], guidTail) {
			return WAVFormat{}, WAVSource{}, fmt.Errorf("%w: extensible sub-format % x", ErrUnsupportedWAV, sub)
		}
		tag = binary.LittleEndian.Uint16(sub[0:])
	}
	var f WAVFormat
	switch {
	case tag == wavFormatPCM && bits == 16:
		f.Encoding = voicegate.L16
	case tag == wavFormatULaw && bits == 8:
		f.Encoding = voicegate.PCMU
	case tag == wavFormatALaw && bits == 8:
		f.Encoding = voicegate.PCMA
	case tag == wavFormatFloat && (bits == 32 || bits == 64):
		f.Encoding = voicegate.L16 // converted while reading
	default:
		return WAVFormat{}, WAVSource{}, fmt.Errorf("%w: format tag %#04x with %d bits per sample", ErrUnsupportedWAV, tag, bits)
	}
	src := WAVSource{Tag: tag, Bits: bits}
	f.Channels, f.SampleRate = channels, rate
	if err := f.validate(); err != nil {
		return WAVFormat{}, WAVSource{}, err
	}
	if want := src.bytesPerSample() * channels; blockAlign != want {
		return WAVFormat{}, WAVSource{}, fmt.Errorf("%w: block align %d, want %d", ErrMalformedWAV, blockAlign, want)
	}
	return f, src, nil
}

// floatToL16 converts little-endian IEEE float samples of size 4 or 8 bytes
// in src to little-endian 16-bit PCM in dst, which holds len(src)/size*2
// bytes.
func floatToL16(dst, src []byte, size int) {
	le := binary.LittleEndian
	n := len(src) / size
	for i := range n {
		var v float64
		if size == 4 {
			v = float64(math.Float32frombits(le.Uint32(src[4*i:])))
		} else {
			v = math.Float64frombits(le.Uint64(src[8*i:]))
		}
		le.PutUint16(dst[2*i:], uint16(clipFloat64(v*32768)))
	}
}

// clipFloat64 rounds v to nearest (ties to even) and clips it to int16;
// NaN gives 0. It matches clipFloat for every float32 input.
func clipFloat64(v float64) int16 {
	switch {
	case v != v: // NaN
		return 0
	case v >= 32767:
		return 32767
	case v <= -32768:
		return -32768
	}
	return int16(math.RoundToEven(v))
}

// Format returns the format of the bytes Read returns: the format from the
// header, with IEEE float data reported as L16.
func (w *WAVReader) Format() WAVFormat { return w.format }

// Source returns the sample format stored in the file.
func (w *WAVReader) Source() WAVSource { return w.source }

// DataSize returns the size of the data chunk the header declares, in bytes
// of Format (for float files, the size once converted to 16-bit PCM), or -1
// when the header gives no usable size: a placeholder that means "until the
// end" (0, 0xFFFFFFFF, sox's 0x7FFFF000, 0x7FFFFFFF, 2,000,000,000), or a
// size larger than a RIFF file, or this file's RIFF header, allows. With
// -1 the audio ends where the file does; otherwise a file that ends
// earlier was cut short (see Read).
func (w *WAVReader) DataSize() int64 {
	if w.declared < 0 || !w.source.Float() {
		return w.declared
	}
	return w.declared / int64(w.source.bytesPerSample()) * 2
}

// Read reads audio bytes in Format's encoding (float samples converted to
// 16-bit PCM). It returns io.EOF at the end of the data chunk: at its
// declared size or, when the header gives no usable size (DataSize -1:
// streaming writers leave a placeholder), where the file ends. When the
// file ends before a usable declared size, it was cut short: after the
// audio it holds, Read returns an error wrapping io.ErrUnexpectedEOF and
// ErrMalformedWAV that names the data chunk's offset, the size declared
// and the bytes held. Errors of the underlying reader other than io.EOF
// are returned as they are. A trailing incomplete float sample is dropped.
func (w *WAVReader) Read(p []byte) (int, error) {
	if w.source.Float() {
		return w.readFloat(p)
	}
	return w.readRaw(p)
}

// readFloat reads stored float samples through w.raw and returns them
// converted.
func (w *WAVReader) readFloat(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for len(w.out) == 0 {
		if w.err != nil {
			return 0, w.err
		}
		if w.raw == nil {
			w.raw = make([]byte, floatChunk)
			w.cvt = make([]byte, floatChunk/4*2)
		}
		n, err := w.readRaw(w.raw[w.carry:])
		size := w.source.bytesPerSample()
		total := w.carry + n
		whole := total - total%size
		floatToL16(w.cvt, w.raw[:whole], size)
		w.out = w.cvt[:whole/size*2]
		w.carry = copy(w.raw, w.raw[whole:total])
		if err != nil {
			w.err = err
		} else if n == 0 {
			// A reader may return 0, nil; let the caller retry.
			break
		}
	}
	n := copy(p, w.out)
	w.out = w.out[n:]
	return n, nil
}

// truncated is the error of a data chunk that holds only got of its
// declared bytes.
func (w *WAVReader) truncated(got int64) error {
	return fmt.Errorf("%w: %w: %q chunk at offset %d declares %d bytes, the file ends after %d", ErrMalformedWAV, io.ErrUnexpectedEOF, "data", w.dataAt, w.declared, got)
}

// readRaw reads stored bytes of the data chunk.
func (w *WAVReader) readRaw(p []byte) (int, error) {
	if w.short != nil {
		return 0, w.short
	}
	if w.remaining == 0 {
		return 0, io.EOF
	}
	if w.remaining > 0 && int64(len(p)) > w.remaining {
		p = p[:w.remaining]
	}
	n, err := w.r.Read(p)
	if w.remaining > 0 {
		w.remaining -= int64(n)
		if errors.Is(err, io.EOF) && w.remaining > 0 {
			if w.declared >= 0 {
				// The file ends before the size its header declares.
				w.short = w.truncated(w.declared - w.remaining)
				return n, w.short
			}
			w.remaining = 0 // not a size: the audio ends with the file
		}
		if w.remaining == 0 && err == nil {
			err = io.EOF
		}
	}
	return n, err
}

// EncodeWAV appends a complete WAV file holding data in format f to dst. PCM
// files get a 16-byte fmt chunk; μ-law and A-law files get an 18-byte fmt
// chunk and a fact chunk, as sox writes them. A trailing partial sample frame
// in data is dropped.
func EncodeWAV(dst []byte, f WAVFormat, data []byte) ([]byte, error) {
	if err := f.validate(); err != nil {
		return dst, err
	}
	data = data[:len(data)-len(data)%f.blockAlign()]
	if int64(len(data)) > 0xFFFFFFFF-64 {
		return dst, fmt.Errorf("%w: %d bytes do not fit a RIFF file", ErrWAVTooLarge, len(data))
	}
	dst = append(dst, wavHeader(f, uint32(len(data)))...)
	dst = append(dst, data...)
	if len(data)&1 == 1 {
		dst = append(dst, 0)
	}
	return dst, nil
}

func wavHeader(f WAVFormat, dataLen uint32) []byte {
	le := binary.LittleEndian
	var h []byte
	fmtSize, tag := uint32(16), uint16(wavFormatPCM)
	switch f.Encoding {
	case voicegate.PCMU:
		fmtSize, tag = 18, wavFormatULaw
	case voicegate.PCMA:
		fmtSize, tag = 18, wavFormatALaw
	}
	riff := 4 + 8 + fmtSize + 8 + dataLen + dataLen&1
	if fmtSize == 18 {
		riff += 12 // fact chunk
	}
	frames := dataLen / uint32(f.blockAlign())
	if dataLen == streamingSize {
		riff, frames = streamingSize, 0
	}
	h = append(h, "RIFF"...)
	h = le.AppendUint32(h, riff)
	h = append(h, "WAVEfmt "...)
	h = le.AppendUint32(h, fmtSize)
	h = le.AppendUint16(h, tag)
	h = le.AppendUint16(h, uint16(f.Channels))
	h = le.AppendUint32(h, uint32(f.SampleRate))
	h = le.AppendUint32(h, uint32(f.SampleRate*f.blockAlign()))
	h = le.AppendUint16(h, uint16(f.blockAlign()))
	h = le.AppendUint16(h, uint16(8*f.Encoding.BytesPerSample()))
	if fmtSize == 18 {
		h = le.AppendUint16(h, 0)
		h = append(h, "fact"...)
		h = le.AppendUint32(h, 4)
		h = le.AppendUint32(h, frames)
	}
	h = append(h, "data"...)
	h = le.AppendUint32(h, dataLen)
	return h
}

// WAVWriter streams audio into a WAV file. Close patches the sizes in the
// header when the destination is an io.WriteSeeker; otherwise the header
// keeps the streaming size 0xFFFFFFFF, which NewWAVReader reads as "until the
// end of the file".
type WAVWriter struct {
	w      io.Writer
	format WAVFormat
	n      int64
	hdrLen int
	closed bool
}

// NewWAVWriter writes a WAV header for format f to w and returns a writer
// for the audio data.
func NewWAVWriter(w io.Writer, f WAVFormat) (*WAVWriter, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	h := wavHeader(f, streamingSize)
	if _, err := w.Write(h); err != nil {
		return nil, err
	}
	return &WAVWriter{w: w, format: f, hdrLen: len(h)}, nil
}

// Write appends encoded audio bytes in the writer's format.
func (ww *WAVWriter) Write(p []byte) (int, error) {
	if ww.closed {
		return 0, ErrWriterClosed
	}
	n, err := ww.w.Write(p)
	ww.n += int64(n)
	return n, err
}

// Written returns the number of audio bytes written so far.
func (ww *WAVWriter) Written() int64 { return ww.n }

// Close pads the data chunk to an even size and, when the destination can
// seek, rewrites the header with the final sizes. It does not close the
// underlying writer. Close is idempotent.
func (ww *WAVWriter) Close() error {
	if ww.closed {
		return nil
	}
	ww.closed = true
	if ww.n&1 == 1 {
		if _, err := ww.w.Write([]byte{0}); err != nil {
			return err
		}
	}
	ws, ok := ww.w.(io.WriteSeeker)
	if !ok || ww.n > 0xFFFFFFFF-64 {
		return nil
	}
	end, err := ws.Seek(0, io.SeekCurrent)
	if err != nil {
		return err
	}
	start := end - int64(ww.hdrLen) - ww.n - ww.n&1
	if _, err := ws.Seek(start, io.SeekStart); err != nil {
		return err
	}
	if _, err := ws.Write(wavHeader(ww.format, uint32(ww.n))); err != nil {
		return err
	}
	_, err = ws.Seek(end, io.SeekStart)
	return err
}
