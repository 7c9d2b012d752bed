package wsconn

import "encoding/binary"

// Frame opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// maxControlPayload is the largest control frame payload.
const maxControlPayload = 125

// header is a decoded frame header.
type header struct {
	fin    bool
	rsv    byte // RSV1-3 bits, in place (0x70)
	op     byte
	masked bool
	length uint64
	key    uint32 // masking key, little-endian so byte i is key>>(8*i)
}

// maxHeader is the longest client frame header: 2 + 8 length + 4 mask.
const maxHeader = 14

// putHeader writes an unmasked final frame header for op and a payload of
// n bytes into b (at least 10 bytes) and returns its length.
func putHeader(b []byte, op byte, n int) int {
	b[0] = 0x80 | op
	switch {
	case n <= 125:
		b[1] = byte(n)
		return 2
	case n <= 0xFFFF:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
		return 4
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
		return 10
	}
}

// maskBytes XORs b with the masking key, starting at key byte 0, eight
// bytes at a time.
func maskBytes(key uint32, b []byte) {
	k := uint64(key) | uint64(key)<<32
	for len(b) >= 32 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(b[8:])^k)
		binary.LittleEndian.PutUint64(b[16:], binary.LittleEndian.Uint64(b[16:])^k)
		binary.LittleEndian.PutUint64(b[24:], binary.LittleEndian.Uint64(b[24:])^k)
		b = b[32:]
	}
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(key >> (8 * (i & 3)))
	}
}
