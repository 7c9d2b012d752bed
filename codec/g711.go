package codec

import "math/bits"

// G.711 silence: the code each law uses for a zero sample.
const (
	ULawSilence byte = 0xFF
	ALawSilence byte = 0xD5
)

var (
	ulawToInt16 [256]int16
	alawToInt16 [256]int16
	ulawToF32   [256]float32
	alawToF32   [256]float32
	ulawToALaw  [256]byte
	alawToULaw  [256]byte
)

func init() {
	for i := range 256 {
		ulawToInt16[i] = ulawDecode(byte(i))
		alawToInt16[i] = alawDecode(byte(i))
		ulawToF32[i] = float32(ulawToInt16[i]) / 32768
		alawToF32[i] = float32(alawToInt16[i]) / 32768
	}
	for i := range 256 {
		ulawToALaw[i] = EncodeALawSample(ulawToInt16[i])
		alawToULaw[i] = EncodeULawSample(alawToInt16[i])
	}
}

// ulawDecode is the ITU-T G.711 μ-law expansion (Sun g711.c ulaw2linear),
// scaled to 16 bits.
func ulawDecode(u byte) int16 {
	u = ^u
	t := (int32(u&0x0F) << 3) + 0x84
	t <<= (u & 0x70) >> 4
	if u&0x80 != 0 {
		return int16(0x84 - t)
	}
	return int16(t - 0x84)
}

// alawDecode is the ITU-T G.711 A-law expansion (Sun g711.c alaw2linear),
// scaled to 16 bits.
func alawDecode(a byte) int16 {
	a ^= 0x55
	t := int32(a&0x0F) << 4
	seg := (a & 0x70) >> 4
	switch seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t += 0x108
		t <<= seg - 1
	}
	if a&0x80 != 0 {
		return int16(t)
	}
	return int16(-t)
}

// EncodeULawSample compresses one 16-bit sample to μ-law. It truncates as
// ITU-T G.191 does: values halfway between two decision levels of a negative
// sample go to the lower one.
func EncodeULawSample(s int16) byte {
	sign := ((^s) >> 8) & 0x80
	if sign == 0 {
		s = ^s
	}
	s = (s >> 2) + 33
	if s > 0x1FFF {
		s = 0x1FFF
	}
	seg := int16(16 - bits.LeadingZeros16(uint16(s>>5)))
	low := 0x0F - ((s >> seg) & 0x0F)
	return byte(sign | ((8 - seg) << 4) | low)
}

// EncodeALawSample compresses one 16-bit sample to A-law.
func EncodeALawSample(s int16) byte {
	sign := ((^s) >> 8) & 0x80
	if sign == 0 {
		s = ^s
	}
	c := s >> 4
	if c > 15 {
		seg := int16(12 - bits.LeadingZeros16(uint16(c)))
		c >>= seg - 1
		c -= 16
		c += seg << 4
	}
	return byte((sign | c) ^ 0x55)
}

// DecodeULawSample expands one μ-law code to a 16-bit sample.
func DecodeULawSample(c byte) int16 { return ulawToInt16[c] }

// DecodeALawSample expands one A-law code to a 16-bit sample.
func DecodeALawSample(c byte) int16 { return alawToInt16[c] }

// The slice functions below take the destination first, never allocate and
// return the number of samples written: min(len(dst), len(src)). A short
// destination therefore converts a prefix of src; callers that must convert
// everything size dst to len(src).

// DecodeULaw expands μ-law codes from src into dst.
func DecodeULaw(dst []int16, src []byte) int { return lookup(dst, src, &ulawToInt16) }

// DecodeALaw expands A-law codes from src into dst.
func DecodeALaw(dst []int16, src []byte) int { return lookup(dst, src, &alawToInt16) }

// DecodeULawFloat expands μ-law codes from src into dst as float32 in
// [-1, 1) (sample/32768).
func DecodeULawFloat(dst []float32, src []byte) int { return lookup(dst, src, &ulawToF32) }

// DecodeALawFloat expands A-law codes from src into dst as float32 in
// [-1, 1) (sample/32768).
func DecodeALawFloat(dst []float32, src []byte) int { return lookup(dst, src, &alawToF32) }

// EncodeULaw compresses 16-bit samples from src into μ-law codes in dst.
func EncodeULaw(dst []byte, src []int16) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, s := range src {
		dst[i] = EncodeULawSample(s)
	}
	return n
}

// EncodeALaw compresses 16-bit samples from src into A-law codes in dst.
func EncodeALaw(dst []byte, src []int16) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, s := range src {
		dst[i] = EncodeALawSample(s)
	}
	return n
}

// ULawToALaw transcodes μ-law codes to A-law through one table lookup per
// sample. dst and src may be the same slice.
func ULawToALaw(dst, src []byte) int { return lookup(dst, src, &ulawToALaw) }

// ALawToULaw transcodes A-law codes to μ-law. dst and src may be the same
// slice.
func ALawToULaw(dst, src []byte) int { return lookup(dst, src, &alawToULaw) }

// lookup maps each code of src through tab into dst and returns the number
// of samples written, min(len(dst), len(src)).
func lookup[T int16 | float32 | byte](dst []T, src []byte, tab *[256]T) int {
	n := min(len(dst), len(src))
	dst, src = dst[:n], src[:n]
	for i, c := range src {
		dst[i] = tab[c]
	}
	return n
}
