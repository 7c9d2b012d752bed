package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/voicegate/voicegate"
)

// WAV format tags.
const (
	wavFormatPCM        = 0x0001
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

// soxStreamingSize is the data size sox writes when its output cannot seek
// (a pipe).
const soxStreamingSize = 0x7FFFF000

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

// WAV is a decoded WAV file: its format and its raw (still encoded) data.
type WAV struct {
	// Format describes Data.
	Format WAVFormat
	// Data holds whole sample frames in the file's encoding, interleaved.
	Data []byte
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

func growInt16(dst []int16, n int) []int16 {
	if cap(dst)-len(dst) < n {
		nd := make([]int16, len(dst), len(dst)+n)
		copy(nd, dst)
		dst = nd
	}
	return dst[:len(dst)+n]
}

// ParseWAV parses a WAV file held in memory. The returned Data aliases b.
// A data chunk that claims more bytes than the file holds is an error
// (ErrMalformedWAV), except for the streaming sizes 0, 0xFFFFFFFF and
// 0x7FFFF000 (written by sox into a pipe), which mean "to the end of the
// file". A trailing partial sample frame is dropped.
func ParseWAV(b []byte) (*WAV, error) {
	r := bytes.NewReader(b)
	wr, err := NewWAVReader(r)
	if err != nil {
		return nil, err
	}
	off := len(b) - r.Len()
	n := len(b) - off
	if wr.remaining >= 0 {
		if wr.remaining > int64(n) {
			return nil, fmt.Errorf("%w: data chunk declares %d bytes, file holds %d", ErrMalformedWAV, wr.remaining, n)
		}
		n = int(wr.remaining)
	}
	n -= n % wr.format.blockAlign()
	return &WAV{Format: wr.format, Data: b[off : off+n]}, nil
}

// ReadWAV reads a whole WAV file from r, holding at most maxData bytes of
// audio (0 means DefaultMaxWAVData). Memory grows with the bytes actually
// read, never with the sizes the header claims.
func ReadWAV(r io.Reader, maxData int64) (*WAV, error) {
	if maxData <= 0 {
		maxData = DefaultMaxWAVData
	}
	wr, err := NewWAVReader(r)
	if err != nil {
		return nil, err
	}
	if wr.remaining > maxData {
		return nil, fmt.Errorf("%w: data chunk declares %d bytes, limit %d", ErrWAVTooLarge, wr.remaining, maxData)
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
	return &WAV{Format: wr.format, Data: data}, nil
}

// WAVReader streams the data chunk of a WAV file.
type WAVReader struct {
	r         io.Reader
	format    WAVFormat
	remaining int64 // bytes left in the data chunk, or -1 for "until EOF"
	declared  int64
}

// NewWAVReader reads the RIFF header, the fmt chunk and any chunks before
// data (fact, LIST, …) from r, and returns a reader positioned at the start
// of the audio. It accepts fmt chunk sizes 16, 18 and 40
// (WAVE_FORMAT_EXTENSIBLE) and formats PCM 16-bit, A-law and μ-law.
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
	var (
		format  WAVFormat
		haveFmt bool
		ch      [8]byte
	)
	for {
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if haveFmt {
				return nil, fmt.Errorf("%w: no data chunk", ErrMalformedWAV)
			}
			return nil, fmt.Errorf("%w: no fmt chunk", ErrMalformedWAV)
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		if id == "data" {
			if !haveFmt {
				return nil, fmt.Errorf("%w: data chunk before fmt chunk", ErrMalformedWAV)
			}
			wr := &WAVReader{r: r, format: format, remaining: size, declared: size}
			if size == 0 || size == streamingSize || size == soxStreamingSize {
				wr.remaining, wr.declared = -1, -1
			}
			return wr, nil
		}
		// Chunks are padded to an even size.
		padded := size + size&1
		if id == "fmt " {
			if size < 16 {
				return nil, fmt.Errorf("%w: fmt chunk %d bytes < 16", ErrMalformedWAV, size)
			}
			var buf [maxFmtRead]byte
			k := min(size, maxFmtRead)
			if _, err := io.ReadFull(r, buf[:k]); err != nil {
				return nil, fmt.Errorf("%w: fmt chunk of %d bytes truncated", ErrMalformedWAV, size)
			}
			f, err := parseFmt(buf[:k])
			if err != nil {
				return nil, err
			}
			format, haveFmt = f, true
			padded -= k
		}
		// Skipping reads through a small pooled buffer, so a lying size
		// costs reading, never memory.
		if _, err := io.CopyN(io.Discard, r, padded); err != nil {
			return nil, fmt.Errorf("%w: %q chunk of %d bytes truncated", ErrMalformedWAV, id, size)
		}
	}
}

var (
	guidTail = []byte{0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71}
)

func parseFmt(b []byte) (WAVFormat, error) {
	tag := binary.LittleEndian.Uint16(b[0:])
	channels := int(binary.LittleEndian.Uint16(b[2:]))
	rate := int(binary.LittleEndian.Uint32(b[4:]))
	blockAlign := int(binary.LittleEndian.Uint16(b[12:]))
	bits := int(binary.LittleEndian.Uint16(b[14:]))
	if tag == wavFormatExtensible {
		if len(b) < 40 {
			return WAVFormat{}, fmt.Errorf("%w: extensible fmt chunk %d bytes < 40", ErrMalformedWAV, len(b))
		}
		sub := b[24:40]
		if !bytes.Equal(sub[2:], guidTail) {
			return WAVFormat{}, fmt.Errorf("%w: extensible sub-format % x", ErrUnsupportedWAV, sub)
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
	default:
		return WAVFormat{}, fmt.Errorf("%w: format tag %#04x with %d bits per sample", ErrUnsupportedWAV, tag, bits)
	}
	f.Channels, f.SampleRate = channels, rate
	if err := f.validate(); err != nil {
		return WAVFormat{}, err
	}
	if blockAlign != f.blockAlign() {
		return WAVFormat{}, fmt.Errorf("%w: block align %d, want %d", ErrMalformedWAV, blockAlign, f.blockAlign())
	}
	return f, nil
}

// Format returns the audio format from the header.
func (w *WAVReader) Format() WAVFormat { return w.format }

// DataSize returns the size of the data chunk the header declares, or -1 when
// it says "until the end" (sizes 0, 0xFFFFFFFF and sox's 0x7FFFF000, written
// by streaming recorders).
func (w *WAVReader) DataSize() int64 { return w.declared }

// Read reads encoded audio bytes. It returns io.EOF at the end of the data
// chunk, and an error matching both ErrMalformedWAV and io.ErrUnexpectedEOF
// when the file ends before the declared data size.
func (w *WAVReader) Read(p []byte) (int, error) {
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
			return n, fmt.Errorf("%w: data chunk truncated, %d of %d bytes missing: %w", ErrMalformedWAV, w.remaining, w.declared, io.ErrUnexpectedEOF)
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
