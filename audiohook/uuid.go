package audiohook

import (
	"crypto/rand"
	"encoding/hex"
)

// NullUUID is the all-zero UUID. A conversationId equal to it marks a
// connection probe.
const NullUUID = "00000000-0000-0000-0000-000000000000"

// IsUUID reports whether s is a UUID the reference peers accept: versions 1
// to 5 with the RFC 4122 variant, any case, or the null UUID.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	if s == NullUUID {
		return true
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
			continue
		case 14:
			if c < '1' || c > '5' {
				return false
			}
			continue
		case 19:
			switch c {
			case '8', '9', 'a', 'b', 'A', 'B':
				continue
			}
			return false
		}
		if !isHex(c) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// newUUID returns a random version 4 UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
