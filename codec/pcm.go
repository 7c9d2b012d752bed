package codec

import (
	"encoding/binary"
	"math"
)

// The PCM helpers take the destination first, never allocate and return the
// number of samples (for stereo helpers: sample frames) written.

// BytesToInt16 reads little-endian signed 16-bit samples from src into dst.
// A trailing odd byte in src is ignored.
func BytesToInt16(dst []int16, src []byte) int {
	n := min(len(dst), len(src)/2)
	dst = dst[:n]
	src = src[:2*n]
	for i := range dst {
		dst[i] = int16(binary.LittleEndian.Uint16(src[2*i:]))
	}
	return n
}

// Int16ToBytes writes samples from src into dst as little-endian signed 16-bit
// values. It returns the number of samples written (bytes / 2).
func Int16ToBytes(dst []byte, src []int16) int {
	n := min(len(dst)/2, len(src))
	dst = dst[:2*n]
	for i, s := range src[:n] {
		binary.LittleEndian.PutUint16(dst[2*i:], uint16(s))
	}
	return n
}

// Int16ToFloat converts samples to float32 in [-1, 1) (sample/32768).
func Int16ToFloat(dst []float32, src []int16) int {
	n := min(len(dst), len(src))
	dst = dst[:n]
	for i, s := range src[:n] {
		dst[i] = float32(s) / 32768
	}
	return n
}

// FloatToInt16 converts float32 samples (nominally in [-1, 1)) to int16,
// rounding to nearest and clipping to [-32768, 32767]. NaN becomes 0.
func FloatToInt16(dst []int16, src []float32) int {
	n := min(len(dst), len(src))
	dst = dst[:n]
	for i, f := range src[:n] {
		dst[i] = clipFloat(f * 32768)
	}
	return n
}

func clipFloat(v float32) int16 {
	switch {
	case v != v: // NaN
		return 0
	case v >= 32767:
		return 32767
	case v <= -32768:
		return -32768
	}
	return int16(math.RoundToEven(float64(v)))
}

func clip32(v int32) int16 {
	if v > math.MaxInt16 {
		return math.MaxInt16
	}
	if v < math.MinInt16 {
		return math.MinInt16
	}
	return int16(v)
}

// Deinterleave splits interleaved two-channel samples src (L0 R0 L1 R1 …)
// into ch0 and ch1. It returns the number of sample frames written:
// min(len(ch0), len(ch1), len(src)/2).
func Deinterleave(ch0, ch1, src []int16) int {
	n := min(len(ch0), len(ch1), len(src)/2)
	ch0, ch1 = ch0[:n], ch1[:n]
	for i := range ch0 {
		ch0[i] = src[2*i]
		ch1[i] = src[2*i+1]
	}
	return n
}

// Interleave merges ch0 and ch1 into dst as L0 R0 L1 R1 …. It returns the
// number of sample frames written: min(len(dst)/2, len(ch0), len(ch1)).
func Interleave(dst, ch0, ch1 []int16) int {
	n := min(len(dst)/2, len(ch0), len(ch1))
	ch0, ch1 = ch0[:n], ch1[:n]
	for i := range ch0 {
		dst[2*i] = ch0[i]
		dst[2*i+1] = ch1[i]
	}
	return n
}

// ExtractChannel copies channel ch of interleaved src with the given channel
// count into dst. It returns the number of samples written, or 0 when ch is
// out of range.
func ExtractChannel(dst, src []int16, channels, ch int) int {
	if channels < 1 || ch < 0 || ch >= channels {
		return 0
	}
	n := min(len(dst), len(src)/channels)
	dst = dst[:n]
	for i := range dst {
		dst[i] = src[i*channels+ch]
	}
	return n
}

// MixStereoToMono sums the two channels of interleaved src into dst, in int32
// with clipping, so two loud talkers saturate instead of wrapping around. It
// returns the number of samples written: min(len(dst), len(src)/2).
func MixStereoToMono(dst, src []int16) int {
	n := min(len(dst), len(src)/2)
	dst = dst[:n]
	for i := range dst {
		dst[i] = clip32(int32(src[2*i]) + int32(src[2*i+1]))
	}
	return n
}

// Mix sums a and b sample by sample into dst, in int32 with clipping. dst may
// alias a or b. It returns min(len(dst), len(a), len(b)).
func Mix(dst, a, b []int16) int {
	n := min(len(dst), len(a), len(b))
	dst = dst[:n]
	for i := range dst {
		dst[i] = clip32(int32(a[i]) + int32(b[i]))
	}
	return n
}

// Gain multiplies src by g into dst, rounding to nearest and clipping. dst may
// alias src. It returns min(len(dst), len(src)).
func Gain(dst, src []int16, g float32) int {
	n := min(len(dst), len(src))
	dst = dst[:n]
	for i := range dst {
		dst[i] = clipFloat(float32(src[i]) * g)
	}
	return n
}

// DBToGain converts a level in decibels to a linear gain factor for Gain.
func DBToGain(db float64) float32 { return float32(math.Pow(10, db/20)) }
