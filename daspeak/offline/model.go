package offline

import (
	_ "embed"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
)

// The channel compensation and the score normalisation live in model.bin,
// written by the fit (fit_test.go) next to norm.go:
//
//	"VGOM" [version uint16][dim uint16][nap uint16][cohort uint16]
//	[nap·dim float32: orthonormal nuisance directions]
//	[cohort·dim float32: unit-length cohort embeddings]
//	[cohort uint8: the cohort speaker of each embedding, an index in cohortSpeakers]
//	[CRC-32 IEEE of all before]
//
// little endian throughout.
//
//go:embed model.bin
var modelFile []byte

// modelFormat is the version of model.bin's layout.
const modelFormat = 1

// compensation is the loaded model.bin.
type compensation struct {
	nap     [][]float64 // nuisance directions removed from supervectors
	cohort  [][]float32 // impostor cohort, in embedding space
	speaker []uint8     // cohort speaker of each cohort row
}

var comp = mustLoadCompensation(modelFile)

func mustLoadCompensation(b []byte) *compensation {
	c, err := loadCompensation(b)
	if err != nil {
		panic("offline: embedded model.bin: " + err.Error())
	}
	return c
}

func loadCompensation(b []byte) (*compensation, error) {
	if len(b) < 16 || string(b[:4]) != "VGOM" {
		return nil, fmt.Errorf("not a model file")
	}
	body := b[:len(b)-4]
	if crc32.ChecksumIEEE(body) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("checksum mismatch")
	}
	le := binary.LittleEndian
	ver, dim, nn, nc := le.Uint16(b[4:]), int(le.Uint16(b[6:])), int(le.Uint16(b[8:])), int(le.Uint16(b[10:]))
	if ver != modelFormat || dim != embedDim {
		return nil, fmt.Errorf("version %d, dimension %d; want %d, %d", ver, dim, modelFormat, embedDim)
	}
	if len(body) != 12+4*dim*(nn+nc)+nc {
		return nil, fmt.Errorf("size %d does not match %d directions and %d cohort rows", len(b), nn, nc)
	}
	p := body[12:]
	next := func() float32 {
		x := math.Float32frombits(le.Uint32(p))
		p = p[4:]
		return x
	}
	c := &compensation{}
	for range nn {
		v := make([]float64, dim)
		for i := range v {
			v[i] = float64(next())
		}
		c.nap = append(c.nap, v)
	}
	for range nc {
		v := make([]float32, dim)
		for i := range v {
			v[i] = next()
		}
		c.cohort = append(c.cohort, v)
	}
	c.speaker = slices.Clone(p[:nc])
	return c, nil
}

// encodeCompensation is the inverse of loadCompensation (used by the fit).
func encodeCompensation(c *compensation) []byte {
	le := binary.LittleEndian
	b := []byte("VGOM")
	b = le.AppendUint16(b, modelFormat)
	b = le.AppendUint16(b, embedDim)
	b = le.AppendUint16(b, uint16(len(c.nap)))
	b = le.AppendUint16(b, uint16(len(c.cohort)))
	for _, v := range c.nap {
		for _, x := range v {
			b = le.AppendUint32(b, math.Float32bits(float32(x)))
		}
	}
	for _, v := range c.cohort {
		for _, x := range v {
			b = le.AppendUint32(b, math.Float32bits(x))
		}
	}
	b = append(b, c.speaker...)
	return le.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// project removes the nuisance directions from v in place.
func (c *compensation) project(v []float64) {
	for _, u := range c.nap {
		var d float64
		for i, x := range v {
			d += x * u[i]
		}
		for i := range v {
			v[i] -= d * u[i]
		}
	}
}

// cohortTop is how many of the closest cohort embeddings the adaptive
// score normalisation uses for each side of a comparison.
const cohortTop = 80

// cohortTrim is how many of the very closest cohort rows are left out
// before taking the cohortTop next: they may be the speaker being scored
// (a cohort voice enrolled as a caller), whose own rows would lower its
// genuine scores. With 2, a committed test clip scores 0.973 against its
// own credential; with 6, the synthetic test voices pass as one another.
const cohortTrim = 4

// stats returns the mean and standard deviation of the cohortTop highest
// cosines (after the cohortTrim highest) between e and the cohort rows whose speaker skip does not flag
// (skip nil: all rows). It keeps the cosines in scratch's array when its
// capacity is at least len(c.cohort), and allocates otherwise.
func (c *compensation) stats(e []float32, skip func(speaker uint8) bool, scratch []float64) (mean, sd float64) {
	if cap(scratch) < len(c.cohort) {
		scratch = make([]float64, 0, len(c.cohort))
	}
	s := scratch[:0]
	for i, row := range c.cohort {
		if skip != nil && skip(c.speaker[i]) {
			continue
		}
		s = append(s, cosine(e, row))
	}
	return cohortStats(s)
}

// cohortStats returns the mean and standard deviation of the cohortTop
// highest of the cosines s (after the cohortTrim highest); it sorts s.
func cohortStats(s []float64) (mean, sd float64) {
	if len(s) == 0 {
		return 0, 1
	}
	slices.Sort(s)
	if len(s) > cohortTrim+cohortTop {
		s = s[:len(s)-cohortTrim]
	}
	s = s[max(0, len(s)-cohortTop):]
	for _, x := range s {
		mean += x
	}
	mean /= float64(len(s))
	for _, x := range s {
		sd += (x - mean) * (x - mean)
	}
	sd = math.Sqrt(sd / float64(len(s)))
	return mean, max(sd, 1e-3)
}

// normScore is the adaptive symmetric normalisation (AS-norm) of the cosine
// of a and b: the mean of the cosine standardised by a's and by b's
// statistics against the closest cohort embeddings. An impostor's
// normalised score is about standard normal whatever the channel; a
// genuine speaker's lies several units above.
//
// scratch, when its capacity is at least len(c.cohort), keeps the cosines
// with the cohort (nil: they are allocated).
func (c *compensation) normScore(a, b []float32, skip func(speaker uint8) bool, scratch []float64) float64 {
	s := cosine(a, b)
	ma, sa := c.stats(a, skip, scratch)
	mb, sb := c.stats(b, skip, scratch)
	return 0.5 * ((s-ma)/sa + (s-mb)/sb)
}
