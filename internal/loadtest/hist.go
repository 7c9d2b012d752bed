package loadtest

import (
	"sync/atomic"
	"time"
)

// Histogram counts durations in fixed buckets, safe for concurrent Add
// without locks. Buckets, in microseconds: 10 µs wide below 1 ms, 100 µs
// below 100 ms, 10 ms below 10 s, 1 s below 130 s, and one bucket for
// anything longer. A negative duration (clock skew between processes)
// counts as 0. The Node consumer (node/consumer.js) uses the same buckets,
// so its reports merge with Go's.
type Histogram struct {
	counts [NumBuckets]atomic.Uint64
}

// NumBuckets is the number of histogram buckets.
const NumBuckets = 100 + 990 + 990 + 120 + 1

// BucketOf returns the bucket index of a duration of us microseconds.
func BucketOf(us int64) int {
	switch {
	case us < 0:
		return 0
	case us < 1000:
		return int(us / 10)
	case us < 100_000:
		return 100 + int((us-1000)/100)
	case us < 10_000_000:
		return 1090 + int((us-100_000)/10_000)
	case us < 130_000_000:
		return 2080 + int((us-10_000_000)/1_000_000)
	default:
		return NumBuckets - 1
	}
}

// BucketUpper returns the exclusive upper bound of bucket i in
// microseconds (the last bucket reports 130 s).
func BucketUpper(i int) int64 {
	switch {
	case i < 100:
		return int64(i+1) * 10
	case i < 1090:
		return 1000 + int64(i-100+1)*100
	case i < 2080:
		return 100_000 + int64(i-1090+1)*10_000
	default:
		return 10_000_000 + int64(min(i, NumBuckets-2)-2080+1)*1_000_000
	}
}

// Add counts d.
func (h *Histogram) Add(d time.Duration) { h.counts[BucketOf(d.Microseconds())].Add(1) }

// Reset zeroes every bucket. Adds racing with Reset may land on either side.
func (h *Histogram) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
}

// Snapshot returns the non-empty buckets as [index, count] pairs.
func (h *Histogram) Snapshot() Sparse {
	var s Sparse
	for i := range h.counts {
		if c := h.counts[i].Load(); c != 0 {
			s = append(s, [2]uint64{uint64(i), c})
		}
	}
	return s
}

// Sparse is a histogram's non-empty buckets as [index, count] pairs in
// increasing index order: the form servers report in.
type Sparse [][2]uint64

// Count returns the number of samples.
func (s Sparse) Count() uint64 {
	var n uint64
	for _, b := range s {
		n += b[1]
	}
	return n
}

// Quantile returns the upper bound of the bucket holding the q-quantile
// (0 < q ≤ 1), so it errs on the high side by at most one bucket's width;
// 0 for an empty histogram.
func (s Sparse) Quantile(q float64) time.Duration {
	n := s.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.9999999)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for _, b := range s {
		seen += b[1]
		if seen >= rank {
			return time.Duration(BucketUpper(int(b[0]))) * time.Microsecond
		}
	}
	return time.Duration(BucketUpper(int(s[len(s)-1][0]))) * time.Microsecond
}
