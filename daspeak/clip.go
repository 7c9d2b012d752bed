package daspeak

// clip is the audio a session collects for the engine: one channel in the
// source's encoding (1 byte a sample for PCMU and PCMA, 2 for L16), held in
// blocks allocated as the audio arrives, up to a cap. A session holds only
// the audio it collected (rounded up to a block) instead of the cap: about
// 8 KB a second at 8 kHz μ-law, where a buffer for the whole of
// MaxTotalAudio held 464 KB of int16 samples from the first frame on.
// Growing by blocks copies nothing and allocates once a block (one second
// of audio), never per frame.
type clip struct {
	block  int // bytes per block
	max    int // cap in bytes
	n      int // bytes collected
	blocks [][]byte
}

// add appends as much of p as the cap allows.
func (c *clip) add(p []byte) {
	p = p[:min(len(p), c.max-c.n)]
	for len(p) > 0 {
		if k := len(c.blocks); k == 0 || len(c.blocks[k-1]) == cap(c.blocks[k-1]) {
			c.blocks = append(c.blocks, make([]byte, 0, min(c.block, c.max-c.n)))
		}
		last := &c.blocks[len(c.blocks)-1]
		k := copy((*last)[len(*last):cap(*last)], p)
		*last = (*last)[:len(*last)+k]
		p = p[k:]
		c.n += k
	}
}

// full reports whether the cap is reached.
func (c *clip) full() bool { return c.n >= c.max }

// appendTo appends the collected audio to dst.
func (c *clip) appendTo(dst []byte) []byte {
	for _, b := range c.blocks {
		dst = append(dst, b...)
	}
	return dst
}

// ring keeps the last len(buf) bytes pushed into it: the current pause,
// of which only the last MaxPause joins the clip when speech resumes.
type ring struct {
	buf []byte
	off int // oldest byte
	n   int // bytes held
}

// push adds p, dropping the oldest bytes beyond the ring's size, and
// returns how many bytes it dropped.
func (r *ring) push(p []byte) (dropped int) {
	size := len(r.buf)
	if len(p) >= size {
		dropped = r.n + len(p) - size
		p = p[len(p)-size:]
		r.off, r.n = 0, 0
	} else if over := r.n + len(p) - size; over > 0 {
		r.off = (r.off + over) % size
		r.n -= over
		dropped = over
	}
	if size == 0 {
		return dropped
	}
	w := (r.off + r.n) % size
	k := copy(r.buf[w:], p)
	copy(r.buf, p[k:])
	r.n += len(p)
	return dropped
}

// flush moves the ring's bytes, oldest first, into c and empties it.
func (r *ring) flush(c *clip) {
	end := min(r.off+r.n, len(r.buf))
	c.add(r.buf[r.off:end])
	c.add(r.buf[:r.n-(end-r.off)])
	r.off, r.n = 0, 0
}
