package daspeak

import (
	"bytes"
	"testing"
)

// TestClip checks that a clip keeps every byte added, in order, up to its
// cap, and allocates blocks only as audio arrives.
func TestClip(t *testing.T) {
	for _, tc := range []struct {
		name             string
		block, max       int
		adds             []int
		wantN, wantBlock int
	}{
		{"empty", 8, 40, nil, 0, 0},
		{"within a block", 8, 40, []int{3, 4}, 7, 1},
		{"exact block", 8, 40, []int{8}, 8, 1},
		{"across blocks", 8, 40, []int{5, 5, 5}, 15, 2},
		{"one add over many blocks", 8, 40, []int{30}, 30, 4},
		{"cap cuts", 8, 20, []int{15, 15}, 20, 3},
		{"cap not a multiple of block", 8, 13, []int{100}, 13, 2},
		{"after cap", 8, 16, []int{16, 4}, 16, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := clip{block: tc.block, max: tc.max}
			var want []byte
			b := byte(0)
			for _, n := range tc.adds {
				p := make([]byte, n)
				for i := range p {
					b++
					p[i] = b
				}
				c.add(p)
				want = append(want, p...)
			}
			want = want[:min(len(want), tc.max)]
			if got := c.appendTo(nil); c.n != tc.wantN || !bytes.Equal(got, want) || len(c.blocks) != tc.wantBlock {
				t.Fatalf("n %d blocks %d %v, want n %d blocks %d %v", c.n, len(c.blocks), got, tc.wantN, tc.wantBlock, want)
			}
			if c.full() != (c.n == tc.max) {
				t.Fatalf("full %v with %d of %d", c.full(), c.n, tc.max)
			}
			held := 0
			for _, blk := range c.blocks {
				held += cap(blk)
			}
			if held > c.n+tc.block {
				t.Fatalf("%d bytes held for %d collected", held, c.n)
			}
		})
	}
}

// TestRing checks that the pause ring keeps the last bytes pushed, counts
// the bytes it drops and flushes them oldest first.
func TestRing(t *testing.T) {
	for _, tc := range []struct {
		name        string
		size        int
		pushes      []int
		wantDropped int
	}{
		{"fits", 10, []int{3, 4}, 0},
		{"exact", 10, []int{10}, 0},
		{"wraps", 10, []int{6, 6, 6}, 8},
		{"one push over the size", 10, []int{25}, 15},
		{"over the size after some", 10, []int{4, 12}, 6},
		{"many small", 4, []int{1, 1, 1, 1, 1, 1, 1}, 3},
		{"zero size", 0, []int{5}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ring{buf: make([]byte, tc.size)}
			var all []byte
			dropped := 0
			b := byte(0)
			for _, n := range tc.pushes {
				p := make([]byte, n)
				for i := range p {
					b++
					p[i] = b
				}
				dropped += r.push(p)
				all = append(all, p...)
			}
			want := all[max(len(all)-tc.size, 0):]
			c := clip{block: 3, max: 100}
			r.flush(&c)
			if got := c.appendTo(nil); !bytes.Equal(got, want) || dropped != tc.wantDropped {
				t.Fatalf("flushed %v dropped %d, want %v dropped %d", got, dropped, want, tc.wantDropped)
			}
			if r.n != 0 || r.off != 0 {
				t.Fatalf("ring not empty after flush: %+v", r)
			}
		})
	}
}
