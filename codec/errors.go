package codec

import "errors"

var (
	// ErrNotWAV reports input that is not a RIFF/WAVE file.
	ErrNotWAV = errors.New("codec: not a RIFF WAVE file")
	// ErrUnsupportedWAV reports a well-formed WAV file in a format this
	// package does not handle (for example 24-bit PCM or ADPCM).
	ErrUnsupportedWAV = errors.New("codec: unsupported WAV format")
	// ErrMalformedWAV reports a WAV file whose header is truncated or
	// inconsistent.
	ErrMalformedWAV = errors.New("codec: malformed WAV file")
	// ErrWAVTooLarge reports audio data beyond the reader's size limit.
	ErrWAVTooLarge = errors.New("codec: WAV data exceeds limit")
	// ErrWriterClosed reports a write to a closed WAVWriter.
	ErrWriterClosed = errors.New("codec: write to closed WAVWriter")
	// ErrRate reports a sample-rate pair the resampler cannot handle.
	ErrRate = errors.New("codec: unsupported sample rate")
)
