// Package codec holds the audio building blocks of voicegate: G.711 μ-law and
// A-law, PCM16 helpers, a streaming polyphase resampler and WAV files.
//
// # Conventions
//
// Conversion functions take the destination first, never allocate, and
// return the number of samples written, which is the smaller of what the
// destination holds and what the source offers: a short destination converts
// a prefix. Sample arithmetic (mixing, gain) is done in int32 or float and
// clipped, never wrapped.
//
// # G.711
//
// Decoding goes through 256-entry tables built from the ITU-T definition and
// is bit-exact with sox and with the classic Sun g711.c. Encoding truncates
// the way ITU-T G.191 does. encode(decode(c)) == c for every code except
// μ-law 0x7F ("negative zero"), which decodes to 0 and encodes back as 0xFF.
//
// # Resampling
//
// Resampler converts between any two rates with a streaming polyphase FIR
// filter (Kaiser-windowed sinc) in float32. Its output does not depend on
// how the input is chunked, it allocates nothing after NewResampler, and its
// delay is a whole number of output samples (Latency). The Telephone preset
// keeps 300–3400 Hz flat within ±0.05 dB with images and aliases at least
// 65 dB down; High pushes up-sampling images below -80 dB. Against sox's
// very-high-quality `rate -v` on a 300–3400 Hz sweep, the SNR is above 75 dB
// for 8→16, 16→8, 8→44.1 and 8→48 kHz.
//
// # WAV
//
// ParseWAV, ReadWAV and NewWAVReader read RIFF/WAVE files holding 16-bit PCM,
// μ-law (format 7), A-law (format 6) or 32/64-bit IEEE float (format 3, as
// browsers and audio editors export; converted to 16-bit PCM while read),
// mono or stereo, with fmt chunk sizes 16, 18 or 40 and any fact, LIST or
// other chunks before the data. Sizes in the header are never trusted for
// allocation. The audio ends at the data chunk's declared size; a file that
// ends before it was cut short and reads as an error wrapping
// io.ErrUnexpectedEOF, except when the size is a placeholder streaming
// writers leave (0, 0xFFFFFFFF, 0x7FFFFFFF, …) or one no RIFF file, or this
// file's RIFF header, allows: those read to the end of the file (see
// WAVReader.DataSize). EncodeWAV and WAVWriter write PCM, μ-law and A-law
// the way sox does.
package codec
