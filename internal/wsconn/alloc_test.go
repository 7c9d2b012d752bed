package wsconn

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
)

// TestReadMessageAllocs proves the steady-state read path allocates
// nothing: a client over loopback TCP writes pre-masked frames and the
// server reads them with ReadMessage, both in the measured function.
func TestReadMessageAllocs(t *testing.T) {
	s := newServer(t, nil)
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	text := []byte(`{"version":"2","type":"ping","seq":7,"id":"ünïcode ✓"}`)
	tests := []struct {
		name  string
		typ   MessageType
		wire  []byte
		want  []byte
		pings bool
	}{
		{"binary 320 bytes", MessageBinary, fin(opBinary, bytes.Repeat([]byte{0x55, 0xd5}, 160)), bytes.Repeat([]byte{0x55, 0xd5}, 160), false},
		{"binary 4000 bytes", MessageBinary, fin(opBinary, bytes.Repeat([]byte{1, 2, 3, 4, 5}, 800)), bytes.Repeat([]byte{1, 2, 3, 4, 5}, 800), false},
		{"text", MessageText, fin(opText, text), text, false},
		{"fragmented binary with a ping between", MessageBinary,
			append(append(cont(opBinary, []byte("abc")), fin(opPing, nil)...), fin(opContinuation, []byte("def"))...), []byte("abcdef"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The pings are answered with pongs without allocating either.
			var bad error
			step := func() {
				rc.write(t, tt.wire)
				typ, p, err := c.ReadMessage()
				if err != nil || typ != tt.typ || !bytes.Equal(p, tt.want) {
					bad = err
					if bad == nil {
						t.Errorf("got %v %q", typ, p)
					}
				}
			}
			step() // grow the buffer
			if n := testing.AllocsPerRun(200, step); n != 0 {
				t.Errorf("%v allocations per message, want 0", n)
			}
			if bad != nil {
				t.Fatal(bad)
			}
			// Drain the pongs so the socket buffer never fills.
			if tt.pings {
				for range 201 {
					if f, err := rc.readFrame(); err != nil || f.op != opPong {
						t.Fatalf("pong: %+v %v", f, err)
					}
				}
			}
		})
	}
}

// TestWriteMessageAllocs proves WriteMessage with a context that cannot be
// cancelled allocates nothing.
func TestWriteMessageAllocs(t *testing.T) {
	s := newServer(t, nil)
	rc := dialRaw(t, s, nil)
	c := s.conn(t)
	payload := bytes.Repeat([]byte{7}, 320)
	got := make([]byte, 4+len(payload))
	ctx := context.Background()
	var bad error
	step := func() {
		if err := c.WriteMessage(ctx, MessageBinary, payload); err != nil {
			bad = err
			return
		}
		if _, err := io.ReadFull(rc.br, got); err != nil {
			bad = err
			return
		}
		if got[0] != 0x80|opBinary || got[1] != 126 || !bytes.Equal(got[4:], payload) {
			bad = fmt.Errorf("frame % x...", got[:8])
		}
	}
	if n := testing.AllocsPerRun(200, step); n != 0 {
		t.Errorf("%v allocations per write, want 0", n)
	}
	if bad != nil {
		t.Fatal(bad)
	}
}

func TestMaskBytes(t *testing.T) {
	key := [4]byte{0x01, 0x80, 0xFE, 0x7F}
	k32 := uint32(key[0]) | uint32(key[1])<<8 | uint32(key[2])<<16 | uint32(key[3])<<24
	for n := range 80 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(i * 37)
		}
		got := append([]byte(nil), src...)
		maskBytes(k32, got)
		for i := range src {
			if got[i] != src[i]^key[i%4] {
				t.Fatalf("len %d byte %d: %#x, want %#x", n, i, got[i], src[i]^key[i%4])
			}
		}
	}
}

// BenchmarkReadMessage measures ReadMessage of a 320-byte binary frame
// (20 ms of stereo μ-law) written by a raw client over loopback.
func BenchmarkReadMessage(b *testing.B) {
	for _, size := range []int{320, 65536} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			s := newServer(b, nil)
			rc := dialRaw(b, s, nil)
			c := s.conn(b)
			c.SetReadLimit(1 << 20)
			wire := fin(opBinary, make([]byte, size))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				rc.write(b, wire)
				if _, _, err := c.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMask measures unmasking.
func BenchmarkMask(b *testing.B) {
	p := make([]byte, 4096)
	b.SetBytes(int64(len(p)))
	for b.Loop() {
		maskBytes(0x3D21FA37, p)
	}
}
